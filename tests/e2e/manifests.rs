//! `manifests` files are watched: a change reaches the answers as watch deltas; a file that
//! stops parsing is logged and the last good objects keep answering.

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

fn cluster(services: &[(&str, &str)]) -> String {
    let items: Vec<String> = services
        .iter()
        .map(|(name, ip)| {
            format!(
                r#"{{"kind":"Service","metadata":{{"name":"{name}","namespace":"app"}},"spec":{{"clusterIP":"{ip}"}}}}"#
            )
        })
        .collect();
    format!(r#"{{"kind":"List","items":[{{"kind":"Namespace","metadata":{{"name":"app"}}}},{}]}}"#, items.join(","))
}

#[test]
fn changes_are_served_and_a_broken_file_loses_nothing() {
    let dir = Scratch::new("manifests");
    let file = dir.write("c.json", &cluster(&[("one", "10.0.0.1"), ("two", "10.0.0.2")]));
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", file.display()),
    );
    let server = Server::start(&corefile);
    let ask = |name: &str| harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 1, None)));
    assert_eq!(harness::answers(&ask("one.app.svc.cluster.local.")), ["one.app.svc.cluster.local. A 10.0.0.1"]);

    // Update one, delete one, add one; a malformed object beside them is skipped with a log line.
    let mut next = cluster(&[("one", "10.0.0.11"), ("three", "10.0.0.3")]);
    next.insert_str(
        next.len() - 2,
        r#",{"kind":"Service","metadata":{"name":"bad","namespace":"app"},"spec":{"clusterIP":"10.0.0.300"}}"#,
    );
    std::fs::write(&file, next).expect("rewrite");
    server.wait_for("applied");
    assert_eq!(harness::answers(&ask("one.app.svc.cluster.local.")), ["one.app.svc.cluster.local. A 10.0.0.11"]);
    assert_eq!(ask("two.app.svc.cluster.local.").metadata.response_code.low(), 3);
    assert_eq!(harness::answers(&ask("three.app.svc.cluster.local.")), ["three.app.svc.cluster.local. A 10.0.0.3"]);
    assert_eq!(ask("bad.app.svc.cluster.local.").metadata.response_code.low(), 3);

    // A file that no longer parses: logged, and the last good state keeps answering.
    std::fs::write(&file, "{ truncated").expect("break");
    server.wait_for("keeping the last good objects");
    assert_eq!(harness::answers(&ask("three.app.svc.cluster.local.")), ["three.app.svc.cluster.local. A 10.0.0.3"]);
}
