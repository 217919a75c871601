//! The CoreDNS plugins beside kubernetai, through the real binary and real peers: the Corefile
//! operators run (two clusters, forward to a knotd upstream, cache, loadbalance, loop, reload,
//! health with lameduck, ready, prometheus), forward's options against a scripted upstream, a
//! forwarding loop, zone transfers, autopath, reload, log classes and consolidated errors.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::apiserver::FakeApi;
use crate::harness::{self, Scratch, Server};
use crate::live::{eventually, lookup, namespace, service, slice};
use crate::peers::{Knot, Upstream, curl, dig, free_port, kdig, metric, runnable, url_in};

/// The upstream's zone: the root, so every name outside the cluster gets a real answer (NXDOMAIN
/// for all but www.example.org), whatever search domains the test machine's resolv.conf adds.
const ROOT_ZONE: &str = "$ORIGIN .\n$TTL 300\n@ SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300\n@ NS ns.example.org.\nns.example.org. A 192.0.2.1\nwww.example.org. A 192.0.2.10\n";

fn headless(ns: &str, name: &str, ips: &[&str]) -> [Value; 2] {
    let endpoints: Vec<Value> =
        ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
    [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {"name": format!("{name}-1"), "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
               "endpoints": endpoints, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
    ]
}

fn external(ns: &str, name: &str, target: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"type": "ExternalName", "externalName": target}})
}

/// The `+short` lines of a dig or kdig answer, sorted.
fn short(out: &str) -> Vec<String> {
    let mut lines: Vec<String> =
        out.lines().filter(|l| !l.is_empty() && !l.starts_with(';')).map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn the_corefile_operators_run_serves_both_clusters_and_forwards_the_rest() {
    let knot = Knot::start(".", ROOT_ZONE);
    let (local, dc1) = (FakeApi::start(), FakeApi::start());
    for api in [&local, &dc1] {
        api.apply(namespace("shop"));
    }
    local.apply(service("shop", "cart", "10.1.0.5", json!({})));
    local.apply(slice("shop", "cart", "10.1.1.5", true));
    local.apply(external("shop", "docs", "www.example.org"));
    for object in headless("shop", "pool", &["10.1.2.1", "10.1.2.2", "10.1.2.3", "10.1.2.4"]) {
        local.apply(object);
    }
    dc1.apply(service("shop", "ledger", "10.2.0.7", json!({})));
    dc1.apply(slice("shop", "ledger", "10.2.1.7", true));

    let dir = Scratch::new("plugins-issue");
    // The operators' Corefile as they wrote it; only what a test machine must change is changed.
    let fixture = std::fs::read_to_string(harness::root().join("tests/e2e/plugins/issue.Corefile")).expect("fixture");
    let text = runnable(&fixture, &dir, &local.url(), &dc1.url(), knot.addr);
    let corefile = dir.write("Corefile", &text);
    let mut server = Server::start(&corefile);
    let health = url_in(&server.wait_for("plugin/health: serving"));
    let ready = url_in(&server.wait_for("plugin/ready: serving"));
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    // Bound to every address; asked on loopback, where the answers come from.
    let at = std::net::SocketAddr::from(([127, 0, 0, 1], server.addr.port()));

    // Names of both clusters, over UDP with dig and TCP with kdig.
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    assert_eq!(short(&kdig(at, &["+tcp", "ledger.shop.svc.cluster.local", "A", "+short"])), ["10.2.0.7"]);
    assert_eq!(short(&dig(at, &["-x", "10.2.0.7", "+short"])), ["ledger.shop.svc.cluster.local."]);
    assert!(dig(at, &["nothing.shop.svc.cluster.local", "A"]).contains("status: NXDOMAIN"));
    // Everything else goes to the upstream, and ExternalName targets resolve through it.
    let out = kdig(at, &["www.example.org", "A"]);
    assert!(out.contains("192.0.2.10"), "{out}");
    assert_eq!(short(&kdig(at, &["+tcp", "www.example.org", "A", "+short"])), ["192.0.2.10"]);
    assert_eq!(short(&dig(at, &["docs.shop.svc.cluster.local", "A", "+short"])), ["192.0.2.10", "www.example.org."]);
    assert!(dig(at, &["missing.example.org", "A"]).contains("status: NXDOMAIN"));

    // loadbalance: the pool's four addresses come in more than one order.
    let orders: std::collections::BTreeSet<String> =
        (0..30).map(|_| dig(at, &["pool.shop.svc.cluster.local", "A", "+short"])).collect();
    assert!(orders.len() > 1, "one order only: {orders:?}");
    assert!(orders.iter().all(|o| short(o) == ["10.1.2.1", "10.1.2.2", "10.1.2.3", "10.1.2.4"]), "{orders:?}");

    // health, ready, prometheus.
    assert_eq!(curl(&health), (200, "OK".to_string()));
    assert_eq!(curl(&ready), (200, "OK".to_string()));
    let (status, text) = curl(&metrics);
    assert_eq!(status, 200);
    let labels = "server=\"dns://:0\",zone=\".\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"";
    assert!(metric(&text, "coredns_dns_requests_total", labels) >= 5.0, "{text}");
    assert!(metric(&text, "coredns_dns_responses_total", "rcode=\"NOERROR\",plugin=\"kubernetai\"") >= 1.0, "{text}");
    assert!(metric(&text, "coredns_dns_responses_total", "rcode=\"NXDOMAIN\"") >= 1.0, "{text}");
    assert!(metric(&text, "coredns_dns_request_duration_seconds_count", "zone=\".\"") >= 5.0, "{text}");
    assert!(metric(&text, "coredns_cache_hits_total", "type=\"success\"") >= 1.0, "{text}");
    assert!(
        metric(&text, "coredns_proxy_request_duration_seconds_count", &format!("to=\"{}\"", knot.addr)) >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "kubernetai_stanza_synced", "server=\"dns://:0\""), 2.0, "{text}");
    assert!(metric(&text, "kubernetai_watch_events_total", "event=\"apply\"") >= 6.0, "{text}");
    assert_eq!(metric(&text, "coredns_plugin_enabled", "name=\"forward\""), 1.0, "{text}");

    // cache 30: with the upstream gone, its answer is still served.
    drop(knot);
    assert_eq!(short(&dig(at, &["www.example.org", "A", "+short"])), ["192.0.2.10"]);
    assert!(dig(at, &["www.example.net", "A"]).contains("status: SERVFAIL"), "upstream gone, nothing cached");
    server.wait_for("[ERROR] plugin/errors: 2 www.example.net. A:");

    // lameduck 5s: after SIGTERM the server keeps answering for a while, then stops.
    let stopping = Instant::now();
    server.signal("TERM");
    server.wait_for("Going into lameduck mode for 5s");
    assert_eq!(short(&dig(at, &["cart.shop.svc.cluster.local", "A", "+short"])), ["10.1.0.5"]);
    assert_eq!(curl(&health).0, 200, "health answers during lameduck");
    assert_eq!(curl(&ready).0, 503, "not ready during lameduck, as CoreDNS");
    assert!(server.exited(Duration::from_secs(15)).is_some(), "stopped after lameduck");
    assert!(stopping.elapsed() >= Duration::from_secs(4), "stopped after {:?}", stopping.elapsed());
}

