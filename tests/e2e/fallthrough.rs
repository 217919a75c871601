//! The kubernetai README's fallthrough example, end to end: two stanzas serve cluster.local; the
//! first ignores empty services and falls through to the second.

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

fn corefile(dir: &Scratch) -> std::path::PathBuf {
    let clusters = harness::root().join("examples/clusters");
    dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n errors\n kubernetai cluster.local {{\n  manifests {local}\n  ignore empty_service\n  fallthrough\n }}\n kubernetai cluster.local {{\n  manifests {remote}\n }}\n}}\n",
            local = clusters.join("local.json").display(),
            remote = clusters.join("remote.json").display()
        ),
    )
}

#[test]
fn seed_fallthrough_example() {
    let dir = Scratch::new("fallthrough");
    let server = Server::start(&corefile(&dir));
    let ask = |name: &str| harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 7, None)));

    // Headless, no ready endpoint locally: answered from the remote cluster.
    let cache = ask("cache.shop.svc.cluster.local.");
    assert_eq!(cache.metadata.response_code.low(), 0);
    assert_eq!(
        harness::answers(&cache),
        ["cache.shop.svc.cluster.local. A 10.48.5.30", "cache.shop.svc.cluster.local. A 10.48.6.31"]
    );

    // Only in the remote cluster.
    assert_eq!(
        harness::answers(&ask("reports.shop.svc.cluster.local.")),
        ["reports.shop.svc.cluster.local. A 10.48.7.40"]
    );

    // Only in the first cluster: answered there (the remote has no such service).
    assert_eq!(harness::answers(&ask("web.shop.svc.cluster.local.")), ["web.shop.svc.cluster.local. A 10.96.10.10"]);

    // In both, but with no endpoint locally: `ignore empty_service` also skips a ClusterIP
    // service without ready endpoints (as CoreDNS does), so the remote cluster answers.
    assert_eq!(
        harness::answers(&ask("kubernetes.default.svc.cluster.local.")),
        ["kubernetes.default.svc.cluster.local. A 10.32.0.1"]
    );

    // In neither: NXDOMAIN from the last stanza, with its SOA.
    let none = ask("nowhere.shop.svc.cluster.local.");
    assert_eq!(none.metadata.response_code.low(), 3);
    assert_eq!(none.authorities.len(), 1);
}

#[test]
fn after_the_last_stanza_falls_through_with_no_next_plugin_the_answer_is_servfail() {
    let dir = Scratch::new("servfail");
    let local = harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n errors\n kubernetai cluster.local {{\n  manifests {}\n  fallthrough\n }}\n}}\n",
            local.display()
        ),
    );
    let server = Server::start(&corefile);
    let answer = harness::parse(&harness::udp(
        server.addr,
        &harness::query("nowhere.shop.svc.cluster.local.", RecordType::A, 9, None),
    ));
    assert_eq!(answer.metadata.response_code.low(), 2, "SERVFAIL");
    server.wait_for("no next plugin found");
    // A name outside every stanza's zones also reaches the end of the chain.
    let outside = harness::parse(&harness::udp(server.addr, &harness::query("example.org.", RecordType::A, 10, None)));
    assert_eq!(outside.metadata.response_code.low(), 2);
}
