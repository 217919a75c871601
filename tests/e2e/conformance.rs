//! The conformance tables (tests/conformance/NAME.cases, each with its NAME.Corefile) through
//! the real binary, over UDP and TCP: with the wasm module, and with the same library linked
//! natively (`-module native`, the benchmark's baseline).

use crate::{cases, harness};

#[test]
fn conformance_tables_pass_through_the_binary() {
    run_tables(&[]);
}

#[test]
fn conformance_tables_pass_with_the_native_library() {
    run_tables(&["-module", "native"]);
}

fn run_tables(args: &[&str]) {
    let dir = harness::root().join("tests/conformance");
    let mut tables: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    tables.sort();
    let mut failures = Vec::new();
    let mut total = 0;
    for table in tables {
        let server = harness::Server::start_with(&table.with_extension("Corefile"), args);
        for (i, case) in cases::load(&table).iter().enumerate() {
            total += 1;
            let packet = case.packet(i as u16);
            failures.extend(case.check(&harness::udp(server.addr, &packet)).err().map(|e| format!("udp {e}")));
            failures.extend(case.check(&harness::tcp(server.addr, &[packet])[0]).err().map(|e| format!("tcp {e}")));
        }
    }
    assert!(total > 90, "the tables hold their cases ({total})");
    assert!(failures.is_empty(), "{} failures over {total} cases:\n{}", failures.len(), failures.join("\n"));
}