/// A Corefile with one `forward` to `to` and the given options block.
fn forward_server(dir: &Scratch, to: &str, options: &str) -> Server {
    let corefile = dir.write("Corefile", &format!(". {{\n bind 127.0.0.1\n forward . {to} {{\n{options}\n }}\n}}\n"));
    Server::start(&corefile)
}

#[test]
fn forward_transports_policies_and_limits() {
    let dir = Scratch::new("plugins-forward");
    let up = Upstream::start(Duration::ZERO);
    let a = |server: &Server, name: &str| short(&dig(server.addr, &[name, "A", "+short"]));

    // UDP clients go over UDP; TCP clients over TCP.
    let server = forward_server(&dir, &up.addr.to_string(), "");
    assert_eq!(a(&server, "one.example."), ["192.0.2.1"]);
    assert_eq!((up.udp.load(Ordering::SeqCst), up.tcp.load(Ordering::SeqCst)), (1, 0));
    assert_eq!(short(&kdig(server.addr, &["+tcp", "two.example.", "A", "+short"])), ["192.0.2.1"]);
    assert_eq!(up.tcp.load(Ordering::SeqCst), 1);
    // A truncated upstream answer reaches a UDP client truncated; it retries over TCP itself.
    let answer = harness::parse(&harness::udp(server.addr, &harness::query("big.example.", RecordType::TXT, 9, None)));
    assert!(answer.metadata.truncation);
    assert_eq!(dig(server.addr, &["big.example.", "TXT", "+short"]).lines().count(), 20, "dig retried over TCP");
    drop(server);

    // force_tcp: every exchange over TCP.
    let (udp_before, tcp_before) = (up.udp.load(Ordering::SeqCst), up.tcp.load(Ordering::SeqCst));
    let server = forward_server(&dir, &up.addr.to_string(), "  force_tcp");
    assert_eq!(a(&server, "three.example."), ["192.0.2.1"]);
    assert_eq!(up.udp.load(Ordering::SeqCst), udp_before);
    assert_eq!(up.tcp.load(Ordering::SeqCst), tcp_before + 1);
    drop(server);

    // prefer_udp: a TCP client's query goes over UDP, and over TCP again when truncated.
    let (udp_before, tcp_before) = (up.udp.load(Ordering::SeqCst), up.tcp.load(Ordering::SeqCst));
    let server = forward_server(&dir, &up.addr.to_string(), "  prefer_udp");
    assert_eq!(
        kdig(server.addr, &["+tcp", "big.example.", "TXT", "+short"]).lines().filter(|l| l.starts_with('"')).count(),
        20
    );
    assert_eq!(up.udp.load(Ordering::SeqCst), udp_before + 1);
    assert_eq!(up.tcp.load(Ordering::SeqCst), tcp_before + 1);
    drop(server);

    // except: the excluded names are not forwarded; with no next plugin they fail.
    let server = forward_server(&dir, &up.addr.to_string(), "  except internal.example");
    assert!(dig(server.addr, &["db.internal.example.", "A"]).contains("status: SERVFAIL"));
    assert_eq!(a(&server, "db.public.example."), ["192.0.2.1"]);
    drop(server);

    // sequential with a first upstream that swallows every query (a blackhole, not a refusal):
    // the first query waits out the exchange timeout and is answered by the second; the failure
    // starts the health check, and once its failed probes pass max_fails (CoreDNS: down when
    // fails > max_fails) later queries skip the first without waiting; it is brought back once
    // it answers a probe.
    let hole = Upstream::start(Duration::ZERO);
    hole.answering.store(false, Ordering::SeqCst);
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n forward . {} {} {{\n  policy sequential\n  max_fails 1\n  health_check 300ms\n }}\n}}\n",
            hole.addr, up.addr
        ),
    );
    let server = Server::start(&corefile);
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    assert_eq!(a(&server, "seq0.example."), ["192.0.2.1"]);
    let failures =
        |text: &str| metric(text, "coredns_proxy_healthcheck_failures_total", &format!("to=\"{}\"", hole.addr));
    // Marked down by that failure, it is probed every 300 ms, each probe failing after its 1 s
    // timeout: wait for the first counted.
    let until = |what: &str, done: &mut dyn FnMut() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("the probe fails on the blackhole, counted", &mut || failures(&curl(&metrics).1) >= 1.0);
    let swallowed = hole.udp.load(Ordering::SeqCst);
    for i in 1..4 {
        let started = Instant::now();
        assert_eq!(a(&server, &format!("seq{i}.example.")), ["192.0.2.1"]);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the down upstream was skipped: {:?}",
            started.elapsed()
        );
    }
    until("probes reach it while it is down", &mut || hole.udp.load(Ordering::SeqCst) > swallowed);
    // It answers again: a probe brings it back (one in flight may still time out), and
    // sequential sends it the next query: ask new names until one reaches it first.
    hole.answering.store(true, Ordering::SeqCst);
    let answered_by_hole = || {
        let text = curl(&metrics).1;
        metric(&text, "coredns_proxy_request_duration_seconds_count", &format!("to=\"{}\"", hole.addr))
    };
    let mut n = 0;
    until("the recovered upstream answers first again", &mut || {
        n += 1;
        let before = answered_by_hole();
        assert_eq!(a(&server, &format!("back{n}.example.")), ["192.0.2.1"]);
        answered_by_hole() > before
    });
    drop(server);

    // max_concurrent: beyond the limit, queries are refused at once.
    let slow = Upstream::start(Duration::from_millis(800));
    let server = forward_server(&dir, &slow.addr.to_string(), "  max_concurrent 2");
    let addr = server.addr;
    let outcomes: Vec<String> = (0..6)
        .map(|i| std::thread::spawn(move || dig(addr, &[&format!("c{i}.example."), "A"])))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("dig thread"))
        .collect();
    let refused = outcomes.iter().filter(|o| o.contains("status: REFUSED")).count();
    let answered = outcomes.iter().filter(|o| o.contains("192.0.2.1")).count();
    assert!(refused >= 1 && answered >= 1 && refused + answered == 6, "{refused} refused, {answered} answered");
}

