//! UDP and TCP behaviour: EDNS0 echoed and honoured, an answer cut to the UDP size as CoreDNS
//! cuts it (as many whole records as fit, TC set), several length-framed queries on one TCP
//! connection.

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

/// A cluster with one headless service of `n` ready endpoints: its A answer is ~16 bytes per endpoint.
fn big_cluster(n: usize) -> String {
    let endpoints: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"addresses":["10.1.{}.{}"],"conditions":{{"ready":true}}}}"#, i / 250, i % 250 + 1))
        .collect();
    format!(
        r#"{{"kind":"List","items":[
        {{"kind":"Namespace","metadata":{{"name":"big"}}}},
        {{"kind":"Service","metadata":{{"name":"many","namespace":"big"}},"spec":{{"clusterIP":"None","ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}},
        {{"kind":"EndpointSlice","metadata":{{"name":"many-1","namespace":"big","labels":{{"kubernetes.io/service-name":"many"}}}},"addressType":"IPv4","endpoints":[{}],"ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}]}}"#,
        endpoints.join(",")
    )
}

fn start(n: usize) -> (Scratch, Server) {
    let dir = Scratch::new(&format!("transport-{n}"));
    let cluster = dir.write("big.json", &big_cluster(n));
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", cluster.display()),
    );
    let server = Server::start(&corefile);
    (dir, server)
}

#[test]
fn large_answers_truncate_over_udp_and_arrive_whole_over_tcp() {
    let (_dir, server) = start(100);
    let name = "many.big.svc.cluster.local.";

    // No EDNS: 512 bytes at most, so TC, with as many whole records as fit (as CoreDNS: a
    // client that never retries over TCP still gets addresses).
    let plain = harness::udp(server.addr, &harness::query(name, RecordType::A, 1, None));
    assert!(plain.len() <= 512, "{} bytes", plain.len());
    let fitted = plain.len();
    let plain = harness::parse(&plain);
    assert!(plain.metadata.truncation, "TC set");
    assert!(plain.edns.is_none(), "no OPT without one in the query");
    assert!(plain.answers.len() >= 20 && plain.answers.len() < 100, "{} records", plain.answers.len());
    assert!(fitted + 16 > 512, "no room left for one more record: {fitted} bytes");

    // EDNS 4096: the server caps UDP at 1232, still too small for 100 records.
    let edns = harness::udp(server.addr, &harness::query(name, RecordType::A, 2, Some(4096)));
    assert!(edns.len() <= 1232, "{} bytes", edns.len());
    let edns = harness::parse(&edns);
    assert!(edns.metadata.truncation);
    assert!(edns.edns.is_some(), "OPT echoed");
    assert!(edns.answers.len() > plain.answers.len(), "more fit in 1232 bytes than in 512");

    // TCP: the whole answer, and several queries on one connection.
    let answers = harness::tcp(
        server.addr,
        &[
            harness::query(name, RecordType::A, 3, None),
            harness::query(name, RecordType::SRV, 4, None),
            harness::query("nope.big.svc.cluster.local.", RecordType::A, 5, None),
        ],
    );
    let full = harness::parse(&answers[0]);
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 100);
    assert_eq!(harness::parse(&answers[1]).metadata.id, 4);
    assert_eq!(harness::parse(&answers[1]).answers.len(), 100);
    assert_eq!(harness::parse(&answers[2]).metadata.response_code.low(), 3);
}

#[test]
fn a_fitting_answer_is_not_truncated_and_edns_size_is_honoured() {
    let (_dir, server) = start(40);
    let name = "many.big.svc.cluster.local.";
    // 40 records (~640 bytes) do not fit 512 but fit an advertised 1232.
    let small = harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 1, None)));
    assert!(small.metadata.truncation);
    let edns = harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 2, Some(1232))));
    assert!(!edns.metadata.truncation);
    assert_eq!(edns.answers.len(), 40);
    assert_eq!(edns.edns.as_ref().map(|e| e.max_payload()), Some(1232));
}

#[test]
fn glue_that_does_not_fit_is_cut_after_the_answer_with_tc() {
    let (_dir, server) = start(18);
    let name = "_http._tcp.many.big.svc.cluster.local.";
    let udp = harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::SRV, 1, Some(1232))));
    // As CoreDNS (miekg/dns Truncate): the answer whole, as much glue as fits, and TC because
    // some was left out.
    assert!(udp.metadata.truncation, "glue left out: TC");
    assert_eq!(udp.answers.len(), 18);
    assert!(
        !udp.additionals.is_empty() && udp.additionals.len() < 18,
        "as much glue as fits: {}",
        udp.additionals.len()
    );
    let tcp = harness::parse(&harness::tcp(server.addr, &[harness::query(name, RecordType::SRV, 2, None)])[0]);
    assert_eq!((tcp.answers.len(), tcp.additionals.len()), (18, 18));
}
