//! What the open network may send: requests CoreDNS refuses before any plugin (several
//! questions, other opcodes, other classes, EDNS versions it does not speak), ANY, datagrams
//! larger than any query, names the server does not own (whose answers must not amplify), and
//! TCP clients that hold connections open, send half a query or never stop asking.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};
use crate::peers::{curl, metric, url_in};

const OWNED: &str = "web.shop.svc.cluster.local.";

/// A query packet built byte by byte, so it can be what no library would build: `flags` is
/// the third header byte (QR, opcode, AA, TC, RD); `opt` is (payload size, EDNS version).
fn packet(id: u16, flags: u8, questions: &[(&str, u16, u16)], opt: Option<(u16, u8)>) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[flags, 0]);
    p.extend_from_slice(&(questions.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    for (name, qtype, class) in questions {
        for label in name.trim_end_matches('.').split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&class.to_be_bytes());
    }
    if let Some((size, version)) = opt {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, version, 0, 0, 0, 0]);
    }
    p
}

/// What a case expects back.
enum Want {
    /// This rcode (extended, as hickory reads it), with this many questions echoed.
    Rcode(ResponseCode, u16),
    /// NOERROR with no answer records: ANY answered minimally.
    Empty,
    /// No answer at all.
    Silence,
}

const A: u16 = 1;
const ANY: u16 = 255;
const IN: u16 = 1;
const RD: u8 = 0x01;

fn start() -> (Scratch, Server) {
    let dir = Scratch::new("abuse");
    let cluster = harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(
            "cluster.local {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai {{\n  manifests {}\n }}\n}}\n",
            cluster.display()
        ),
    );
    let server = Server::start(&corefile);
    (dir, server)
}

#[test]
fn requests_coredns_refuses_are_refused_the_same_way_and_counted() {
    let (_dir, server) = start();
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    let q = |name| (name, A, IN);
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        ("two questions", packet(1, RD, &[q(OWNED), q(OWNED)], None), Want::Rcode(ResponseCode::FormErr, 0)),
        ("no question", packet(2, RD, &[], None), Want::Rcode(ResponseCode::FormErr, 0)),
        ("opcode STATUS", packet(3, 2 << 3, &[q(OWNED)], None), Want::Rcode(ResponseCode::NotImp, 0)),
        ("opcode NOTIFY", packet(4, 4 << 3, &[q(OWNED)], None), Want::Rcode(ResponseCode::NotImp, 0)),
        ("opcode UPDATE", packet(5, 5 << 3, &[q(OWNED)], None), Want::Rcode(ResponseCode::NotImp, 0)),
        ("class CH", packet(6, RD, &[(OWNED, A, 3)], None), Want::Rcode(ResponseCode::Refused, 1)),
        ("unknown class", packet(7, RD, &[(OWNED, A, 42)], None), Want::Rcode(ResponseCode::Refused, 1)),
        ("class ANY", packet(8, RD, &[(OWNED, A, 255)], None), Want::Rcode(ResponseCode::Refused, 1)),
        ("EDNS version 1", packet(9, RD, &[q(OWNED)], Some((1232, 1))), Want::Rcode(ResponseCode::BADVERS, 1)),
        ("ANY, owned", packet(10, RD, &[(OWNED, ANY, IN)], None), Want::Empty),
        ("ANY, owned, EDNS", packet(11, RD, &[(OWNED, ANY, IN)], Some((4096, 0))), Want::Empty),
        ("not owned", packet(12, RD, &[q("example.org.")], None), Want::Rcode(ResponseCode::Refused, 1)),
        (
            "ANY, not owned",
            packet(13, RD, &[("example.org.", ANY, IN)], Some((4096, 0))),
            Want::Rcode(ResponseCode::Refused, 1),
        ),
        ("a response", packet(14, 0x80, &[q(OWNED)], None), Want::Silence),
        ("larger than any query", vec![0x41; 5000], Want::Silence),
    ];
    for (what, p, want) in &cases {
        let answer = harness::udp_raw(server.addr, p, Duration::from_millis(500));
        match (want, answer) {
            (Want::Silence, None) => {}
            (Want::Silence, Some(a)) => panic!("{what}: answered {a:?}"),
            (_, None) => panic!("{what}: no answer"),
            (Want::Rcode(rcode, questions), Some(a)) => {
                let m = Message::from_vec(&a).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(m.metadata.id, u16::from_be_bytes([p[0], p[1]]), "{what}");
                // By number: hickory names 16 BADSIG or BADVERS alike.
                assert_eq!(u16::from(m.metadata.response_code), u16::from(*rcode), "{what}");
                assert_eq!(m.queries.len(), usize::from(*questions), "{what}");
                assert!(m.answers.is_empty() && m.authorities.is_empty(), "{what}: {m:?}");
            }
            (Want::Empty, Some(a)) => {
                let m = Message::from_vec(&a).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
                assert!(m.answers.is_empty(), "{what}: {:?}", m.answers);
                assert_eq!(m.authorities.len(), 1, "{what}: the SOA only");
            }
        }
    }
    // The server still answers a plain query after all of it.
    let ok = harness::parse(&harness::udp(server.addr, &harness::query(OWNED, RecordType::A, 99, None)));
    assert_eq!(harness::answers(&ok), [format!("{OWNED} A 10.96.10.10")]);

    let (_, text) = curl(&metrics);
    for reason in ["formerr", "notimp", "class", "badvers", "response", "oversized"] {
        let screened = metric(&text, "kubernetai_requests_screened_total", &format!("reason=\"{reason}\""));
        assert!(screened >= 1.0, "{reason} counted in\n{text}");
    }
}