#[test]
fn a_forwarding_loop_is_detected_and_the_server_stops() {
    let dir = Scratch::new("plugins-loop");
    let port = free_port();
    let corefile =
        dir.write("Corefile", &format!(".:{port} {{\n bind 127.0.0.1\n loop\n forward . 127.0.0.1:{port}\n}}\n"));
    let mut server = Server::start(&corefile);
    let line = server.wait_for("[FATAL] plugin/loop: Loop");
    assert!(line.contains("detected for zone \".\"") && line.contains("Query: \"HINFO "), "{line}");
    let status = server.exited(Duration::from_secs(10)).expect("the server stopped");
    assert!(!status.success());
}

#[test]
fn zone_transfers_go_to_allowed_peers_over_tcp_only() {
    let dir = Scratch::new("plugins-transfer");
    let manifests = dir.write(
        "cluster.json",
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": [
            namespace("shop"), service("shop", "cart", "10.1.0.5", json!({})),
            headless("shop", "pool", &["10.1.2.1"])[0], headless("shop", "pool", &["10.1.2.1"])[1],
        ]}))
        .expect("json"),
    );
    let m = manifests.display();
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n transfer cluster.local {{\n  to 127.0.0.1\n }}\n transfer other.local {{\n  to 192.0.2.99\n }}\n kubernetai cluster.local {{\n  manifests {m}\n }}\n kubernetai other.local {{\n  manifests {m}\n }}\n}}\n"
        ),
    );
    let server = Server::start(&corefile);
    let axfr: String = kdig(server.addr, &["cluster.local", "AXFR"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    for record in [
        "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local.",
        "cart.shop.svc.cluster.local. 5 IN A 10.1.0.5",
        "_http._tcp.cart.shop.svc.cluster.local. 5 IN SRV 0 100 80 cart.shop.svc.cluster.local.",
        "pool.shop.svc.cluster.local. 5 IN A 10.1.2.1",
        "10-1-2-1.pool.shop.svc.cluster.local. 5 IN A 10.1.2.1",
        "_http._tcp.pool.shop.svc.cluster.local. 5 IN SRV 0 100 80 10-1-2-1.pool.shop.svc.cluster.local.",
    ] {
        assert!(axfr.contains(record), "{record:?} in:\n{axfr}");
    }
    assert_eq!(axfr.matches(" SOA ").count(), 2, "SOA opens and closes the transfer:\n{axfr}");
    // A peer not in `to` is refused; so is AXFR over UDP.
    let refused = harness::tcp(server.addr, &[harness::query("other.local.", RecordType::AXFR, 3, None)]);
    assert_eq!(harness::parse(&refused[0]).metadata.response_code.low(), 5);
    let udp = harness::parse(&harness::udp(server.addr, &harness::query("cluster.local.", RecordType::AXFR, 4, None)));
    assert_eq!(udp.metadata.response_code.low(), 5);
}

#[test]
fn autopath_walks_the_client_pods_search_path() {
    let knot = Knot::start(".", ROOT_ZONE);
    let dir = Scratch::new("plugins-autopath");
    // The client of these queries is 127.0.0.1: a pod with that address lives in "shop".
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "shop"},
                     "status": {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}});
    let manifests = dir.write(
        "cluster.json",
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": [
            namespace("shop"), namespace("billing"), service("billing", "ledger", "10.1.0.9", json!({})), pod,
        ]}))
        .expect("json"),
    );
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n autopath @kubernetai\n kubernetai cluster.local {{\n  manifests {}\n  pods verified\n }}\n forward . {}\n}}\n",
            manifests.display(),
            knot.addr
        ),
    );
    let server = Server::start(&corefile);
    // What a pod's resolver asks first for "ledger.billing" (ndots 5): answered at once.
    let out = dig(server.addr, &["ledger.billing.shop.svc.cluster.local", "A", "+short"]);
    assert_eq!(short(&out), ["10.1.0.9", "ledger.billing.svc.cluster.local."]);
    // And for an external name: the walk ends at the name itself, through forward.
    let out: String = dig(server.addr, &["www.example.org.shop.svc.cluster.local", "A"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    // The CNAME takes the TTL of the record it points at, as CoreDNS's autopath writes it.
    assert!(out.contains("www.example.org.shop.svc.cluster.local. 300 IN CNAME www.example.org."), "{out}");
    assert!(out.contains("www.example.org. 300 IN A 192.0.2.10"), "{out}");
    // A name outside the client's first search domain is answered as asked.
    assert!(
        dig(server.addr, &["ledger.billing.svc.cluster.local.svc.cluster.local", "A"]).contains("status: NXDOMAIN")
    );
}

#[test]
fn reload_takes_a_changed_corefile_and_refuses_a_broken_one() {
    let dir = Scratch::new("plugins-reload");
    let cluster = |ip: &str| {
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": [
            namespace("shop"), service("shop", "cart", ip, json!({})),
        ]}))
        .expect("json")
    };
    let a = dir.write("a.json", &cluster("10.1.0.1"));
    let b = dir.write("b.json", &cluster("10.2.0.1"));
    let write = |zone_b: bool| {
        let extra =
            if zone_b { format!(" kubernetai b.local {{\n  manifests {}\n }}\n", b.display()) } else { String::new() };
        dir.write(
            "Corefile",
            &format!(
                ". {{\n bind 127.0.0.1\n reload 2s 1s\n kubernetai a.local {{\n  manifests {}\n }}\n{extra}}}\n",
                a.display()
            ),
        )
    };
    let corefile = write(false);
    let server = Server::start(&corefile);
    assert_eq!(lookup(&server, "cart.shop.svc.a.local."), ["10.1.0.1"]);
    assert_eq!(lookup(&server, "cart.shop.svc.b.local."), ["rcode 2"], "no stanza, no next plugin");
    write(true);
    server.wait_for("Reloading complete");
    eventually(&server, "cart.shop.svc.b.local.", &["10.2.0.1"]);
    assert_eq!(lookup(&server, "cart.shop.svc.a.local."), ["10.1.0.1"], "same socket, still serving");
    std::fs::write(&corefile, ". {\n kubernetai b.local {\n  ttl forever\n }\n}\n").expect("write");
    let line = server.wait_for("Restart failed");
    assert!(line.contains("Corefile:3 - kubernetai: ttl \"forever\" is not a number"), "{line}");
    assert_eq!(lookup(&server, "cart.shop.svc.b.local."), ["10.2.0.1"], "the old configuration keeps serving");
}

