//! Live clusters through kube-rs against fake API servers: the seed's failover scenario with two
//! clusters, an API server that goes away, expires its history and restarts, one that is absent
//! at start, and kubectl driving the fake server to show it speaks the real protocol.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::apiserver::FakeApi;
use crate::harness::{self, Scratch, Server};

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

pub fn service(ns: &str, name: &str, cluster_ip: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
}

pub fn slice(ns: &str, service: &str, ip: &str, ready: bool) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": format!("{service}-1"), "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
           "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}],
           "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
}

/// The A records answered for `name`, sorted, or the rcode when there are none.
pub fn lookup(server: &Server, name: &str) -> Vec<String> {
    let m = harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 5, None)));
    let mut answers: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    answers.sort();
    if answers.is_empty() { vec![format!("rcode {}", m.metadata.response_code.low())] } else { answers }
}

/// Waits until `name` answers `want` (in any order), for at most 20 s.
pub fn eventually(server: &Server, name: &str, want: &[&str]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = lookup(server, name);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: still {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn seed_failover_between_two_live_clusters() {
    let (local, remote) = (FakeApi::start(), FakeApi::start());
    for (api, ip) in [(&local, "10.1.0.5"), (&remote, "10.2.0.5")] {
        api.apply(namespace("shop"));
        api.apply(service("shop", "cache", "None", json!({})));
        api.apply(slice("shop", "cache", ip, true));
    }
    remote.apply(service("shop", "reports", "10.2.0.30", json!({})));
    let dir = Scratch::new("live-failover");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n  ignore empty_service\n  fallthrough\n }}\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n",
            local.url(),
            remote.url()
        ),
    );
    let server = Server::start(&corefile);
    // Startup waited for both clusters: answers are right from the first query.
    assert_eq!(lookup(&server, "cache.shop.svc.cluster.local."), ["10.1.0.5"]);
    assert_eq!(lookup(&server, "reports.shop.svc.cluster.local."), ["10.2.0.30"]);

    // The local service loses its last ready endpoint: the remote cluster answers.
    local.apply(slice("shop", "cache", "10.1.0.5", false));
    eventually(&server, "cache.shop.svc.cluster.local.", &["10.2.0.5"]);
    // And back when it is ready again.
    local.apply(slice("shop", "cache", "10.1.0.5", true));
    eventually(&server, "cache.shop.svc.cluster.local.", &["10.1.0.5"]);
    // A deleted service disappears from the first cluster; the name is then in neither.
    remote.delete("Service", "shop", "reports");
    eventually(&server, "reports.shop.svc.cluster.local.", &["rcode 3"]);
}

#[test]
fn a_cluster_keeps_answering_through_outages_expiry_and_restarts() {
    let api = FakeApi::start();
    api.apply(namespace("app"));
    api.apply(service("app", "web", "10.0.0.1", json!({"tier": "frontend"})));
    api.apply(service("app", "batch", "10.0.0.9", json!({"tier": "backend"})));
    let dir = Scratch::new("live-outage");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n  labels tier=frontend\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start(&corefile);
    assert_eq!(lookup(&server, "web.app.svc.cluster.local."), ["10.0.0.1"]);
    // `labels` went to the API server as a selector: the backend service never arrived.
    assert!(api.requests_matching("labelSelector=tier") > 0);
    assert_eq!(lookup(&server, "batch.app.svc.cluster.local."), ["rcode 3"]);

    // A stream cut mid-event: the watch resumes and later changes arrive.
    api.cut_streams();
    api.apply(service("app", "admin", "10.0.0.3", json!({"tier": "frontend"})));
    eventually(&server, "admin.app.svc.cluster.local.", &["10.0.0.3"]);

    // Streams cut and the server gone: the last state keeps answering.
    api.set_down(true);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lookup(&server, "web.app.svc.cluster.local."), ["10.0.0.1"]);

    // Back, with its history expired (410 Gone on resume): the watch relists and carries on.
    api.compact();
    api.apply(service("app", "api", "10.0.0.2", json!({"tier": "frontend"})));
    api.set_down(false);
    eventually(&server, "api.app.svc.cluster.local.", &["10.0.0.2"]);
    assert_eq!(lookup(&server, "web.app.svc.cluster.local."), ["10.0.0.1"]);

    // A restart with a new resourceVersion history: relisted, nothing lost.
    api.restart();
    api.apply(service("app", "web", "10.0.0.11", json!({"tier": "frontend"})));
    eventually(&server, "web.app.svc.cluster.local.", &["10.0.0.11"]);
    assert_eq!(lookup(&server, "api.app.svc.cluster.local."), ["10.0.0.2"]);
}

