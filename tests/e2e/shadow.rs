//! Shadowing a candidate module on live traffic: the same module under UDP and TCP load differs
//! nowhere and loses nothing; a candidate that answers differently (tests/fixtures/bad-module's
//! `differ.*`) is counted and shown while the clients get the running module's answers; one that
//! traps or loops is contained and dropped; promotion by request, automatic promotion and its
//! cancellation; and `kubernetai module diff` on a query file.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

const WEB: &str = "web.shop.svc.cluster.local.";
const DIFFER: &str = "differ.web.shop.svc.cluster.local.";

/// A block on the example's local cluster with `prometheus`.
pub(crate) fn corefile(dir: &Scratch) -> PathBuf {
    let local = harness::root().join("examples/clusters/local.json");
    dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            local.display()
        ),
    )
}

/// A server on the built-in module, its admin address and its metrics URL.
fn start(dir: &Scratch, extra: &[&str]) -> (Server, String, String) {
    let server = Server::start_with(&corefile(dir), extra);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    let admin = server.wait_for("admin endpoint on http://");
    let addr = admin.rsplit("http://").next().expect("address").trim().to_string();
    (server, addr, metrics)
}

/// One HTTP request to the admin endpoint: status and body.
fn admin(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(addr).expect("admin");
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", body.len())
        .expect("head");
    conn.write_all(body).expect("body");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).expect("reply");
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn report(addr: &str) -> serde_json::Value {
    let (status, body) = admin(addr, "GET", "/module/shadow", b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits until the shadow's report satisfies `done` (the candidate answers after the client).
fn report_when(addr: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = report(addr);
        if done(&r) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ask(server: &Server, name: &str) -> hickory_proto::op::Message {
    harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 7, None)))
}

fn fixture() -> String {
    crate::sandbox::fixture().to_str().expect("path").to_string()
}

/// The misbehaving fixture module's bytes, as a shadow request's body.
fn fixture_bytes() -> Vec<u8> {
    std::fs::read(crate::sandbox::fixture()).expect("the fixture module")
}

/// Asks `names` in turn from a UDP and a TCP client until `during` returns: how many were asked,
/// and every query lost, failed or answered with another id.
pub(crate) fn under_load(server: &Server, names: &[&'static str], during: impl FnOnce()) -> (usize, Vec<String>) {
    let (stop, asked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for tcp in [false, true] {
        let (stop, asked, server_addr, names) = (stop.clone(), asked.clone(), server.addr, names.to_vec());
        clients.push(std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut id = 0u16;
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let name = names[usize::from(id) % names.len()];
                let q = harness::query(name, RecordType::A, id, None);
                let answer = if tcp {
                    harness::tcp(server_addr, &[q]).pop()
                } else {
                    harness::udp_raw(server_addr, &q, Duration::from_secs(2))
                };
                match answer.map(|a| harness::parse(&a)) {
                    Some(m) if m.metadata.id == id && m.metadata.response_code.low() != 2 => {}
                    other => bad.push(format!("{name} over {}: {other:?}", if tcp { "tcp" } else { "udp" })),
                }
                asked.fetch_add(1, Ordering::Relaxed);
            }
            bad
        }));
    }
    during();
    stop.store(true, Ordering::Relaxed);
    let bad = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    (asked.load(Ordering::Relaxed), bad)
}