#[test]
fn log_classes_and_consolidated_errors() {
    let dir = Scratch::new("plugins-log");
    let manifests = dir.write(
        "cluster.json",
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": [
            namespace("shop"), service("shop", "cart", "10.1.0.5", json!({})),
        ]}))
        .expect("json"),
    );
    let dead = free_port();
    let corefile = dir.write(
        "Corefile",
        &format!(
            "cluster.local {{\n bind 127.0.0.1\n log {{\n  class denial error\n }}\n kubernetai {{\n  manifests {}\n }}\n}}\n. {{\n bind 127.0.0.1\n errors {{\n  consolidate 2s \"i/o timeout|refused\"\n }}\n log . \"{{remote}} {{type}} {{name}} {{rcode}} {{>opcode}}\"\n forward . 127.0.0.1:{dead}\n}}\n",
            manifests.display()
        ),
    );
    let server = Server::start(&corefile);
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local."), ["10.1.0.5"]);
    assert_eq!(lookup(&server, "gone.shop.svc.cluster.local."), ["rcode 3"]);
    let lines = server.lines_until("gone.shop.svc.cluster.local.");
    let logged = lines.last().expect("a line");
    assert!(
        logged.starts_with("[INFO] 127.0.0.1:")
            && logged.contains(" \"A IN gone.shop.svc.cluster.local. udp ")
            && logged.contains("\" NXDOMAIN qr,aa,rd "),
        "{logged}"
    );
    assert!(!lines.iter().any(|l| l.contains("cart.shop")), "success is not a logged class: {lines:?}");
    // Upstream failures: a custom log format, and errors folded into one line per period.
    for i in 0..3 {
        assert_eq!(lookup(&server, &format!("x{i}.example.")), ["rcode 2"]);
    }
    let line = server.wait_for("[INFO] 127.0.0.1 A x2.example. SERVFAIL 0");
    assert!(line.ends_with("SERVFAIL 0"), "{line}");
    let line = server.wait_for("errors like");
    assert!(line.contains("[ERROR] plugin/errors: 3 errors like 'i/o timeout|refused' occurred in last 2s"), "{line}");
}

