//! ExternalName targets outside a stanza's zones are resolved through the server's own chain,
//! as CoreDNS's upstream lookup does: here, a service of one cluster that points at a service of
//! another cluster.

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

#[test]
fn an_external_name_into_another_cluster_is_answered_whole() {
    let dir = Scratch::new("chase");
    let clusters = harness::root().join("examples/clusters");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n kubernetai assemblage.local {{\n  manifests {}\n }}\n}}\n",
            clusters.join("local.json").display(),
            clusters.join("assemblage.json").display()
        ),
    );
    let server = Server::start(&corefile);
    let ask =
        |name: &str, qtype| harness::parse(&harness::udp(server.addr, &harness::query(name, qtype, 3, Some(1232))));
    let a = ask("ledger.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(
        harness::answers(&a),
        [
            "ledger.billing.svc.assemblage.local. A 10.100.0.15",
            "ledger.shop.svc.cluster.local. CNAME ledger.billing.svc.assemblage.local."
        ]
    );
    // A target no block can resolve: the CNAME alone, as CoreDNS answers with a failing upstream.
    let docs = ask("docs.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(docs.metadata.response_code.low(), 0);
    assert_eq!(harness::answers(&docs), ["docs.shop.svc.cluster.local. CNAME docs.example.org."]);
}
