//! The conformance tables through the real binary over UDP and TCP.

use crate::{cases, harness};

#[test]
fn basic_cases_pass_through_the_binary() {
    let root = harness::root();
    let server = harness::Server::start(&root.join("tests/conformance/Corefile"));
    let cases = cases::load(&root.join("tests/conformance/basic.cases"));
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let packet = case.packet(i as u16);
        failures.extend(
            case.check(&harness::udp(server.addr, &packet))
                .err()
                .map(|e| format!("udp {e}")),
        );
        failures.extend(
            case.check(&harness::tcp(server.addr, &[packet])[0])
                .err()
                .map(|e| format!("tcp {e}")),
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures over {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