#[test]
fn any_answers_rfc8482_and_minimal_leaves_out_authority_and_additional() {
    let dir = Scratch::new("plugins-any-minimal");
    let mut items = vec![namespace("shop")];
    items.extend(headless("shop", "db", &["10.1.2.1", "10.1.2.2"]));
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let corefile = |plugins: &str| {
        dir.write(
            "Corefile",
            &format!(
                ". {{\n bind 127.0.0.1\n{plugins} kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
                cluster.display()
            ),
        )
    };
    let srv = "_http._tcp.db.shop.svc.cluster.local.";

    // Without the plugins: ANY is answered by kubernetai, SRV carries its glue.
    let plain = Server::start(&corefile(""));
    let glue = dig(plain.addr, &[srv, "SRV"]);
    assert!(glue.contains("ADDITIONAL SECTION") && glue.contains("10.1.2.1"), "{glue}");
    drop(plain);

    // As CoreDNS's README shows: `example.org. 8482 IN HINFO "ANY obsoleted" "See RFC 8482"`.
    let server = Server::start(&corefile(" any\n minimal\n"));
    let any = dig(server.addr, &["db.shop.svc.cluster.local.", "ANY", "+noall", "+answer"]);
    assert_eq!(
        any.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect::<Vec<_>>(),
        ["db.shop.svc.cluster.local. 8482\tIN\tHINFO\t\"ANY obsoleted\" \"See RFC 8482\""],
        "{any}"
    );
    // minimal: the SRV answer whole, no glue; a name error keeps its SOA.
    let lean = dig(server.addr, &[srv, "SRV"]);
    assert!(lean.contains("ANSWER: 2") && lean.contains("ADDITIONAL: 1") && !lean.contains("10.1.2.1"), "{lean}");
    let nx = dig(server.addr, &["nope.shop.svc.cluster.local.", "A"]);
    assert!(nx.contains("NXDOMAIN") && nx.contains("AUTHORITY: 1"), "{nx}");
}

