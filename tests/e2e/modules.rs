//! Replacing the module while the server runs: a good module is swapped in on SIGHUP and on a
//! change of the `-module` file; a bad one (garbage bytes, forbidden imports) is refused with the
//! step that failed, and the running module keeps answering.

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

const WEB: &str = "web.shop.svc.cluster.local.";

fn web(server: &Server) -> Vec<String> {
    harness::answers(&harness::parse(&harness::udp(server.addr, &harness::query(WEB, RecordType::A, 9, None))))
}

#[test]
fn modules_are_swapped_and_bad_ones_refused_while_serving() {
    let dir = Scratch::new("modules");
    let built = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let good = std::fs::read(&built).expect("the guest component built by build.rs");
    let module = dir.write("module.wasm", "");
    std::fs::write(&module, &good).expect("module");
    let local = harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", local.display()),
    );
    let server = Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let want = ["web.shop.svc.cluster.local. A 10.96.10.10"];
    assert_eq!(web(&server), want);

    server.signal("HUP");
    server.wait_for("module swapped in 1 server block(s)");
    assert_eq!(web(&server), want, "the new instance was fed the snapshot");

    harness::put(&module, b"\0asm\x0d\0\x01\0 garbage");
    assert!(server.wait_for("module refused").contains("compiling the module"));
    assert_eq!(web(&server), want);

    let forbidden = wat::parse_str(r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance)))"#);
    harness::put(&module, &forbidden.expect("a binary component"));
    assert!(server.wait_for("module refused").contains("imports wasi:filesystem/preopens@0.2.0"));
    assert_eq!(web(&server), want);

    harness::put(&module, &good);
    server.wait_for("module swapped");
    assert_eq!(web(&server), want);

    let summary = server.stop();
    assert!(summary.contains("swaps=2 refused=2"), "swaps and refusals are counted: {summary}");
}

/// `POST /module/swap` on the admin endpoint (localhost) swaps as SIGHUP does and says how it went.
#[test]
fn the_admin_endpoint_swaps_and_reports_refusals() {
    use std::io::{Read, Write};
    let dir = Scratch::new("modules-admin");
    let module = dir.write("module.wasm", "");
    std::fs::copy(harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm"), &module)
        .expect("module");
    let local = harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            local.display()
        ),
    );
    let server = Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    let admin = server.wait_for("admin endpoint on http://");
    let addr = admin.rsplit("http://").next().expect("address").trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "bound to localhost: {addr}");
    let post = |path: &str| {
        let mut conn = std::net::TcpStream::connect(&addr).expect("admin");
        write!(conn, "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").expect("request");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("reply");
        reply
    };
    let ok = post("/module/swap");
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("module swapped in 1 server block(s)"), "{ok}");
    std::fs::write(&module, b"not a module").expect("garbage");
    let refused = post("/module/swap");
    assert!(refused.starts_with("HTTP/1.1 409") && refused.contains("not a binary WebAssembly component"), "{refused}");
    assert!(post("/elsewhere").starts_with("HTTP/1.1 404"));
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    // Swaps and refusals are counted (the file poll may try the garbage once more).
    let (_, text) = crate::peers::curl(&metrics);
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok()).unwrap_or(0.0)
    };
    assert_eq!(value("kubernetai_module_swaps_total"), 1.0, "{text}");
    assert!(value("kubernetai_module_swaps_refused_total") >= 1.0, "{text}");
}

/// Queries over UDP and TCP from two threads while the module is swapped over and over and the
/// cluster changes: every query is answered, none SERVFAIL, every answer is one the cluster held.
#[test]
fn swaps_under_load_lose_no_query() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = Scratch::new("modules-load");
    let built = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let module = dir.write("module.wasm", "");
    std::fs::copy(&built, &module).expect("module");
    let cluster = harness::web_cluster;
    let manifest = dir.write("cluster.json", &cluster("10.0.0.1"));
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", manifest.display()),
    );
    let server = Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for tcp in [false, true] {
        let (stop, asked) = (stop.clone(), asked.clone());
        clients.push(std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut id = 0u16;
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let q = harness::query(WEB, RecordType::A, id, None);
                let bytes = if tcp {
                    harness::tcp(addr, &[q]).remove(0)
                } else {
                    match harness::udp_raw(addr, &q, std::time::Duration::from_secs(2)) {
                        Some(b) => b,
                        None => {
                            bad.push("udp query lost".to_string());
                            continue;
                        }
                    }
                };
                let m = harness::parse(&bytes);
                let got = harness::answers(&m);
                let ok = m.metadata.id == id
                    && m.metadata.response_code.low() == 0
                    && (got == ["web.shop.svc.cluster.local. A 10.0.0.1"]
                        || got == ["web.shop.svc.cluster.local. A 10.0.0.2"]);
                if !ok {
                    bad.push(format!("{:?} {got:?}", m.metadata.response_code));
                }
                asked.fetch_add(1, Ordering::Relaxed);
            }
            bad
        }));
    }
    for round in 0..10 {
        std::fs::write(&manifest, cluster(if round % 2 == 0 { "10.0.0.2" } else { "10.0.0.1" })).expect("change");
        server.signal("HUP");
        server.wait_for("module swapped");
    }
    stop.store(true, Ordering::Relaxed);
    let bad: Vec<String> = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    assert!(asked.load(Ordering::Relaxed) > 100, "load flowed: {}", asked.load(Ordering::Relaxed));
    assert!(bad.is_empty(), "{} bad answers: {:?}", bad.len(), &bad[..bad.len().min(5)]);
}