/// For a name the server does not own, the answer is never larger than the query: the REFUSED
/// answer carries the question and an OPT without options, whatever the query carried.
#[test]
fn names_not_owned_are_not_amplified() {
    let (_dir, server) = start();
    for (name, qtype) in [("example.org.", A), ("a.b.c.example.org.", ANY), ("x.", 16)] {
        for opt in [None, Some((4096, 0)), Some((512, 0))] {
            let mut p = packet(21, RD, &[(name, qtype, IN)], opt);
            if opt.is_some() {
                // An EDNS option (a 32-byte padding option): the answer does not echo it.
                p.truncate(p.len() - 2);
                p.extend_from_slice(&[0, 36, 0, 12, 0, 32]);
                p.extend_from_slice(&[0; 32]);
            }
            let a = harness::udp_raw(server.addr, &p, Duration::from_secs(2)).expect("an answer");
            assert!(a.len() <= p.len(), "{name} {qtype} {opt:?}: {} bytes for a {}-byte query", a.len(), p.len());
        }
    }
}

/// An idle connection is closed after 10 s, one that sends half a query after 3 s, one that
/// asks more than 1,000 queries after the 1,000th answer.
#[test]
fn tcp_connections_are_bounded_in_time_and_queries() {
    let (_dir, server) = start();
    let idle_and_half = [false, true].map(|half| {
        let addr = server.addr;
        std::thread::spawn(move || {
            let mut conn = TcpStream::connect(addr).expect("connect");
            conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            if half {
                conn.write_all(&[0, 40, 0x12]).expect("write");
            }
            let opened = Instant::now();
            let mut byte = [0u8; 1];
            let n = conn.read(&mut byte).unwrap_or(0);
            (n, opened.elapsed())
        })
    });

    // One query at a time, so the server never closes on queries it has not read (which would
    // reset the connection and lose answers in flight).
    let mut conn = connect(server.addr);
    let query = harness::query(OWNED, RecordType::A, 7, None);
    let mut answers = 0;
    while answers <= 1000 && harness::ask_tcp(&mut conn, &query).is_some() {
        answers += 1;
    }
    assert_eq!(answers, 1000, "answers before the server closed the connection");

    let [idle, half] = idle_and_half.map(|t| t.join().expect("client"));
    assert_eq!(idle.0, 0, "the idle connection was closed, not answered");
    assert!(idle.1 >= Duration::from_secs(9) && idle.1 < Duration::from_secs(20), "idle closed after {:?}", idle.1);
    assert_eq!(half.0, 0, "the half query was not answered");
    assert!(
        half.1 >= Duration::from_secs(2) && half.1 < Duration::from_secs(9),
        "half query closed after {:?}",
        half.1
    );
}

/// Past 1,024 open connections a new one is closed at once and counted; the ones open still
/// work, and a slot freed is a slot taken again.
#[test]
fn tcp_connections_beyond_the_limit_are_closed_and_counted() {
    // This test holds over a thousand sockets, as the server does.
    kubernetai::observe::process::raise_open_files_limit();
    let (_dir, server) = start();
    let query = harness::query(OWNED, RecordType::A, 8, None);
    let mut open: Vec<TcpStream> = (0..1024).map(|_| connect(server.addr)).collect();
    // Accepting is asynchronous: wait until the server holds all of them by asking on the last.
    let last = harness::ask_tcp(&mut open[1023], &query).expect("the 1,024th connection is served");
    assert_eq!(harness::answers(&harness::parse(&last)).len(), 1);
    let mut extra = connect(server.addr);
    assert!(harness::ask_tcp(&mut extra, &query).is_none(), "the 1,025th connection is refused");
    assert!(harness::ask_tcp(&mut open[0], &query).is_some(), "open connections keep working");
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect(server.addr);
    assert!(harness::ask_tcp(&mut again, &query).is_some(), "a freed slot is taken again");
    drop(open);
    let summary = server.stop();
    assert!(summary.contains("tcp_rejected=1"), "{summary}");
}

/// A TCP connection whose reads give up after 5 s, so a server that neither answers nor closes
/// fails the test instead of hanging it.
fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    conn
}