#[test]
fn hosts_answers_from_its_file_and_inline_lines_as_k3s_uses_it() {
    let dir = Scratch::new("plugins-hosts");
    let mut items = vec![namespace("shop")];
    items.push(service("shop", "cart", "10.43.0.5", json!({})));
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let hosts = dir.write("NodeHosts", "192.168.1.11 node-a\n192.168.1.12 node-b # a comment\nfd00::12 node-b\n");
    // k3s's Corefile shape: the nodes' names from a file, everything else falls through.
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n hosts {} {{\n  10.0.0.9 registry.local\n  ttl 60\n  reload 200ms\n  fallthrough\n }}\n \
             kubernetai cluster.local in-addr.arpa {{\n  manifests {}\n }}\n}}\n\
             strict.test {{\n bind 127.0.0.1\n hosts {} strict.test {{\n  10.0.0.10 known.strict.test\n }}\n}}\n",
            hosts.display(),
            cluster.display(),
            hosts.display()
        ),
    );
    let server = Server::start(&corefile);
    let a = dig(server.addr, &["node-a.", "A"]);
    let record = |out: &str, want: &[&str]| out.lines().any(|l| l.split_whitespace().eq(want.iter().copied()));
    assert!(a.contains("flags: qr aa rd") && record(&a, &["node-a.", "60", "IN", "A", "192.168.1.11"]), "{a}");
    assert_eq!(short(&dig(server.addr, &["+short", "registry.local.", "A"])), ["10.0.0.9"]);
    assert_eq!(short(&dig(server.addr, &["+short", "node-b.", "AAAA"])), ["fd00::12"]);
    // A name it holds, of a type it has no record of: NODATA, not passed on.
    let nodata = dig(server.addr, &["node-a.", "TXT"]);
    assert!(nodata.contains("NOERROR") && nodata.contains("ANSWER: 0"), "{nodata}");
    assert_eq!(short(&dig(server.addr, &["+short", "-x", "192.168.1.12"])), ["node-b."]);
    // Names it does not hold fall through to kubernetai, forward and reverse.
    assert_eq!(short(&dig(server.addr, &["+short", "cart.shop.svc.cluster.local.", "A"])), ["10.43.0.5"]);
    assert_eq!(short(&dig(server.addr, &["+short", "-x", "10.43.0.5"])), ["cart.shop.svc.cluster.local."]);

    // The file is read again when it changes (reload 200ms).
    dir.write("NodeHosts", "192.168.1.11 node-a\n192.168.1.13 node-c\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while short(&dig(server.addr, &["+short", "node-c.", "A"])) != ["192.168.1.13"] {
        assert!(Instant::now() < deadline, "node-c never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone = dig(server.addr, &["node-b.", "A"]);
    assert!(gone.contains("status: SERVFAIL"), "node-b fell through to kubernetai, which has no next plugin: {gone}");

    // Without fallthrough, a name it does not hold is SERVFAIL (no SOA to say NXDOMAIN with).
    let strict = |name: &str| dig(server.addr, &[name, "A"]);
    assert!(strict("known.strict.test.").contains("10.0.0.10"));
    assert!(strict("unknown.strict.test.").contains("status: SERVFAIL"));
    let metrics_free = dig(server.addr, &["node-a.strict.test.", "A"]);
    assert!(metrics_free.contains("status: SERVFAIL"), "the file's names are outside strict.test: {metrics_free}");
}

#[test]
fn rewrite_serves_another_clusters_domain_under_the_asked_name() {
    let dir = Scratch::new("plugins-rewrite");
    let mut items = vec![namespace("shop")];
    items.push(service("shop", "cart", "10.43.0.5", json!({})));
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n rewrite name suffix .svc.dc1.example. .svc.cluster.local. answer auto\n \
             rewrite stop {{\n  name regex (.*)\\.legacy\\. {{1}}.shop.svc.cluster.local.\n  \
             answer name (.*)\\.shop\\.svc\\.cluster\\.local\\. {{1}}.legacy.\n }}\n \
             rewrite name exact db.example. cart.shop.svc.cluster.local.\n \
             rewrite ttl exact cart.shop.svc.cluster.local. 7\n \
             kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            cluster.display()
        ),
    );
    let server = Server::start(&corefile);
    let records = |name: &str, qtype: &str| -> Vec<Vec<String>> {
        let out = dig(server.addr, &[name, qtype, "+noall", "+answer", "+question"]);
        out.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(";;"))
            .map(|l| l.trim_start_matches(';').split_whitespace().map(String::from).collect())
            .collect()
    };
    // Suffix with answer auto: the question and the records under the name asked.
    assert_eq!(
        records("cart.shop.svc.dc1.example.", "A"),
        [
            vec!["cart.shop.svc.dc1.example.", "IN", "A"],
            vec!["cart.shop.svc.dc1.example.", "5", "IN", "A", "10.43.0.5"]
        ]
    );
    // The SRV's target is a value: mapped back too.
    let srv = records("_http._tcp.cart.shop.svc.dc1.example.", "SRV");
    assert_eq!(srv[1][7], "cart.shop.svc.dc1.example.", "{srv:?}");
    // A regex rule in a block, its answer name rule.
    assert_eq!(records("cart.legacy.", "A")[1], ["cart.legacy.", "5", "IN", "A", "10.43.0.5"]);
    // An exact rule maps its answer back always.
    assert_eq!(records("db.example.", "A")[1], ["db.example.", "5", "IN", "A", "10.43.0.5"]);
    // The ttl rule applies to the name asked directly, and not after a name rule stopped the list.
    assert_eq!(records("cart.shop.svc.cluster.local.", "A")[1][1], "7");
    // A name no rule matches goes on untouched.
    let nx = dig(server.addr, &["nope.shop.svc.cluster.local.", "A"]);
    assert!(nx.contains("NXDOMAIN"), "{nx}");
}