#[test]
fn an_api_server_absent_at_start_is_served_unsynced_then_synced() {
    let api = FakeApi::start();
    api.apply(namespace("app"));
    api.apply(service("app", "web", "10.0.0.1", json!({})));
    api.set_down(true);
    let dir = Scratch::new("live-absent");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n ready 127.0.0.1:0\n kubernetai cluster.local {{\n  endpoint {}\n  startup_timeout 1s\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start(&corefile);
    let ready = crate::peers::url_in(&server.wait_for("plugin/ready: serving"));
    // Not synced: a name error is SERVFAIL, as CoreDNS answers before its first list. A cluster
    // reached by `endpoint` is a remote one: past its startup_timeout it no longer holds the
    // replica out of service (an in-cluster stanza would; see plugin.rs's tests).
    assert_eq!(lookup(&server, "web.app.svc.cluster.local."), ["rcode 2"]);
    assert_eq!(crate::peers::curl(&ready), (200, "OK".to_string()));
    api.set_down(false);
    eventually(&server, "web.app.svc.cluster.local.", &["10.0.0.1"]);
    // Synced once every watched kind has listed (endpoint slices may come a moment later).
    eventually(&server, "nope.app.svc.cluster.local.", &["rcode 3"]);
    assert_eq!(crate::peers::curl(&ready), (200, "OK".to_string()));
}

#[test]
fn kubectl_lists_and_watches_the_fake_api_server() {
    let api = FakeApi::start();
    api.apply(namespace("app"));
    api.apply(service("app", "first", "10.0.0.1", json!({})));
    let home = Scratch::new("kubectl-home");
    let mut kubectl = Command::new("kubectl")
        .args(["--server", &api.url(), "get", "services", "--all-namespaces", "--watch", "--output", "json"])
        .env("HOME", &home.0)
        .env("KUBECONFIG", home.0.join("none"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubectl is installed on these machines");
    let stdout = kubectl.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("kubectl never printed {needle:?}"),
            }
        }
    };
    wait_for("\"name\": \"first\"");
    // A service created while kubectl watches arrives through the watch stream.
    api.apply(service("app", "second", "10.0.0.2", json!({})));
    wait_for("\"name\": \"second\"");
    let _ = kubectl.kill();
    let _ = kubectl.wait();
    assert!(api.requests_matching("watch=") > 0, "kubectl watched");
}

#[test]
fn seed_three_clusters_three_zones_with_paged_lists() {
    let apis = [FakeApi::start(), FakeApi::start(), FakeApi::start()];
    for (i, api) in apis.iter().enumerate() {
        api.apply(namespace("default"));
        api.apply(service("default", "api", &format!("10.{i}.0.1"), json!({})));
    }
    // More services than one page of kube-rs's list (500): the list is read with `continue`.
    for n in 0..1200 {
        apis[0].apply(service(
            "default",
            &format!("s{n}"),
            &format!("10.0.{}.{}", 1 + n / 250, n % 250 + 1),
            json!({}),
        ));
    }
    let dir = Scratch::new("live-three");
    let zones = ["cluster.local", "assemblage.local", "conglomeration.local"];
    let stanzas: String = zones
        .iter()
        .zip(&apis)
        .map(|(zone, api)| format!(" kubernetai {zone} {{\n  endpoint {}\n }}\n", api.url()))
        .collect();
    let corefile = dir.write("Corefile", &format!(". {{\n bind 127.0.0.1\n errors\n{stanzas}}}\n"));
    let server = Server::start(&corefile);
    for (i, zone) in zones.iter().enumerate() {
        assert_eq!(lookup(&server, &format!("api.default.svc.{zone}.")), [format!("10.{i}.0.1")]);
    }
    assert_eq!(lookup(&server, "s0.default.svc.cluster.local."), ["10.0.1.1"]);
    assert_eq!(lookup(&server, "s1199.default.svc.cluster.local."), ["10.0.5.200"]);
    assert!(apis[0].requests_matching("continue=") > 0, "the list was paged");
    // Zones are separate: a name of one cluster does not exist under another's zone.
    assert_eq!(lookup(&server, "s0.default.svc.assemblage.local."), ["rcode 3"]);
}

#[test]
fn kubeconfig_contexts_tokens_and_exec_credential_plugins() {
    let (a, b) = (FakeApi::start(), FakeApi::start());
    for (api, ip) in [(&a, "10.7.0.1"), (&b, "10.8.0.1")] {
        api.apply(namespace("app"));
        api.apply(service("app", "web", ip, json!({})));
    }
    let dir = Scratch::new("live-kubeconfig");
    // Two contexts: a static token for one cluster, an exec credential plugin for the other.
    let plugin = dir.write(
        "credentials.sh",
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-token\"}}'\n",
    );
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let kubeconfig = dir.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: a\n  cluster:\n    server: {}\n- name: b\n  cluster:\n    server: {}\nusers:\n- name: token\n  user:\n    token: static-token\n- name: exec\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {plugin}\n      interactiveMode: Never\ncontexts:\n- name: a\n  context:\n    cluster: a\n    user: token\n- name: b\n  context:\n    cluster: b\n    user: exec\n",
            a.url(),
            b.url(),
            plugin = plugin.display()
        ),
    );
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n kubernetai a.local {{\n  kubeconfig {k} a\n }}\n kubernetai b.local {{\n  kubeconfig {k} b\n }}\n}}\n",
            k = kubeconfig.display()
        ),
    );
    let server = Server::start(&corefile);
    assert_eq!(lookup(&server, "web.app.svc.a.local."), ["10.7.0.1"]);
    assert_eq!(lookup(&server, "web.app.svc.b.local."), ["10.8.0.1"]);
    assert!(a.requests_matching("authorization=Bearer static-token") > 0, "the context's token was sent");
    assert!(b.requests_matching("authorization=Bearer exec-token") > 0, "the exec plugin's token was sent");
}
