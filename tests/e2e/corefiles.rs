//! Corefiles operators run under CoreDNS, started unchanged but for what a test machine must
//! change (ports, file paths, the API servers behind the kubeconfigs): kubeadm's default with
//! the `kubernetes` plugin in-cluster, the MCS API's (the same with `multicluster`), coredns/coredns#6315's
//! with `debug`, coredns/kubernetai#54's `kubernetes` and `kubernetai`
//! side by side, an autopath Corefile with `debug`, `file` and `transfer`, and `k8s_external`
//! over two clusters.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::json;

use crate::apiserver::{FakeApi, Tls};
use crate::credentials::certificates;
use crate::harness::{self, Scratch, Server};
use crate::live::{eventually, namespace, service, slice};
use crate::peers::{Knot, dig, kdig};

/// The upstream behind `forward`: www.example.net answers, everything else NXDOMAIN.
const UPSTREAM_ZONE: &str = "$ORIGIN .\n$TTL 300\n@ SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300\n@ NS ns.example.net.\nns.example.net. A 192.0.2.1\nwww.example.net. A 192.0.2.10\n";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(harness::root().join("tests/e2e/corefiles").join(name)).expect("fixture")
}

/// A Corefile of tests/e2e/corefiles with the paths and ports of this machine.
fn posted(text: &str, dir: &Scratch, upstream: SocketAddr, apis: &[(&str, &FakeApi)]) -> std::path::PathBuf {
    let resolv = dir.write("resolv.conf", &format!("nameserver {upstream}\n"));
    let db = dir.write("example.db", &fixture("example.db"));
    let mut text = text
        .replace(".:53 {", ".:0 {")
        .replace("health {", "health 127.0.0.1:0 {")
        .replace("    ready\n", "    ready 127.0.0.1:0\n")
        .replace("prometheus :9153", "prometheus 127.0.0.1:0")
        .replace("/etc/resolv.conf", &path(&resolv))
        .replace("/etc/coredns/example.db", &path(&db));
    for (name, api) in apis {
        let kubeconfig = dir.write(
            &format!("{name}.kubeconfig"),
            &format!("apiVersion: v1\nkind: Config\ncurrent-context: {name}\nclusters:\n- name: {name}\n  cluster:\n    server: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: u\n", api.url()),
        );
        text = text.replace(&format!("/kubeconfigs/{name}/config"), &path(&kubeconfig));
    }
    dir.write("Corefile", &text)
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// The `+short` lines of a dig answer, sorted.
fn short(out: &str) -> Vec<String> {
    let mut lines: Vec<String> =
        out.lines().filter(|l| !l.is_empty() && !l.starts_with(';')).map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

fn shop(api: &FakeApi, name: &str, ip: &str) {
    api.apply(namespace("shop"));
    api.apply(service("shop", name, ip, json!({})));
    api.apply(slice("shop", name, &ip.replace(".0.", ".1."), true));
}

/// The API server of a pod's own cluster, as every real one: HTTPS with certificates made in
/// `dir`, the service account's token required (see [`Server::start_in_cluster`]).
fn in_cluster_api(dir: &Scratch) -> FakeApi {
    certificates(dir);
    FakeApi::start_tls(Tls {
        cert: dir.0.join("server.crt"),
        key: dir.0.join("server.key"),
        client_ca: None,
        token: Some("service-account-token".into()),
    })
}

#[test]
fn kubeadms_default_corefile_starts_with_the_kubernetes_plugin_in_cluster() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let dir = Scratch::new("corefiles-kubeadm");
    let api = in_cluster_api(&dir);
    shop(&api, "cart", "10.1.0.5");
    let corefile = posted(&fixture("kubeadm.Corefile"), &dir, knot.addr, &[]);
    let server = Server::start_in_cluster(&corefile, &dir, api.addr, "service-account-token");
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    let out = dig(at, &["cart.shop.svc.cluster.local", "A"]);
    assert!(out.contains("30\tIN\tA\t10.1.0.5"), "the stanza's ttl 30: {out}");
    assert_eq!(short(&dig(at, &["-x", "10.1.0.5", "+short"])), ["cart.shop.svc.cluster.local."]);
    // pods insecure: any dashed address is a pod name.
    assert_eq!(short(&dig(at, &["10-9-8-7.shop.pod.cluster.local", "A", "+short"])), ["10.9.8.7"]);
    assert!(dig(at, &["gone.shop.svc.cluster.local", "A"]).contains("status: NXDOMAIN"));
    // Reverse names the cluster does not hold fall through to forward.
    assert!(dig(at, &["-x", "192.0.2.200"]).contains("status: NXDOMAIN"));
    assert_eq!(short(&kdig(at, &["+tcp", "www.example.net", "A", "+short"])), ["192.0.2.10"]);
}

/// coredns/coredns#6315's Corefile with `debug` added, as an operator chasing PTRs that leave
/// the cluster would: reverse names the cluster holds are answered, others forwarded, and
/// forward writes a debug line for each upstream that fails.
#[test]
fn a_debugged_in_cluster_corefile_answers_ptrs_and_says_what_forward_did() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let dir = Scratch::new("corefiles-6315");
    let api = in_cluster_api(&dir);
    shop(&api, "cart", "10.1.0.5");
    // A dead upstream first in resolv.conf: forward tries it, says so at debug level, and
    // answers from the live one.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let corefile = posted(&fixture("coredns-6315-debug.Corefile"), &dir, knot.addr, &[]);
    let resolv = dir.0.join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\nnameserver {}\n", dead.local_addr().expect("addr"), knot.addr)).expect("resolv.conf");
    let server = Server::start_in_cluster(&corefile, &dir, api.addr, "service-account-token");
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    assert_eq!(short(&dig(at, &["-x", "10.1.0.5", "+short"])), ["cart.shop.svc.cluster.local."]);
    assert!(dig(at, &["-x", "192.0.2.200"]).contains("status: NXDOMAIN"), "forwarded, the upstream's denial");
    assert_eq!(short(&dig(at, &["www.example.net", "A", "+short"])), ["192.0.2.10"]);
    // The policy is random: names nobody asked yet until the dead upstream has been tried.
    let tried_dead = (0..40).any(|i| {
        assert!(dig(at, &[&format!("n{i}.example.net"), "A"]).contains("status: NXDOMAIN"), "answered by the live upstream");
        server.drain().iter().any(|l| l.contains("[DEBUG] plugin/forward: ") && l.contains(&dead.local_addr().expect("addr").to_string()))
    });
    assert!(tried_dead, "a debug line for the upstream that did not answer");
}