#[test]
fn acl_and_bufsize_answer_as_coredns() {
    let dir = Scratch::new("plugins-acl");
    let mut items = vec![namespace("shop"), service("shop", "cart", "10.43.0.5", json!({}))];
    let many: Vec<String> = (1..=60).map(|i| format!("10.1.3.{i}")).collect();
    items.extend(headless("shop", "db", &many.iter().map(String::as_str).collect::<Vec<_>>()));
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let corefile = dir.write(
        "Corefile",
        &format!(
            "cluster.local {{\n bind 127.0.0.1\n bufsize 512\n prometheus 127.0.0.1:0 {{\n  runtime_metrics\n }}\n \
             ready 127.0.0.1:0 {{\n  monitor continuously\n }}\n acl {{\n  block type AAAA\n  filter type TXT\n  allow net 127.0.0.0/8\n  block\n }}\n \
             kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n\
             other.local {{\n bind 127.0.0.1\n acl {{\n  allow net 10.0.0.0/8 192.168.0.0/16\n  block\n }}\n acl {{\n  allow\n }}\n}}\n\
             quiet.local {{\n bind 127.0.0.1\n acl {{\n  drop net *\n }}\n}}\n",
            cluster.display()
        ),
    );
    let server = Server::start(&corefile);
    // One listener for both (the same configured address): ready's line comes first.
    let ready = url_in(&server.wait_for("plugin/ready: serving"));
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    assert_eq!(short(&dig(server.addr, &["+short", "cart.shop.svc.cluster.local.", "A"])), ["10.43.0.5"]);
    assert_eq!(curl(&ready).0, 200, "monitor continuously still answers ready once synced");
    let blocked = dig(server.addr, &["cart.shop.svc.cluster.local.", "AAAA"]);
    assert!(blocked.contains("status: REFUSED"), "{blocked}");
    let filtered = dig(server.addr, &["cart.shop.svc.cluster.local.", "TXT"]);
    assert!(filtered.contains("status: NOERROR") && filtered.contains("ANSWER: 0"), "{filtered}");
    // The rules of a block's acl directives are one list: the first match (block) decides.
    let other = dig(server.addr, &["x.other.local.", "A"]);
    assert!(other.contains("status: REFUSED"), "{other}");
    let dropped = dig(server.addr, &["x.quiet.local.", "A", "+time=1"]);
    assert!(dropped.contains("timed out") && !dropped.contains("status:"), "{dropped}");

    // bufsize 512: a client offering 4096 gets at most 512 bytes, whole records and TC.
    let big = dig(server.addr, &["db.shop.svc.cluster.local.", "A", "+bufsize=4096", "+ignore"]);
    let size: usize = big
        .lines()
        .find_map(|l| l.strip_prefix(";; MSG SIZE  rcvd: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{big}"));
    assert!(size <= 512 && big.contains(" tc"), "{size} bytes: {big}");
    let over_tcp = dig(server.addr, &["db.shop.svc.cluster.local.", "A", "+tcp"]);
    assert!(over_tcp.contains("ANSWER: 60"), "{over_tcp}");

    // The acl's decisions counted, and the runtime's figures exported (`runtime_metrics`).
    let (_, text) = curl(&metrics);
    let zone = "zone=\"cluster.local.\"";
    assert_eq!(metric(&text, "coredns_acl_blocked_requests_total", zone), 1.0, "{text}");
    assert_eq!(metric(&text, "coredns_acl_filtered_requests_total", zone), 1.0, "{text}");
    assert!(metric(&text, "coredns_acl_allowed_requests_total", zone) >= 3.0, "{text}");
    assert!(metric(&text, "tokio_workers", "") >= 1.0, "{text}");
}

#[test]
fn template_answers_from_its_records_as_coredns_readme_shows() {
    let dir = Scratch::new("plugins-template");
    let items = vec![namespace("shop"), service("shop", "cart", "10.43.0.5", json!({}))];
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n \
             template IN A example {{\n  match \"^ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\"\n  \
             answer \"{{{{ .Name }}}} 60 IN A {{{{ .Group.a }}}}.{{{{ .Group.b }}}}.{{{{ .Group.c }}}}.{{{{ .Group.d }}}}\"\n  fallthrough\n }}\n \
             template IN AAAA cluster.local {{\n  rcode NOERROR\n }}\n \
             template ANY ANY invalid {{\n  rcode NXDOMAIN\n  authority \"invalid. 60 {{{{ .Class }}}} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)\"\n }}\n \
             template IN A strict.example {{\n  match ^ok[.]strict[.]example[.]$\n  answer \"{{{{ .Name }}}} 5 IN A 10.9.9.9\"\n }}\n \
             kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            cluster.display()
        ),
    );
    let server = Server::start(&corefile);
    let a = dig(server.addr, &["ip-10-1-2-3.example.", "A"]);
    assert!(a.contains("flags: qr aa rd") && a.contains("10.1.2.3"), "{a}");
    // AAAA in the cluster answered empty before kubernetai sees it; A goes on to kubernetai.
    let aaaa = dig(server.addr, &["cart.shop.svc.cluster.local.", "AAAA"]);
    assert!(aaaa.contains("status: NOERROR") && aaaa.contains("ANSWER: 0, AUTHORITY: 0"), "{aaaa}");
    assert_eq!(short(&dig(server.addr, &["+short", "cart.shop.svc.cluster.local.", "A"])), ["10.43.0.5"]);
    let nx = dig(server.addr, &["anything.invalid.", "TXT"]);
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("SOA\tns.invalid. hostmaster.invalid. 1 60 60 60 60"),
        "{nx}"
    );
    assert!(dig(server.addr, &["ok.strict.example.", "A"]).contains("10.9.9.9"));
    // In its zone, matching no regex, without fallthrough: SERVFAIL.
    assert!(dig(server.addr, &["nope.strict.example.", "A"]).contains("status: SERVFAIL"));
}

