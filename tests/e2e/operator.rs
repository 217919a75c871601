//! CoreDNS's operator habits through the real binary: its flags found in existing manifests
//! (`-p`, `-quiet`, `-pidfile`), its signals (SIGUSR1 reloads the Corefile, SIGQUIT ends at
//! once with status 0), readiness that a remote cluster's outage cannot hold back, and the compiled
//! module kept across restarts (`-module.cache`).

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
    // Why, by reason: nothing listens there.
    assert!(
        text.lines().any(|l| l.starts_with("kubernetai_watch_errors_total{")
            && l.contains("Corefile:9")
            && l.contains("reason=\"connect\"")),
        "{text}"
    );
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
    // Until the server has accepted all 64, a further connection may still find a slot (and is
    // served): ask again until one is refused, well within the idle ones' read timeout.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut extra = TcpStream::connect(&addr).expect("connect");
        let _ = extra.write_all(b"GET /health HTTP/1.1\r\n\r\n");
        let started = Instant::now();
        let got = reply(&mut extra);
        if got.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(2), "closed at once, not after a timeout");
            break;
        }
        assert!(Instant::now() < deadline, "past the connection limit nothing is served: {got}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An idle connection is closed after the read timeout, and its slot serves again.
    let started = Instant::now();
    let mut first = idle.into_iter().next().expect("one");
    assert_eq!(reply(&mut first), "");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(9), "closed after {waited:?}");
    // The slot is given back once the server has closed its side: ask until it serves.
    let deadline = Instant::now() + Duration::from_secs(5);
    while curl(&health) != (200, "OK".to_string()) {
        assert!(Instant::now() < deadline, "the freed slot serves again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The metric names and label names the CoreDNS mixin's dashboards and alerts query, as its
/// PromQL writes them (`sum(rate(NAME{…}[5m])) by (LABELS)`).
const MIXIN: &[(&str, &[&str])] = &[
    ("coredns_dns_requests_total", &["server", "zone", "proto", "family", "type"]),
    ("coredns_dns_responses_total", &["server", "zone", "rcode", "plugin"]),
    ("coredns_dns_request_duration_seconds_bucket", &["server", "zone", "le"]),
    ("coredns_dns_request_size_bytes_bucket", &["server", "zone", "proto", "le"]),
    ("coredns_dns_response_size_bytes_bucket", &["server", "zone", "proto", "le"]),
    ("coredns_build_info", &["version"]),
    ("coredns_panics_total", &[]),
    ("coredns_health_request_duration_seconds_bucket", &["le"]),
    ("coredns_kubernetes_dns_programming_duration_seconds_bucket", &["service_kind", "le"]),
    ("process_resident_memory_bytes", &[]),
    ("process_cpu_seconds_total", &[]),
    ("process_open_fds", &[]),
    ("process_start_time_seconds", &[]),
];

#[test]
fn the_coredns_mixin_finds_every_metric_it_queries() {
    use crate::apiserver::FakeApi;
    use hickory_proto::rr::RecordType;

    let api = FakeApi::start();
    api.apply(namespace("shop"));
    api.apply(service("shop", "db", "None", json!({})));
    let dir = Scratch::new("operator-metrics");
    let corefile = dir.write(
        "Corefile",
        &format!(
            "cluster.local {{\n bind 127.0.0.1\n health 127.0.0.1:0\n prometheus 127.0.0.1:0\n \
             kubernetai {{\n  endpoint {}\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start(&corefile);
    let health = url_in(&server.wait_for("plugin/health: serving"));
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    // Startup waited for the first list; the watch is open from here on.

    // A change the endpoints controller stamped a second ago: the programming SLI observes it.
    let mut changed = crate::live::slice("shop", "db", "10.1.0.9", true);
    let stamp = std::time::SystemTime::now() - Duration::from_secs(1);
    let stamp = stamp.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    changed["metadata"]["labels"]["service.kubernetes.io/headless"] = json!("");
    changed["metadata"]["annotations"] =
        json!({"endpoints.kubernetes.io/last-change-trigger-time": crate::peers::rfc3339(stamp)});
    api.apply(changed);
    crate::live::eventually(&server, "db.shop.svc.cluster.local.", &["10.1.0.9"]);
    // A type the dashboards do not list, and a name no server block serves.
    let ask = |name: &str, qtype| crate::harness::udp(server.addr, &crate::harness::query(name, qtype, 7, None));
    ask("db.shop.svc.cluster.local.", RecordType::NULL);
    ask("www.example.org.", RecordType::A);
    assert_eq!(curl(&health).0, 200);

    let (status, text) = curl(&metrics);
    assert_eq!(status, 200);
    for (name, labels) in MIXIN {
        let series: Vec<&str> =
            text.lines().filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' ']))).collect();
        assert!(!series.is_empty(), "no series of {name}:\n{text}");
        for label in *labels {
            assert!(series.iter().all(|l| l.contains(&format!("{label}=\""))), "{name} without {label}: {series:?}");
        }
    }
    let has = |fragment: &str| text.lines().any(|l| l.contains(fragment));
    assert!(has("type=\"other\"") && !has("type=\"NULL\""), "unlisted types fold into other:\n{text}");
    assert!(has("zone=\"dropped\"") && has("rcode=\"REFUSED\""), "a query no block serves:\n{text}");
    assert!(has("coredns_panics_total 0"), "{text}");
    let programmed = text.lines().find(|l| {
        l.starts_with(
            "coredns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"}",
        )
    });
    assert_eq!(programmed.map(|l| l.ends_with(" 1")), Some(true), "{text}");
    let within = |bound: &str| {
        text.lines().any(|l| {
            l.starts_with("coredns_kubernetes_dns_programming_duration_seconds_bucket")
                && l.contains(&format!("le=\"{bound}\""))
                && l.ends_with(" 1")
        })
    };
    assert!(within("8.192") && !within("0.512"), "about a second, as stamped:\n{text}");
}

