//! The entry points the fuzz targets (`fuzz/`) and their regression tests (`tests/fuzz/`) share:
//! a small cluster behind two stanzas, and the properties every input must keep. A violated
//! property panics, which is what libFuzzer reports as a crash.

use std::net::IpAddr;

use hickory_proto::op::Message;

use crate::config::{BlockFacts, PodMode, Stanza};
use crate::handler::{Outcome, Plugin, Query, Transport};
use crate::snapshot::{Event, Kind};

/// One object of each shape the resolver answers from: a ClusterIP service with a named port,
/// a headless one with an endpoint slice, an ExternalName, a pod and a service import.
const CLUSTER: &[(Kind, &str)] = &[
    (Kind::Namespace, r#"{"metadata":{"name":"ns"}}"#),
    (
        Kind::Service,
        r#"{"metadata":{"namespace":"ns","name":"web"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1","fd00::1"],"ports":[{"name":"http","protocol":"TCP","port":80}]}}"#,
    ),
    (
        Kind::Service,
        r#"{"metadata":{"namespace":"ns","name":"db"},"spec":{"clusterIP":"None","ports":[{"name":"pg","protocol":"TCP","port":5432}]}}"#,
    ),
    (
        Kind::EndpointSlice,
        r#"{"metadata":{"namespace":"ns","name":"db-1","labels":{"kubernetes.io/service-name":"db"}},"ports":[{"name":"pg","protocol":"TCP","port":5432}],"endpoints":[{"addresses":["10.1.0.1"],"hostname":"db-0"},{"addresses":["fd00::10"]}]}"#,
    ),
    (
        Kind::Service,
        r#"{"metadata":{"namespace":"ns","name":"ext"},"spec":{"type":"ExternalName","externalName":"example.org"}}"#,
    ),
    (
        Kind::Pod,
        r#"{"metadata":{"namespace":"ns","name":"p"},"status":{"podIP":"10.1.0.1","podIPs":[{"ip":"10.1.0.1"}]}}"#,
    ),
    (
        Kind::ServiceImport,
        r#"{"metadata":{"namespace":"ns","name":"web"},"spec":{"type":"ClusterSetIP","ips":["10.2.0.1"],"ports":[{"name":"http","protocol":"TCP","port":80}]}}"#,
    ),
];

/// Names that must keep answering whatever malformed events arrive beside them.
const KEPT: &[&str] = &["web.ns.svc.cluster.local.", "db.ns.svc.cluster.local."];

/// Two stanzas over the same cluster: the first with verified pods and fallthrough, the second
/// a multicluster zone, so a query can walk the whole chain.
pub fn plugin() -> Plugin {
    let mut first = Stanza::new(&["cluster.local", "10.in-addr.arpa"]);
    first.pods = PodMode::Verified;
    first.fallthrough = Some(Vec::new());
    first.endpoint_pod_names = true;
    let mut second = Stanza::new(&["clusterset.local", "example"]);
    second.multicluster = vec!["clusterset.local.".into()];
    second.pods = PodMode::Insecure;
    let server = BlockFacts { local_ips: vec![IpAddr::from([192, 0, 2, 53])] };
    let mut p = match Plugin::new(server, vec![first, second]) {
        Ok(p) => p,
        Err(e) => panic!("the fuzzing fixture is invalid: {e}"),
    };
    let mut events: Vec<Event> = CLUSTER.iter().map(|(kind, json)| Event::Apply(*kind, (*json).to_string())).collect();
    events.push(Event::Synced(true));
    for i in 0..p.stanzas.len() {
        let _ = p.apply(i, 1, events.clone());
    }
    p
}

/// Arbitrary bytes as a query, over UDP or TCP with the size the first byte picks: every
/// answer must parse, fit the size, and carry the query's id; a transfer or search-path request
/// of the same bytes must not panic either.
pub fn query(plugin: &Plugin, data: &[u8]) {
    let Some((&knob, packet)) = data.split_first() else { return };
    let transport = if knob & 1 == 0 { Transport::Udp } else { Transport::Tcp };
    let max_size = match transport {
        Transport::Udp => 512 + u16::from(knob >> 1) * 32,
        Transport::Tcp => u16::MAX,
    };
    let client = IpAddr::from([10, 1, 0, 1]);
    let q = Query { packet, client: "10.1.0.1", transport, max_size };
    match plugin.handle(&q) {
        Outcome::Answer(bytes) => check_answer(packet, &bytes, max_size),
        Outcome::Chase { response, target, .. } => {
            check_answer(packet, &response, max_size);
            assert!(!target.is_empty(), "a chase without a target");
        }
        Outcome::Next | Outcome::Drop => {}
    }
    if let Some(messages) = plugin.transfer(packet) {
        for m in messages {
            if let Err(e) = Message::from_vec(&m) {
                panic!("a transfer message does not parse: {e}");
            }
        }
    }
    if let Ok(m) = Message::from_vec(packet)
        && let Some(question) = m.queries.first()
    {
        let _ = plugin.search_path(&question.name().to_ascii().to_lowercase(), client);
    }
}

fn check_answer(packet: &[u8], bytes: &[u8], max_size: u16) {
    assert!(bytes.len() <= usize::from(max_size), "answer of {} bytes over the client's {max_size}", bytes.len());
    assert!(bytes.len() >= 12, "answer shorter than a header");
    assert_eq!(bytes[..2], packet[..2], "answer id differs from the query's");
    if let Err(e) = Message::from_vec(bytes) {
        panic!("answer does not parse: {e}");
    }
}

/// Arbitrary bytes as a stream of watch events: records split by 0xff, each record's first byte
/// picks the event and kind, the rest is the object's JSON. Whatever arrives, the names of the
/// untouched objects keep answering.
pub fn events(data: &[u8]) {
    let mut p = plugin();
    let kinds = [Kind::Namespace, Kind::Service, Kind::EndpointSlice, Kind::Pod, Kind::ServiceImport];
    let mut events = Vec::new();
    for record in data.split(|b| *b == 0xff) {
        let Some((&op, json)) = record.split_first() else { continue };
        let kind = kinds[usize::from(op) % kinds.len()];
        let json = String::from_utf8_lossy(json).into_owned();
        // Only objects outside namespace "ns" may be touched, so the kept names stay valid.
        let event = match op / 8 % 5 {
            0 | 1 => Event::Apply(kind, json),
            2 => Event::Delete(kind, json),
            3 => Event::RelistStart(kind),
            _ => Event::RelistDone(kind),
        };
        if touches_kept(&event) {
            continue;
        }
        events.push(event);
    }
    for i in 0..p.stanzas.len() {
        let _ = p.apply(i, 2, events.clone());
    }
    for name in KEPT {
        let packet = question(name);
        let q = Query { packet: &packet, client: "10.1.0.1", transport: Transport::Udp, max_size: 512 };
        match p.handle(&q) {
            Outcome::Answer(bytes) => match Message::from_vec(&bytes) {
                Ok(m) => assert!(!m.answers.is_empty(), "{name} lost its answer"),
                Err(e) => panic!("{name}: answer does not parse: {e}"),
            },
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// A relist drops what it does not list, and an event in namespace "ns" may change the kept
/// names: both legitimately change the kept answers, so they are left out.
fn touches_kept(event: &Event) -> bool {
    match event {
        Event::RelistStart(_) | Event::RelistDone(_) => true,
        Event::Apply(_, json) | Event::Delete(_, json) => {
            crate::object::key_of(json).is_ok_and(|k| &*k.namespace == "ns" || &*k.name == "ns")
        }
        Event::Synced(_) => false,
    }
}

fn question(name: &str) -> Vec<u8> {
    let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}