/// The chain's side of `prefetch`: a popular answer is fetched again behind the hit that made it
/// due and stored, without a miss. When it falls due is the cache's unit test (with its clock in
/// hand); here 90% of a 4 s TTL makes it due 0.4 s after it was kept, so no expiry is waited for.
#[test]
fn cache_prefetch_fetches_a_popular_answer_again_before_it_expires() {
    let dir = Scratch::new("plugins-prefetch");
    let items = vec![namespace("shop"), service("shop", "cart", "10.43.0.5", json!({}))];
    let cluster = dir.write("cluster.json", &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n cache 30 {{\n  success 100 30 1\n  prefetch 2 1m 90%\n }}\n \
             kubernetai cluster.local {{\n  manifests {}\n  ttl 4\n }}\n}}\n",
            cluster.display()
        ),
    );
    let server = Server::start(&corefile);
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    let ask = || assert_eq!(short(&dig(server.addr, &["+short", "cart.shop.svc.cluster.local.", "A"])), ["10.43.0.5"]);
    let count = |name: &str| metric(&curl(&metrics).1, name, "");
    ask(); // a miss, kept for 4 s
    ask(); // the first hit: not popular yet
    assert_eq!(count("coredns_cache_prefetch_total"), 0.0);
    // Asked until a hit finds under 90% of the TTL left: fetched again behind it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("coredns_cache_prefetch_total") < 1.0 {
        assert!(Instant::now() < deadline, "no prefetch counted");
        ask();
    }
    ask();
    assert_eq!(count("coredns_cache_misses_total"), 1.0, "the prefetch was no miss, nor anything after it");
    assert_eq!(count("coredns_cache_prefetch_total"), 1.0, "fetched again once");
}

/// A DNS-over-TLS upstream (RFC 7858) with the certificate `tls`: every question gets
/// `192.0.2.53`; the count is of TLS connections accepted.
fn dot_upstream(tls: &crate::apiserver::Tls) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let config = crate::apiserver::server_config(tls);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::Relaxed);
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                loop {
                    let mut len = [0u8; 2];
                    if tls.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if tls.read_exact(&mut query).is_err() {
                        return;
                    }
                    let Ok(q) = hickory_proto::op::Message::from_vec(&query) else { return };
                    let mut m = hickory_proto::op::Message::new(
                        q.metadata.id,
                        hickory_proto::op::MessageType::Response,
                        hickory_proto::op::OpCode::Query,
                    );
                    m.queries = q.queries.clone();
                    if let Some(question) = q.queries.first() {
                        let a = hickory_proto::rr::rdata::A("192.0.2.53".parse().expect("ip"));
                        m.answers.push(hickory_proto::rr::Record::from_rdata(
                            question.name().clone(),
                            60,
                            hickory_proto::rr::RData::A(a),
                        ));
                    }
                    let bytes = m.to_vec().expect("encodes");
                    let mut out = u16::try_from(bytes.len()).expect("short").to_be_bytes().to_vec();
                    out.extend(bytes);
                    if tls.write_all(&out).and_then(|()| tls.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[test]
fn forward_over_tls_verifies_the_upstream_and_reuses_its_connection() {
    let dir = Scratch::new("plugins-forward-tls");
    crate::credentials::certificates(&dir);
    let tls = crate::apiserver::Tls {
        cert: dir.0.join("server.crt"),
        key: dir.0.join("server.key"),
        client_ca: None,
        token: None,
    };
    let (upstream, accepted) = dot_upstream(&tls);
    let ca = dir.0.join("ca.crt");
    let corefile = dir.write(
        "Corefile",
        &format!(
            "example.org {{\n bind 127.0.0.1\n forward . tls://{upstream} {{\n  tls {ca}\n  tls_servername localhost\n  expire 30s\n }}\n}}\n\
             example.net {{\n bind 127.0.0.1\n forward . tls://{upstream} {{\n  tls {ca}\n  tls_servername other.example\n }}\n}}\n",
            ca = ca.display()
        ),
    );
    let server = Server::start(&corefile);
    for name in ["www.example.org.", "mail.example.org.", "www.example.org."] {
        assert_eq!(short(&dig(server.addr, &["+short", name, "A"])), ["192.0.2.53"], "{name}");
    }
    // Three queries, one TLS connection: it is kept and reused within `expire`.
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
    // A certificate not valid for tls_servername is refused: no answer from that upstream.
    let refused = dig(server.addr, &["www.example.net.", "A"]);
    assert!(refused.contains("status: SERVFAIL"), "{refused}");
}