#[test]
fn the_mcs_apis_corefile_answers_clusterset_names_from_service_imports() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let dir = Scratch::new("corefiles-mcs");
    let api = in_cluster_api(&dir);
    shop(&api, "cart", "10.1.0.5");
    api.apply(namespace("demo"));
    api.apply(json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "myservice", "namespace": "demo"},
        "spec": {"type": "ClusterSetIP", "ips": ["1.2.3.4"], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}));
    let corefile = posted(&fixture("mcs.Corefile"), &dir, knot.addr, &[]);
    let server = Server::start_in_cluster(&corefile, &dir, api.addr, "service-account-token");
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let out = dig(at, &["myservice.demo.svc.clusterset.local", "A"]);
    let record = ["myservice.demo.svc.clusterset.local.", "30", "IN", "A", "1.2.3.4"];
    assert!(out.lines().any(|l| l.split_whitespace().eq(record)), "the ServiceImport's ClusterSetIP, ttl 30: {out}");
    assert_eq!(short(&dig(at, &["_http._tcp.myservice.demo.svc.clusterset.local", "SRV", "+short"])), ["0 100 80 myservice.demo.svc.clusterset.local."]);
    // A Service is not a ServiceImport: not in the clusterset zone, still in the cluster's.
    assert!(dig(at, &["cart.shop.svc.clusterset.local", "A"]).contains("status: NXDOMAIN"));
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    // Live: `cache 30` keeps an answer given for 30 s, as in CoreDNS, so a new import's name is
    // asked only once the server counts its watch event applied.
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    const APPLIED: (&str, &str) = ("kubernetai_watch_events_total", "kind=\"ServiceImport\",event=\"apply\"");
    let before = crate::peers::metric(&crate::peers::curl(&metrics).1, APPLIED.0, APPLIED.1);
    api.apply(json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "other", "namespace": "demo"},
        "spec": {"type": "ClusterSetIP", "ips": ["1.2.3.6"], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}));
    crate::peers::wait_metric_above(&metrics, APPLIED.0, APPLIED.1, before, "the new ServiceImport's event applied");
    assert_eq!(short(&dig(at, &["other.demo.svc.clusterset.local", "A", "+short"])), ["1.2.3.6"]);
}

