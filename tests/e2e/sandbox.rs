//! Containment: a module that loops forever, allocates without bound, panics or answers garbage
//! costs the query it was answering (SERVFAIL) and nothing else — the instance is rebuilt from the
//! host's objects and the next query is answered. A module built against another contract
//! version is refused. The misbehaving module is tests/fixtures/bad-module, built here.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};

/// Builds the fixture for wasm32-wasip2, claiming `contract` if given; returns the component.
/// Variants share one target directory (only the fixture crate differs between them), so builds
/// and the copy of their output are serialized.
fn build_fixture(contract: Option<&str>) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let root = harness::root();
    let target = root.join("target/fixtures");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root.join("tests/fixtures/bad-module"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    match contract {
        Some(v) => cmd.env("KUBERNETAI_FIXTURE_CONTRACT", v),
        None => cmd.env_remove("KUBERNETAI_FIXTURE_CONTRACT"),
    };
    let status = cmd.status().expect("cargo builds the fixture");
    assert!(status.success(), "building tests/fixtures/bad-module failed");
    let out = target.join(format!("bad-module-{}.wasm", contract.unwrap_or("same")));
    std::fs::copy(target.join("wasm32-wasip2/release/bad_module.wasm"), &out).expect("copy the fixture");
    out
}

pub(crate) fn fixture() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_fixture(None))
}

fn corefile(dir: &Scratch) -> PathBuf {
    let local = harness::root().join("examples/clusters/local.json");
    dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n errors\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            local.display()
        ),
    )
}

#[test]
fn traps_cost_one_query_and_the_instance_is_rebuilt() {
    let dir = Scratch::new("sandbox");
    let module = fixture().to_str().expect("path").to_string();
    let server = Server::start_with(&corefile(&dir), &["-module", &module, "-module.memory", "64"]);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    let ask = |name: &str| harness::parse(&harness::udp(server.addr, &harness::query(name, RecordType::A, 3, None)));
    let good = || harness::answers(&ask("web.shop.svc.cluster.local."));
    assert_eq!(good(), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    for trigger in ["loop", "alloc", "panic", "flood", "garbage", "other"] {
        let started = Instant::now();
        let answer = ask(&format!("{trigger}.shop.svc.cluster.local."));
        assert_eq!(answer.metadata.response_code.low(), 2, "{trigger}: SERVFAIL");
        assert!(started.elapsed() < Duration::from_secs(5), "{trigger}: bounded by the deadline");
        // The next query is answered, from a rebuilt instance that was fed the snapshot.
        assert_eq!(good(), ["web.shop.svc.cluster.local. A 10.96.10.10"], "after {trigger}");
    }
    // Each containment says why, on one log line, in the order the triggers came.
    assert!(
        server.wait_for("plugin/kubernetai: the module trapped in handle").contains("wasm trap: interrupt"),
        "the deadline stopped the loop"
    );
    assert!(
        server.wait_for("plugin/kubernetai: the module trapped in handle").contains("growing memory"),
        "the memory limit stopped the allocation"
    );
    let panic = server.wait_for("plugin/kubernetai: the module trapped in handle");
    assert!(
        panic.contains("module stderr") && panic.contains("panics on purpose"),
        "the panic message is logged: {panic}"
    );
    let flood = server.wait_for("plugin/kubernetai: the module trapped in handle");
    assert!(flood.contains("more than a DNS message holds"), "the host refused the megabyte: {flood}");
    server.wait_for("that are no response to this query");
    server.wait_for("that are no response to this query");
    // Four traps (loop, alloc, panic, flood) rebuilt an instance each; garbage and an answer to
    // another question were refused by the host.
    let (_, text) = crate::peers::curl(&metrics);
    assert!(text.contains("kubernetai_module_traps_total{call=\"handle\"} 4"), "{text}");
    assert!(text.contains("coredns_dns_responses_total{server=\"dns://127.0.0.1:0\",zone=\".\",view=\"\",rcode=\"SERVFAIL\",plugin=\"kubernetai\"} 6"), "{text}");
}

#[test]
fn a_module_of_another_contract_version_is_refused() {
    let other = build_fixture(Some("9.9.0"));
    let dir = Scratch::new("sandbox-contract");
    // At startup: a clear error, no server.
    let out = Command::new(harness::binary())
        .args([
            "-conf",
            corefile(&dir).to_str().expect("path"),
            "-dns.port",
            "0",
            "-module",
            other.to_str().expect("path"),
        ])
        .output()
        .expect("run");
    // Every log line goes to standard output, as CoreDNS writes them.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains(&format!("the module speaks contract 9.9.0, this host speaks {}", kubernetai_guest::CONTRACT_VERSION)),
        "{text}"
    );
    // As a swap: refused, and the running module keeps answering.
    let module = dir.write("module.wasm", "");
    std::fs::copy(fixture(), &module).expect("copy");
    let server = Server::start_with(&corefile(&dir), &["-module", module.to_str().expect("path")]);
    // Put in place whole: the file poll must not read a half copy.
    harness::put(&module, &std::fs::read(&other).expect("the other fixture"));
    let refused = server.wait_for("module refused");
    assert!(refused.contains("speaks contract 9.9.0"), "{refused}");
    let answer = harness::parse(&harness::udp(
        server.addr,
        &harness::query("web.shop.svc.cluster.local.", RecordType::A, 4, None),
    ));
    assert_eq!(harness::answers(&answer), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
}