#[test]
fn a_remote_cluster_signed_by_another_authority_is_refused_with_the_reason() {
    use crate::credentials::{authority, openssl};
    let dir = Scratch::new("operator-tls");
    // The API server's certificate is signed by one CA; the stanza trusts another.
    authority(&dir, "server-ca");
    authority(&dir, "other-ca");
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    dir.write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "server-ca.crt",
            "-CAkey",
            "server-ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );
    let port = free_port();
    let mut tls_server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string(), "-cert", "server.crt", "-key", "server.key"])
        .current_dir(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "s_server listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    let local = cluster(&dir, "local.json", &[("cart", "10.1.0.5")]);
    let at = |f: &str| dir.0.join(f).display().to_string();
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n ready 127.0.0.1:0\n \
             kubernetai cluster.local {{\n  manifests {}\n  fallthrough\n }}\n \
             kubernetai cluster.local {{\n  endpoint https://127.0.0.1:{port}\n  tls {} {} {}\n  startup_timeout 1s\n }}\n}}\n",
            local.display(),
            at("other-ca.crt"),
            at("other-ca.key"),
            at("other-ca.crt"),
        ),
    );
    let server = Server::start(&corefile);
    let line = server.said_at_start("watch Namespace").expect("the failure is logged");
    assert!(line.contains("(tls)") && line.contains("UnknownIssuer"), "the cause, as client-go says it: {line}");
    // The other stanza is unaffected, and the replica is ready past the remote's startup_timeout.
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    let ready = url_in(&server.wait_for("plugin/ready: serving"));
    assert_eq!(curl(&ready).0, 200);
    let _ = tls_server.kill();
    let _ = tls_server.wait();
}

#[test]
fn apiserver_qps_and_burst_space_the_requests_the_api_server_sees() {
    use crate::apiserver::FakeApi;
    let api = FakeApi::start();
    api.apply(namespace("shop"));
    api.apply(service("shop", "cart", "10.1.0.5", json!({})));
    let dir = Scratch::new("operator-qps");
    let start = |options: &str| {
        let corefile = dir.write(
            "Corefile",
            &format!(
                ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n{options} }}\n}}\n",
                api.url()
            ),
        );
        let started = std::time::Instant::now();
        let server = Server::start(&corefile);
        (started.elapsed(), server)
    };
    // Unlimited, the first lists of namespaces, services and slices go out together.
    let (free, server) = start("");
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    drop(server);
    // One request a second: the three lists alone take two seconds before the server is synced.
    let (limited, server) = start("  apiserver_qps 1\n  apiserver_burst 1\n");
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    assert!(limited >= Duration::from_millis(1800), "rate-limited start took {limited:?}");
    assert!(limited > free + Duration::from_millis(500), "limited {limited:?}, free {free:?}");
}

#[test]
fn apiserver_max_inflight_bounds_the_requests_in_flight() {
    use crate::apiserver::FakeApi;
    let dir = Scratch::new("operator-inflight");
    let most = |options: &str| {
        let api = FakeApi::start();
        api.apply(namespace("shop"));
        api.apply(service("shop", "cart", "10.1.0.5", json!({})));
        api.slow_lists(Duration::from_millis(300));
        let corefile = dir.write(
            "Corefile",
            &format!(
                ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n{options} }}\n}}\n",
                api.url()
            ),
        );
        let server = Server::start(&corefile);
        assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
        api.most_lists_at_once()
    };
    // Namespaces, services and slices are listed at once without a limit; one at a time with it.
    assert!(most("") >= 2, "lists overlap without a limit");
    assert_eq!(most("  apiserver_max_inflight 1\n"), 1, "one request in flight at a time");
}

#[test]
fn a_restart_loads_its_compiled_module_and_a_broken_entry_is_compiled_again() {
    let dir = Scratch::new("operator-module-cache");
    let file = cluster(&dir, "c.json", &[("cart", "10.1.0.5")]);
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", file.display()),
    );
    let cache = dir.0.join("module-cache");
    let flags = ["-module.cache", cache.to_str().expect("utf-8")];
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    {
        let server = Server::start_with(&corefile, &flags);
        assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
        // Nothing kept yet: the machine code build.rs put in the binary, not a compile.
        assert!(server.said_at_start("machine code loaded from the binary").is_some(), "not compiled at start");
    }
    let kept = entries();
    assert!(kept.len() == 1 && kept[0].extension().is_some_and(|e| e == "cwasm"), "{kept:?}");
    let code = std::fs::read(&kept[0]).expect("the entry");

    // The same module again: loaded, not compiled (the entry is not rewritten, no warning).
    let before = std::fs::metadata(&kept[0]).and_then(|m| m.modified()).expect("mtime");
    {
        let server = Server::start_with(&corefile, &flags);
        assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
        assert_eq!(server.said_at_start("; not used"), None);
        assert!(server.said_at_start("module machine code loaded from").is_some(), "loaded from the cache");
    }
    assert_eq!(std::fs::metadata(&kept[0]).and_then(|m| m.modified()).expect("mtime"), before);

    // A damaged entry is compiled again and replaced; the server starts all the same.
    std::fs::write(&kept[0], b"not machine code").expect("damage the entry");
    let server = Server::start_with(&corefile, &flags);
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    let warning = server.said_at_start("; not used").expect("the damaged entry is reported");
    assert!(warning.contains(kept[0].to_str().expect("utf-8")), "{warning}");
    assert_eq!(std::fs::read(&kept[0]).expect("the entry"), code, "the entry is written again");
}