#[test]
fn kubernetes_and_kubernetai_side_by_side_as_in_coredns_kubernetai_54() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let (local, dc1) = (FakeApi::start(), FakeApi::start());
    shop(&local, "cart", "10.1.0.5");
    shop(&dc1, "ledger", "10.2.0.7");
    let dir = Scratch::new("corefiles-54");
    let corefile = posted(&fixture("kubernetai-54.Corefile"), &dir, knot.addr, &[("local", &local), ("dc1", &dc1)]);
    let server = Server::start(&corefile);
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    // Each plugin its zone.
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.kubernetes", "A", "+short"])), ["10.1.0.5"]);
    assert_eq!(short(&dig(at, &["ledger.shop.svc.cluster.kubernetai", "A", "+short"])), ["10.2.0.7"]);
    // The kubernetes stanza runs first (its place in CoreDNS's order) and falls through to the
    // kubernetai stanza for the same zone.
    assert_eq!(short(&dig(at, &["ledger.shop.svc.cluster.kubernetes", "A", "+short"])), ["10.2.0.7"]);
    // A name neither cluster has: the last stanza does not fall through.
    assert!(dig(at, &["none.shop.svc.cluster.kubernetes", "A"]).contains("status: NXDOMAIN"));
    // A later service in the first cluster answers from the kubernetes stanza.
    shop(&local, "ledger", "10.1.0.7");
    eventually(&server, "ledger.shop.svc.cluster.kubernetes", &["10.1.0.7"]);
}

#[test]
fn an_autopath_corefile_with_debug_file_and_transfer() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let local = FakeApi::start();
    shop(&local, "cart", "10.1.0.5");
    let dir = Scratch::new("corefiles-autopath");
    // Reloaded each second, not each minute, so the test need not wait for CoreDNS's default.
    let text = fixture("autopath-file.Corefile")
        .replace("example.db example.org\n", "example.db example.org {\n        reload 1s\n    }\n");
    let corefile = posted(&text, &dir, knot.addr, &[("local", &local)]);
    let server = Server::start(&corefile);
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    // `debug`: the kubernetai stanza's watches write debug lines.
    assert!(server.said_at_start("[DEBUG] plugin/kubernetai: ").is_some(), "debug lines at start");

    // The zone file: exact answers with the apex NS in authority, AA set.
    let out = dig(at, &["www.example.org", "A"]);
    assert!(out.contains("flags: qr aa rd") && out.contains("192.0.2.80"), "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    assert_eq!(short(&dig(at, &["www.example.org", "AAAA", "+short"])), ["2001:db8::80"]);
    // A name the zone lacks: NXDOMAIN with the SOA; a type it lacks: NODATA with the SOA.
    let out = dig(at, &["nothere.example.org", "A"]);
    assert!(out.contains("status: NXDOMAIN") && out.contains("IN\tSOA\tns.example.org."), "{out}");
    let out = dig(at, &["www.example.org", "TXT"]);
    assert!(out.contains("status: NOERROR") && out.contains("ANSWER: 0") && out.contains("SOA"), "{out}");
    // Wildcards, CNAMEs chased inside the zone, MX targets' addresses in additional.
    assert_eq!(short(&dig(at, &["anything.apps.example.org", "A", "+short"])), ["192.0.2.99"]);
    assert_eq!(short(&dig(at, &["alias.example.org", "A", "+short"])), ["192.0.2.80", "www.example.org."]);
    let out = dig(at, &["mail.example.org", "MX"]);
    assert!(out.contains("ADDITIONAL: 3") && out.contains("www.example.org.\t3600\tIN\tA\t192.0.2.80"), "{out}");
    // A CNAME out of the zone, into the cluster: completed through the server.
    assert_eq!(short(&dig(at, &["cart.example.org", "A", "+short"])), ["10.1.0.5", "cart.shop.svc.cluster.local."]);
    // The cluster still answers, and the rest goes to forward.
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    assert_eq!(short(&dig(at, &["www.example.net", "A", "+short"])), ["192.0.2.10"]);

    // AXFR through `transfer`: the SOA first and last, every record between.
    let axfr = dig(at, &["+tcp", "example.org", "AXFR"]);
    let soas = axfr.lines().filter(|l| l.contains("\tSOA\t")).count();
    assert_eq!(soas, 2, "{axfr}");
    for want in ["192.0.2.53", "192.0.2.80", "2001:db8::80", "cart.shop.svc.cluster.local.", "192.0.2.99"] {
        assert!(axfr.contains(want), "{want} in {axfr}");
    }

    // A new serial: the zone is read again within `reload`.
    let db = std::fs::read_to_string(dir.0.join("example.db")).expect("zone");
    let newer = db.replace("2026120401", "2026120402").replace("192.0.2.80", "192.0.2.81");
    harness::put(&dir.0.join("example.db"), newer.as_bytes());
    server.wait_for("plugin/file: Successfully reloaded zone \"example.org.\"");
    assert_eq!(short(&dig(at, &["www.example.org", "A", "+short"])), ["192.0.2.81"]);
}