#[test]
fn the_same_module_shadowed_under_udp_and_tcp_load_differs_nowhere_and_loses_nothing() {
    let dir = Scratch::new("shadow-same");
    let (server, addr, metrics) = start(&dir, &["-module.shadow-rate", "100%"]);
    let (status, text) = admin(&addr, "POST", "/module/shadow", b"");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("shadowing the built-in module in 1 server block(s), 100% of queries"), "{text}");

    let names = [WEB, "db.shop.svc.cluster.local.", "nothing.shop.svc.cluster.local.", "shop.svc.cluster.local."];
    let (asked, bad) = under_load(&server, &names, || std::thread::sleep(Duration::from_secs(3)));
    assert!(asked > 200, "load flowed: {asked}");
    assert_eq!(bad, Vec::<String>::new(), "no query lost or failed while shadowing");
    let asked = asked as u64;

    let r = report_when(&addr, |r| r["queries"].as_u64().unwrap_or(0) + r["skipped"].as_u64().unwrap_or(0) >= asked);
    let (queries, skipped) = (r["queries"].as_u64().unwrap_or(0), r["skipped"].as_u64().unwrap_or(0));
    assert_eq!(r["state"], "shadowing", "{r}");
    assert_eq!(queries + skipped, asked, "at 100 % every query is shadowed or counted as skipped: {r}");
    assert!(queries > asked / 2, "most were shadowed: {r}");
    assert_eq!(r["differing_queries"], 0, "{r}");
    let (_, text) = crate::peers::curl(&metrics);
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_queries_total", ""), queries as f64);
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_differences_total", ""), 0.0);

    let (status, text) = admin(&addr, "DELETE", "/module/shadow", b"");
    assert!(status == 200 && text.contains("ended"), "{status} {text}");
    assert_eq!(report(&addr)["state"], "ended");
    let after = report(&addr)["queries"].as_u64();
    ask(&server, WEB);
    assert_eq!(report(&addr)["queries"].as_u64(), after, "an ended shadow answers nothing more");
    assert_eq!(admin(&addr, "DELETE", "/module/shadow", b"").0, 409, "nothing left to end");
}

#[test]
fn a_candidate_that_differs_is_counted_and_shown_and_the_clients_get_the_running_answer() {
    let dir = Scratch::new("shadow-differs");
    let (server, addr, metrics) = start(&dir, &["-module.shadow-rate", "100%"]);
    assert_eq!(admin(&addr, "GET", "/module/shadow", b"").0, 404, "no shadow yet");
    // The candidate posted as bytes.
    let bytes = std::fs::read(fixture()).expect("fixture");
    let (status, text) = admin(&addr, "POST", "/module/shadow", &bytes);
    assert_eq!(status, 200, "{text}");

    assert_eq!(harness::answers(&ask(&server, WEB)), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    let differ = ask(&server, DIFFER);
    assert_eq!(differ.metadata.response_code.low(), 3, "the client gets the running module's NXDOMAIN");
    assert!(differ.answers.is_empty());
    let garbage = ask(&server, "garbage.shop.svc.cluster.local.");
    assert_eq!(garbage.metadata.response_code.low(), 3, "and never the candidate's garbage");

    let r = report_when(&addr, |r| r["queries"].as_u64() >= Some(3));
    assert_eq!(r["differing_queries"], 2, "{r}");
    let d = &r["differences"];
    let counts: Vec<u64> = ["rcode", "answer", "authority", "flags", "candidate_error"]
        .iter()
        .map(|k| d[*k].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(counts, [1, 1, 1, 0, 1], "the NXDOMAIN's SOA is missing from the candidate's answer too: {r}");
    assert_eq!(r["state"], "shadowing", "an unreadable answer is counted, not fatal: {r}");
    let shown = &r["last"][0];
    assert_eq!(shown["query"], "differ.web.shop.svc.cluster.local. A", "{r}");
    let (running, candidate) = (shown["running"].as_str().unwrap_or(""), shown["candidate"].as_str().unwrap_or(""));
    assert!(running.contains("NXDomain") || running.contains("NXDOMAIN"), "{running}");
    assert!(candidate.contains("192.0.2.1"), "{candidate}");
    let logged = server.wait_for("shadow: differ.web.shop.svc.cluster.local. A differs (rcode, answer, authority)");
    assert!(logged.contains("[WARNING]"), "{logged}");
    let (_, text) = crate::peers::curl(&metrics);
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_differences_total", "kind=\"rcode\""), 1.0, "{text}");
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_differences_total", "kind=\"answer\""), 1.0);
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_queries_total", ""), 3.0);

    // An operator may promote it anyway; from then on it answers.
    let (status, text) = admin(&addr, "POST", "/module/promote", b"");
    assert!(status == 200 && text.contains("shadow promoted"), "{status} {text}");
    assert_eq!(harness::answers(&ask(&server, DIFFER)), ["differ.web.shop.svc.cluster.local. A 192.0.2.1"]);
    assert_eq!(harness::answers(&ask(&server, WEB)), ["web.shop.svc.cluster.local. A 10.96.10.10"], "fed the snapshot");
    assert_eq!(report(&addr)["state"], "promoted");
    assert_eq!(admin(&addr, "POST", "/module/promote", b"").0, 409, "nothing left to promote");
}

