//! Random and truncated packets never crash the server: each is answered FORMERR or dropped,
//! counted, and the next valid query is answered.

use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::harness::{self, Server};

/// A small deterministic generator (xorshift), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_is_answered_formerr_or_dropped_and_counted() {
    let server = Server::start(&harness::root().join("tests/conformance/basic.Corefile"));
    let valid = harness::query("web.shop.svc.cluster.local.", RecordType::A, 77, None);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut packets: Vec<Vec<u8>> = Vec::new();
    // Every prefix of a valid query: shorter than a header, then cut inside the question.
    for n in 0..valid.len() {
        packets.push(valid[..n].to_vec());
    }
    // Random bytes of random lengths, with the QR bit cleared on half so they reach the parser.
    for i in 0..300 {
        let len = (rng.next() % 600) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && p.len() > 2 {
            p[2] &= 0x7f;
        }
        packets.push(p);
    }
    // A valid header claiming questions that are not there.
    packets.push(vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0]);

    let mut answered = 0;
    for p in &packets {
        if let Some(answer) = harness::udp_raw(server.addr, p, Duration::from_millis(150)) {
            answered += 1;
            assert!(answer.len() >= 12, "an answer is at least a header");
            if p.len() >= 2 {
                assert_eq!(answer[..2], p[..2], "the answer carries the query's id");
            }
            assert!(answer[2] & 0x80 != 0, "QR set on every answer");
        }
        // Whatever came before, the server still answers a valid query.
        let ok = harness::parse(&harness::udp(server.addr, &valid));
        assert_eq!(harness::answers(&ok), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    }
    let summary = server.stop();
    let count = |key: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {summary:?}"))
    };
    let total = packets.len() as u64 * 2;
    assert_eq!(count("queries"), total, "{summary}");
    assert!(count("dropped") > 0 && count("formerr") > 0, "both kinds counted: {summary}");
    assert_eq!(count("dropped") + count("formerr") + count("answered"), total, "every packet accounted for: {summary}");
    assert!(answered > 0);
}