#[test]
fn without_debug_no_debug_line_is_written() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let local = FakeApi::start();
    shop(&local, "cart", "10.1.0.5");
    let dir = Scratch::new("corefiles-nodebug");
    let text = fixture("autopath-file.Corefile").replace("    debug\n", "");
    let server = Server::start(&posted(&text, &dir, knot.addr, &[("local", &local)]));
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    assert!(server.said_at_start("synced with the Kubernetes API").is_some());
    assert!(server.said_at_start("[DEBUG]").is_none(), "no debug line without debug");
}

#[test]
fn k8s_external_answers_external_and_load_balancer_addresses_from_the_first_cluster_holding_them() {
    let knot = Knot::start(".", UPSTREAM_ZONE);
    let (local, dc1) = (FakeApi::start(), FakeApi::start());
    for api in [&local, &dc1] {
        api.apply(namespace("shop"));
    }
    let mut web = service("shop", "web", "10.96.0.10", json!({}));
    web["spec"]["externalIPs"] = json!(["192.0.2.10"]);
    local.apply(web);
    local.apply(service("shop", "internal", "10.96.0.11", json!({})));
    local.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}));
    local.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "db-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
        "endpoints": [{"addresses": ["10.1.0.1"], "hostname": "db-0", "conditions": {"ready": true}}],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}));
    // A LoadBalancer service only the second cluster has.
    let mut lb = service("shop", "lb", "10.97.0.5", json!({}));
    lb["spec"]["type"] = json!("LoadBalancer");
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}});
    dc1.apply(lb.clone());
    let dir = Scratch::new("corefiles-k8s-external");
    let corefile = posted(&fixture("k8s_external.Corefile"), &dir, knot.addr, &[("local", &local), ("dc1", &dc1)]);
    let server = Server::start(&corefile);
    let at = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));

    assert_eq!(short(&dig(at, &["web.shop.example.org", "A", "+short"])), ["192.0.2.10"]);
    let out = dig(at, &["web.shop.example.org", "A"]);
    assert!(out.contains("flags: qr aa rd") && out.contains("5\tIN\tA\t192.0.2.10"), "TTL 5, authoritative: {out}");
    assert_eq!(short(&dig(at, &["lb.shop.example.org", "A", "+short"])), ["198.51.100.7"]);
    assert_eq!(short(&dig(at, &["_http._tcp.web.shop.example.org", "SRV", "+short"])), ["0 100 80 web.shop.example.org."]);
    // `headless`: a headless service's ready endpoints, by name too.
    assert_eq!(short(&dig(at, &["db-0.db.shop.example.org", "A", "+short"])), ["10.1.0.1"]);
    // No external address: NXDOMAIN with the zone's SOA; the apex has its NS.
    let out = dig(at, &["internal.shop.example.org", "A"]);
    assert!(out.contains("status: NXDOMAIN") && out.contains("SOA\tns1.dns.example.org. hostmaster.dns.example.org."), "{out}");
    assert_eq!(short(&dig(at, &["example.org", "NS", "+short"])), ["ns1.dns.example.org."]);
    // The external zone by AXFR through `transfer`: SOA first and last, the services between.
    let axfr = dig(at, &["example.org", "AXFR"]);
    let records: Vec<&str> = axfr.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect();
    assert!(records.first().is_some_and(|l| l.contains("\tSOA\t")) && records.last().is_some_and(|l| l.contains("\tSOA\t")), "{axfr}");
    assert!(records.iter().any(|l| l.starts_with("web.shop.example.org.") && l.ends_with("A\t192.0.2.10")), "{axfr}");
    assert!(records.iter().any(|l| l.starts_with("lb.shop.example.org.") && l.ends_with("A\t198.51.100.7")), "{axfr}");
    // The cluster zones answer as before, and the rest is forwarded.
    assert_eq!(short(&dig(at, &["web.shop.svc.cluster.local", "A", "+short"])), ["10.96.0.10"]);
    assert_eq!(short(&dig(at, &["www.example.net", "A", "+short"])), ["192.0.2.10"]);

    // Live: a load balancer's new address, and a service that gains one in the first cluster.
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.8"}]}});
    dc1.apply(lb);
    eventually(&server, "lb.shop.example.org.", &["198.51.100.8"]);
    let mut internal = service("shop", "internal", "10.96.0.11", json!({}));
    internal["spec"]["externalIPs"] = json!(["192.0.2.11"]);
    local.apply(internal);
    eventually(&server, "internal.shop.example.org.", &["192.0.2.11"]);
}
