//! The conformance tables run natively against the guest library, with the stanza of
//! tests/conformance/Corefile built directly and the cluster fed as watch events.

#[path = "../../tests/support/cases.rs"]
mod cases;

use std::path::Path;

use kubernetai_guest::{Event, Kind, Outcome, Plugin, PodMode, Query, Server, Stanza, Transport};

fn events_from_list(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).expect("cluster file");
    let list: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut events = Vec::new();
    for item in list["items"].as_array().expect("items") {
        let kind = match item["kind"].as_str() {
            Some("Namespace") => Kind::Namespace,
            Some("Service") => Kind::Service,
            Some("EndpointSlice") => Kind::EndpointSlice,
            Some("Pod") => Kind::Pod,
            _ => continue,
        };
        events.push(Event::Apply(kind, item.to_string()));
    }
    events.push(Event::Synced(true));
    events
}

#[test]
fn basic_cases_pass_natively() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stanza = Stanza::new(&["cluster.local", "96.10.in-addr.arpa"]);
    stanza.pods = PodMode::Verified;
    let mut plugin = Plugin::new(Server::default(), vec![stanza]).expect("config");
    let rejected = plugin
        .apply(
            0,
            1_700_000_000,
            events_from_list(&root.join("examples/clusters/local.json")),
        )
        .expect("stanza 0");
    assert!(rejected.is_empty(), "{rejected:?}");
    let cases = cases::load(&root.join("tests/conformance/basic.cases"));
    assert!(cases.len() > 30, "the table has its cases");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let packet = case.packet(i as u16);
        let q = Query {
            packet: &packet,
            client: "10.0.0.1".parse().expect("ip"),
            transport: Transport::Udp,
            max_size: 4096,
        };
        match plugin.handle(&q) {
            Outcome::Answer(bytes) => failures.extend(case.check(&bytes).err()),
            other => failures.push(format!("{}: {other:?}", case.at)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
