//! A clusterset computed from its members' own objects (`clusterset ZONE CLUSTERID [all]`)
//! through the binary, against four live fake API servers: exports, un-exports (under load),
//! scaling and outages reach the answers; a member without the ServiceExport CRD exports
//! nothing until it is installed; one down at start joins when it comes up; one that goes away
//! keeps answering with its last objects. The records of each form are the conformance table
//! `tests/conformance/clusterset.cases`; this is what happens over time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::FakeApi;
use crate::harness::{self, Scratch, Server};
use crate::live::{eventually, lookup, namespace, service, slice};
use crate::load::{Expect, Load};

const WEB: &str = "web.shop.svc.clusterset.local.";
const DB: &str = "db.shop.svc.clusterset.local.";

fn export(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
           "metadata": {"name": name, "namespace": ns}})
}

/// A headless `db` and its slice with the ready endpoints `(hostname, ip)`.
fn headless_db(api: &FakeApi, endpoints: &[(&str, &str)]) {
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
                     "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}));
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(host, ip)| json!({"addresses": [ip], "hostname": host, "conditions": {"ready": true}}))
        .collect();
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                     "metadata": {"name": "db-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
                     "endpoints": endpoints, "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}));
}

#[test]
fn a_clusterset_of_live_clusters_follows_exports_scaling_and_outages() {
    // a exports by ServiceExport, b exports everything, c has no ServiceExport CRD yet, d is
    // down when the server starts.
    let (a, b, c, d) = (FakeApi::start(), FakeApi::start(), FakeApi::start(), FakeApi::start());
    for (api, net) in [(&a, 1), (&b, 2), (&c, 3), (&d, 4)] {
        api.apply(namespace("shop"));
        let (cluster_ip, endpoint) = (format!("10.{net}.0.10"), format!("10.{net}.1.1"));
        api.apply(service("shop", "web", &cluster_ip, json!({})));
        api.apply(slice("shop", "web", &endpoint, true));
        headless_db(api, &[("db-0", &format!("10.{net}.2.1"))]);
    }
    a.apply(export("shop", "web"));
    a.apply(export("shop", "db"));
    d.apply(export("shop", "db"));
    c.set_crd_installed("serviceexports", false);
    d.set_down(true);

    let dir = Scratch::new("clusterset-live");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n transfer clusterset.local {{\n  to *\n }}\n \
             kubernetai a.local {{\n  endpoint {}\n  clusterset clusterset.local a\n }}\n \
             kubernetai b.local {{\n  endpoint {}\n  clusterset clusterset.local b all\n }}\n \
             kubernetai c.local {{\n  endpoint {}\n  clusterset clusterset.local c\n }}\n \
             kubernetai d.local {{\n  endpoint {}\n  startup_timeout 1s\n  clusterset clusterset.local d\n }}\n}}\n",
            a.url(),
            b.url(),
            c.url(),
            d.url()
        ),
    );
    let server = Server::start(&corefile);
    let b_at = format!("{}:10", corefile.display());
    assert!(
        server.said_at_start("the ServiceExport CRD (multicluster.x-k8s.io/v1alpha1) is not installed").is_some(),
        "the member without the CRD says so"
    );

    // Exported by a (first in Corefile order) and b: a's cluster IP. c has the same service but
    // cannot export it; d has not synced.
    assert_eq!(lookup(&server, WEB), ["10.1.0.10"]);
    assert_eq!(lookup(&server, DB), ["10.1.2.1", "10.2.2.1"]);
    assert_eq!(lookup(&server, "db-0.a.db.shop.svc.clusterset.local."), ["10.1.2.1"]);
    assert_eq!(lookup(&server, "db-0.b.db.shop.svc.clusterset.local."), ["10.2.2.1"]);
    assert_eq!(lookup(&server, "db-0.c.db.shop.svc.clusterset.local."), ["rcode 3"]);
    // Each member's own zone is served as always.
    assert_eq!(lookup(&server, "web.shop.svc.c.local."), ["10.3.0.10"]);
    // The zone by AXFR through `transfer`: SOA first and last, every exported record between.
    let axfr = crate::peers::dig(server.addr, &["clusterset.local", "AXFR"]);
    let records: Vec<String> = axfr
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let soa = |l: Option<&String>| l.is_some_and(|l| l.contains(" SOA "));
    assert!(soa(records.first()) && soa(records.last()), "{axfr}");
    for want in ["web.shop.svc.clusterset.local. 5 IN A 10.1.0.10", "db-0.b.db.shop.svc.clusterset.local. 5 IN A 10.2.2.1"] {
        assert!(records.iter().any(|r| r == want), "{want} in {axfr}");
    }

    // Scaling: a new ready endpoint in a.
    headless_db(&a, &[("db-0", "10.1.2.1"), ("db-1", "10.1.2.2")]);
    eventually(&server, DB, &["10.1.2.1", "10.1.2.2", "10.2.2.1"]);
    eventually(&server, "db-1.a.db.shop.svc.clusterset.local.", &["10.1.2.2"]);

    // The CRD arrives in c, then c exports db.
    c.set_crd_installed("serviceexports", true);
    server.wait_for("the ServiceExport CRD is installed");
    c.apply(export("shop", "db"));
    eventually(&server, DB, &["10.1.2.1", "10.1.2.2", "10.2.2.1", "10.3.2.1"]);
    eventually(&server, "db-0.c.db.shop.svc.clusterset.local.", &["10.3.2.1"]);

    // Un-exported in a while queried over UDP and TCP: b's cluster IP takes over, and no query
    // is lost or answered with anything else meanwhile.
    let load = Load::start(
        server.addr,
        vec![
            Expect::new(WEB, &[&["10.1.0.10"], &["10.2.0.10"]]),
            Expect::new("db-0.b.db.shop.svc.clusterset.local.", &[&["10.2.2.1"]]),
        ],
        2,
    );
    while load.answered() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    a.delete("ServiceExport", "shop", "web");
    eventually(&server, WEB, &["10.2.0.10"]);
    let asked = load.answered();
    while load.answered() < asked + 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    load.finish().assert_clean();

    // Deleted in b: no member exports web with a ready endpoint any more (c and d do not
    // export it).
    b.delete("Service", "shop", "web");
    eventually(&server, WEB, &["rcode 3"]);

    // d comes up: its export joins.
    d.set_down(false);
    eventually(&server, DB, &["10.1.2.1", "10.1.2.2", "10.2.2.1", "10.3.2.1", "10.4.2.1"]);

    // b goes away: its last objects keep answering.
    server.drain();
    b.set_down(true);
    server.wait_for(&format!("{b_at}: watch"));
    assert_eq!(lookup(&server, "db-0.b.db.shop.svc.clusterset.local."), ["10.2.2.1"]);

    // The CRD leaves c: what c exported goes with it.
    c.set_crd_installed("serviceexports", false);
    eventually(&server, "db-0.c.db.shop.svc.clusterset.local.", &["rcode 3"]);
}