#[test]
fn a_candidate_that_traps_or_loops_is_dropped_and_costs_the_clients_nothing() {
    let dir = Scratch::new("shadow-traps");
    let (server, addr, metrics) = start(&dir, &["-module.shadow-rate", "100%", "-module.memory", "64"]);
    let path = fixture_bytes();
    for (trigger, why) in [("loop", "interrupt"), ("alloc", "memory"), ("panic", "panics on purpose")] {
        let (status, text) = admin(&addr, "POST", "/module/shadow", &path);
        assert_eq!(status, 200, "{text}");
        let started = Instant::now();
        let answer = ask(&server, &format!("{trigger}.shop.svc.cluster.local."));
        assert_eq!(answer.metadata.response_code.low(), 3, "{trigger}: the running module's NXDOMAIN");
        assert!(started.elapsed() < Duration::from_millis(500), "{trigger}: the client did not wait for the candidate");
        let line = server.wait_for("shadowing stopped");
        assert!(line.contains(why), "{trigger}: {line}");
        let r = report_when(&addr, |r| r["state"] == "failed");
        assert_eq!(r["state"], "failed", "{trigger}: {r}");
        assert_eq!(r["differences"]["candidate_error"], 1, "{trigger}: {r}");
        assert!(r["failure"].as_str().unwrap_or("").contains(why), "{trigger}: {r}");
        assert_eq!(harness::answers(&ask(&server, WEB)), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
        assert_eq!(report(&addr)["queries"], r["queries"], "{trigger}: dropped from shadowing");
        let (status, text) = admin(&addr, "POST", "/module/promote", b"");
        assert_eq!(status, 409, "{trigger}: a failed candidate is never promoted: {text}");
    }
    let (_, text) = crate::peers::curl(&metrics);
    assert_eq!(crate::peers::metric(&text, "kubernetai_shadow_differences_total", "candidate_error"), 3.0, "{text}");
    assert_eq!(
        crate::peers::metric(&text, "kubernetai_module_traps_total", ""),
        0.0,
        "the running module never trapped"
    );
    // A body over the admin endpoint's bound is refused before it is read.
    let mut conn = std::net::TcpStream::connect(&addr).expect("admin");
    write!(conn, "POST /module/shadow HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 1u64 << 30).expect("head");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // A candidate that is no module is refused; nothing changes.
    let (status, text) = admin(&addr, "POST", "/module/shadow", b"\0asm garbage");
    assert!(status == 409 && text.contains("not a binary WebAssembly component"), "{status} {text}");
    assert_eq!(report(&addr)["state"], "failed", "the last session's report is still there");
}

#[test]
fn automatic_promotion_happens_after_clean_queries_and_a_difference_cancels_it() {
    let dir = Scratch::new("shadow-promote");
    let (server, addr, metrics) = start(&dir, &["-module.shadow-rate", "100%", "-module.promote-after", "20"]);
    let path = fixture_bytes();

    // A difference first: the automatic promotion is cancelled, however many clean queries follow.
    assert_eq!(admin(&addr, "POST", "/module/shadow", &path).0, 200);
    ask(&server, DIFFER);
    let line = server.wait_for("automatic promotion of");
    assert!(line.contains("cancelled") && line.contains("differ.web.shop.svc.cluster.local."), "{line}");
    for _ in 0..30 {
        ask(&server, WEB);
    }
    let r = report_when(&addr, |r| r["queries"].as_u64() >= Some(31));
    assert_eq!((&r["state"], &r["promotion"]), (&"shadowing".into(), &"cancelled by a difference".into()), "{r}");
    assert_eq!(ask(&server, DIFFER).metadata.response_code.low(), 3, "not promoted");

    // A fresh shadow with clean queries only: promoted after 20.
    assert_eq!(admin(&addr, "POST", "/module/shadow", &path).0, 200);
    for _ in 0..25 {
        ask(&server, WEB);
    }
    let line = server.wait_for("shadow promoted");
    assert!(line.contains("in 1 server block(s)"), "{line}");
    assert_eq!(harness::answers(&ask(&server, DIFFER)), ["differ.web.shop.svc.cluster.local. A 192.0.2.1"]);
    assert_eq!(report(&addr)["state"], "promoted");
    let (_, text) = crate::peers::curl(&metrics);
    assert_eq!(crate::peers::metric(&text, "kubernetai_module_swaps_total", ""), 1.0, "a promotion is a swap");
}

#[test]
fn a_promotion_under_udp_and_tcp_load_loses_no_query() {
    let dir = Scratch::new("shadow-promote-load");
    let (server, addr, _) = start(&dir, &[]);
    assert_eq!(admin(&addr, "POST", "/module/shadow", &fixture_bytes()).0, 200);
    let (asked, bad) = under_load(&server, &[WEB, "db.shop.svc.cluster.local."], || {
        std::thread::sleep(Duration::from_millis(700));
        let (status, text) = admin(&addr, "POST", "/module/promote", b"");
        assert_eq!(status, 200, "{text}");
        std::thread::sleep(Duration::from_millis(700));
    });
    assert!(asked > 100, "load flowed: {asked}");
    assert_eq!(bad, Vec::<String>::new(), "no query lost or failed across the promotion");
    assert_eq!(harness::answers(&ask(&server, DIFFER)), ["differ.web.shop.svc.cluster.local. A 192.0.2.1"]);
}

/// The candidate is fed every event after it started, as the running module is: after the
/// cluster changes, both answer the new address and nothing differs.
#[test]
fn a_shadow_is_fed_every_later_event() {
    let dir = Scratch::new("shadow-events");
    let cluster = harness::web_cluster;
    let manifest = dir.write("cluster.json", &cluster("10.0.0.1"));
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", manifest.display()),
    );
    let server = Server::start_with(&corefile, &["-module.shadow-rate", "100%"]);
    let addr =
        server.wait_for("admin endpoint on http://").rsplit("http://").next().expect("address").trim().to_string();
    assert_eq!(admin(&addr, "POST", "/module/shadow", b"").0, 200);
    assert_eq!(harness::answers(&ask(&server, WEB)), ["web.shop.svc.cluster.local. A 10.0.0.1"]);
    harness::put(&manifest, cluster("10.0.0.2").as_bytes());
    // No query in flight while the change lands: asked once both modules have it (the running
    // one and the shadow are fed under one lock, and the line is written once they were).
    server.wait_for("applied 1 change(s)");
    for _ in 0..10 {
        assert_eq!(harness::answers(&ask(&server, WEB)), ["web.shop.svc.cluster.local. A 10.0.0.2"]);
    }
    let r = report_when(&addr, |r| r["queries"].as_u64() >= Some(11));
    assert_eq!((&r["queries"], &r["differing_queries"]), (&11.into(), &0.into()), "{r}");
}

#[test]
fn module_diff_compares_two_modules_on_a_query_file() {
    let dir = Scratch::new("shadow-diff");
    let conf = corefile(&dir);
    let clean = dir.write(
        "clean.txt",
        &format!("# dnsperf's format\n{WEB} A\ndb.shop.svc.cluster.local\nweb.shop.svc.cluster.local. AAAA\n"),
    );
    let mixed = dir.write("mixed.txt", &format!("{WEB} A\n{DIFFER} A\n"));
    let run = |old: &str, new: &str, queries: &PathBuf| {
        let out = std::process::Command::new(harness::binary())
            .args(["module", "diff", old, new, "-conf", conf.to_str().expect("path"), queries.to_str().expect("path")])
            .output()
            .expect("run module diff");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let fixture = fixture();
    let (code, text) = run("builtin", &fixture, &mixed);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(";; differ.web.shop.svc.cluster.local. A differs (rcode, answer, authority)"), "{text}");
    assert!(text.contains("192.0.2.1"), "the candidate's answer is shown: {text}");
    assert!(text.contains("2 queries, 2 asked of both modules, 1 answered differently"), "{text}");
    let (code, text) = run("builtin", &fixture, &clean);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("3 queries, 3 asked of both modules, 0 answered differently"), "{text}");
    let (code, text) = run("builtin", "native", &mixed);
    assert_eq!(code, Some(0), "the sandboxed and the native library answer alike: {text}");
    let (code, text) = run("builtin", "/nonexistent.wasm", &clean);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("/nonexistent.wasm"), "{text}");
}