/// The embedding example (host/examples/embed.rs), built by `cargo test`, answers a query with
/// the module: the contract is usable by a host other than ours.
#[test]
fn another_host_embeds_the_module() {
    let exe = std::env::current_exe().expect("test binary");
    let example = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("examples/embed");
    assert!(example.exists(), "cargo test builds the examples: {}", example.display());
    let module = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let cluster = harness::root().join("examples/clusters/local.json");
    let out = std::process::Command::new(&example)
        .args([module.to_str().expect("path"), cluster.to_str().expect("path"), "db.shop.svc.cluster.local."])
        .output()
        .expect("run the example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("db.shop.svc.cluster.local. 5 IN A 10.244.1.20") && text.contains("10.244.2.21"), "{text}");
}

/// `kubernetai module compile` keeps the built-in module's machine code beside the executable
/// (as deploy/Dockerfile does): a server started from there loads it instead of compiling; an
/// entry that does not load is compiled again, with a warning, and the server answers the same.
#[test]
fn a_module_compiled_ahead_of_time_is_loaded_and_a_broken_one_compiled_again() {
    let dir = Scratch::new("modules-aot");
    let installed = dir.0.join("kubernetai");
    std::fs::copy(harness::binary(), &installed).expect("install a copy");
    let out = std::process::Command::new(&installed).args(["module", "compile"]).output().expect("compile");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let entry = text.rsplit(" kept in ").next().expect("the entry").trim().to_string();
    assert!(entry.starts_with(dir.0.to_str().expect("path")) && entry.ends_with(".cwasm"), "{text}");
    let local = harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n", local.display()),
    );
    let start = || Server::start_from(&installed, &corefile, &[], &[]);
    let server = start();
    assert!(
        server.said_at_start(&format!("module machine code loaded from {entry}")).is_some(),
        "loaded, not compiled"
    );
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    drop(server);

    std::fs::write(&entry, b"not machine code").expect("break it");
    let server = start();
    assert!(server.said_at_start("; not used").is_some(), "a broken entry is refused");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
}

/// A swap while a reload waits for its stanzas to sync reaches the configuration that ends up
/// serving: the reload installs its plugins on the module serving by then (without that, the
/// new configuration ran the module of before the swap).
#[test]
fn a_swap_during_a_reload_reaches_the_reloaded_configuration() {
    // Built first (a fresh clone compiles it): the swap below must land inside the reload.
    let fixture = std::fs::read(crate::sandbox::fixture()).expect("the fixture module");
    let dir = Scratch::new("modules-reload-swap");
    let module = dir.write("module.wasm", "");
    std::fs::write(
        &module,
        std::fs::read(harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm"))
            .expect("module"),
    )
    .expect("module");
    let local = harness::root().join("examples/clusters/local.json");
    let block = |extra: &str| {
        format!(
            ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n }}\n{extra}}}\n",
            local.display()
        )
    };
    let corefile = dir.write("Corefile", &block(""));
    let server = Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let differ = "differ.web.shop.svc.cluster.local.";
    let ask = || harness::parse(&harness::udp(server.addr, &harness::query(differ, RecordType::A, 5, None)));
    assert_eq!(ask().metadata.response_code.low(), 3, "the built-in module: NXDOMAIN");

    // A stanza whose API server never answers holds the reload for its startup_timeout, long
    // enough for the candidate's compile even on a loaded machine.
    std::fs::write(
        &corefile,
        block(" kubernetai other.local {\n  endpoint http://127.0.0.1:1\n  startup_timeout 10s\n }\n"),
    )
    .expect("the new Corefile");
    server.signal("USR1");
    server.wait_for("SIGUSR1: reloading");
    harness::put(&module, &fixture);
    server.signal("HUP");
    let said = server.lines_until("Reloading complete");
    let at = |needle: &str| said.iter().position(|l| l.contains(needle));
    let (swapped, installed) = (at("module swapped in 1 server block(s)"), at("swapped during the reload serves"));
    assert!(swapped.is_some(), "the swap came while the reload waited: {said:?}");
    assert!(installed > swapped, "and the reload put its plugins on it: {said:?}");
    assert_eq!(
        harness::answers(&ask()),
        ["differ.web.shop.svc.cluster.local. A 192.0.2.1"],
        "the reloaded configuration runs the module swapped in during the reload"
    );
}