#[test]
fn clusterset_mistakes_name_the_file_and_line() {
    let dir = Scratch::new("clusterset-errors");
    for (text, want) in [
        (
            ". {\n kubernetai a.local {\n  clusterset clusterset.local east\n }\n kubernetai b.local {\n  clusterset clusterset.local east\n }\n}\n",
            "Corefile:6 - clusterset clusterset.local.: cluster id east is already the stanza's at",
        ),
        (
            ". {\n kubernetai a.local {\n  clusterset clusterset.local a\n }\n kubernetai b.local {\n  ttl 30\n  clusterset clusterset.local b\n }\n}\n",
            "Corefile:7 - clusterset clusterset.local.: this stanza's ttl 30 differs from 5",
        ),
        (". {\n kubernetai a.local {\n  clusterset clusterset.local Not_A_Label\n }\n}\n", "Corefile:3 - kubernetai: clusterset: cluster id"),
        (". {\n kubernetai a.local {\n  clusterset clusterset.local a some\n }\n}\n", "Corefile:3 - kubernetai: clusterset: expected 'all'"),
        ("a.local {\n kubernetai {\n  clusterset clusterset.local a\n }\n}\n", "Corefile:3 - clusterset: zone clusterset.local. is not served by this server block"),
    ] {
        let corefile = dir.write("Corefile", text);
        let out = std::process::Command::new(harness::binary())
            .args(["-conf", corefile.to_str().expect("utf-8"), "-dns.port", "0"])
            .output()
            .expect("run");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() && said.contains(want), "{text}\nwant {want:?}, said:\n{said}");
    }
}
