//! CoreDNS's operator habits through the real binary: its flags found in existing manifests
//! (`-p`, `-quiet`, `-pidfile`), its signals (SIGUSR1 reloads the Corefile, SIGQUIT ends at
//! once with status 0), and readiness that a remote cluster's outage cannot hold back.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Scratch, Server};
use crate::live::{lookup, namespace, service};
use crate::peers::{curl, free_port, url_in};

fn cluster(dir: &Scratch, file: &str, services: &[(&str, &str)]) -> std::path::PathBuf {
    let mut items = vec![namespace("shop")];
    items.extend(services.iter().map(|(name, ip)| service("shop", name, ip, json!({}))));
    dir.write(file, &json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string())
}

#[test]
fn coredns_flags_and_signals() {
    let dir = Scratch::new("operator-signals");
    let first = cluster(&dir, "first.json", &[("cart", "10.1.0.5")]);
    let second = cluster(&dir, "second.json", &[("cart", "10.1.0.5"), ("till", "10.1.0.6")]);
    let conf = |file: &std::path::Path| {
        format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", file.display())
    };
    let corefile = dir.write("Corefile", &conf(&first));
    let pidfile = dir.0.join("kubernetai.pid");
    let port = free_port().to_string();
    let server = Server::start_with(&corefile, &["-p", &port, "-quiet", "-pidfile", pidfile.to_str().expect("utf-8")]);
    assert_eq!(server.addr.port().to_string(), port, "-p sets the port");
    // -quiet: no banner (the zones served and the version) before the admin endpoint's line.
    let startup = server.lines_until("admin endpoint on");
    assert!(!startup.iter().any(|l| l == ".:" || l.starts_with("kubernetai-") || l.starts_with(".:")), "{startup:?}");
    let pid = std::fs::read_to_string(&pidfile).expect("the pidfile is written");
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", pid.trim())).expect("a live process");
    assert!(cmdline.contains("kubernetai") && cmdline.contains("-pidfile"), "{cmdline}");

    // SIGUSR1 reloads the Corefile, without a `reload` directive.
    assert_eq!(lookup(&server, "till.shop.svc.cluster.local"), ["rcode 3"]);
    dir.write("Corefile", &conf(&second));
    server.signal("USR1");
    server.wait_for("Reloading complete");
    assert_eq!(lookup(&server, "till.shop.svc.cluster.local"), ["10.1.0.6"]);
    // A broken Corefile is refused and the running one keeps serving.
    dir.write("Corefile", ". {\n bind 127.0.0.1\n kubernetai cluster.local {\n  no_such_option\n }\n}\n");
    server.signal("USR1");
    let refused = server.wait_for("Restart failed");
    assert!(refused.contains("Corefile:4"), "{refused}");
    assert_eq!(lookup(&server, "till.shop.svc.cluster.local"), ["10.1.0.6"]);

    // SIGQUIT: at once, status 0.
    let mut server = server;
    server.signal("QUIT");
    let status = server.exited(Duration::from_secs(3)).expect("SIGQUIT ends the server at once");
    assert!(status.success(), "{status:?}");
    assert!(!pidfile.exists(), "the pidfile is removed at exit");
}

#[test]
fn an_unreachable_remote_cluster_does_not_hold_readiness_back() {
    let dir = Scratch::new("operator-remote");
    let local = cluster(&dir, "local.json", &[("cart", "10.1.0.5")]);
    // Nothing listens there: the remote API server is down for the whole test.
    let down = free_port();
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n ready 127.0.0.1:0\n prometheus 127.0.0.1:0\n \
             kubernetai cluster.local {{\n  manifests {}\n  fallthrough\n }}\n \
             kubernetai cluster.local {{\n  endpoint http://127.0.0.1:{down}\n  startup_timeout 1s\n }}\n}}\n",
            local.display()
        ),
    );
    let server = Server::start(&corefile);
    let ready = url_in(&server.wait_for("plugin/ready: serving"));
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    // Startup waited its 1 s for the remote stanza; from then on it no longer gates readiness.
    assert_eq!(curl(&ready), (200, "OK".to_string()), "a remote outage keeps the replica unready");
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    // The remote stanza's names: SERVFAIL until it syncs, never a wrong NXDOMAIN.
    assert_eq!(lookup(&server, "ledger.shop.svc.cluster.local"), ["rcode 2"]);
    let (_, text) = curl(&metrics);
    let synced = |at: &str, value: &str| {
        text.lines().any(|l| l.starts_with("kubernetai_stanza_synced{") && l.contains(at) && l.ends_with(value))
    };
    assert!(synced("Corefile:9", " 0") && synced("Corefile:5", " 1"), "{text}");
}

#[test]
fn the_http_endpoints_are_bounded() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    let dir = Scratch::new("operator-http");
    let corefile = dir.write("Corefile", ". {\n bind 127.0.0.1\n health 127.0.0.1:0\n}\n");
    let server = Server::start(&corefile);
    let health = url_in(&server.wait_for("plugin/health: serving"));
    let addr = health.trim_start_matches("http://").trim_end_matches("/health").to_string();
    let reply = |conn: &mut TcpStream| {
        let mut out = String::new();
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = conn.read_to_string(&mut out);
        out
    };

    // A request head longer than the cap: 431, not a server reading for ever.
    let mut long = TcpStream::connect(&addr).expect("connect");
    long.write_all(format!("GET /health?{} HTTP/1.1\r\n", "a".repeat(20_000)).as_bytes()).expect("write");
    assert!(reply(&mut long).starts_with("HTTP/1.1 431"), "an oversized head is refused");

    // More idle connections than the limit: the one past it is closed at once.
    let idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(&addr).expect("connect");
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\n\r\n");
    let started = Instant::now();
    assert_eq!(reply(&mut extra), "", "past the connection limit nothing is served");
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once, not after a timeout");

    // An idle connection is closed after the read timeout, and its slot serves again.
    let started = Instant::now();
    let mut first = idle.into_iter().next().expect("one");
    assert_eq!(reply(&mut first), "");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(9), "closed after {waited:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(curl(&health), (200, "OK".to_string()));
}
