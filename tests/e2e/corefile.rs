//! The command line and Corefile errors, through the binary.

use std::process::Command;

use crate::harness::{self, Scratch};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(harness::binary()).args(args).output().expect("run kubernetai");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn version_and_plugins() {
    let (ok, out) = run(&["-version"]);
    assert!(ok && out.contains("kubernetai-0.1.0") && out.contains(&format!("kubernetai:dns@{}", kubernetai_guest::CONTRACT_VERSION)), "{out}");
    let (ok, out) = run(&["-plugins"]);
    for plugin in
        ["dns.kubernetai", "dns.log", "dns.forward", "dns.cache", "dns.health", "dns.prometheus", "dns.reload"]
    {
        assert!(ok && out.contains(plugin), "{plugin} in {out}");
    }
    let (ok, out) = run(&["-nonsense"]);
    assert!(!ok && out.contains("flag provided but not defined: -nonsense"), "{out}");
}

#[test]
fn a_broken_corefile_stops_startup_naming_file_and_line() {
    let dir = Scratch::new("badconf");
    let cases = [
        (
            ". {\n kubernetai cluster.local {\n  ttl 9000\n }\n}\n",
            "Corefile:3 - kubernetai: ttl must be in range [0, 3600]: 9000",
        ),
        (
            ". {\n kubernetai cluster.local {\n  colour blue\n }\n}\n",
            "Corefile:3 - kubernetai: unknown property 'colour'",
        ),
        (". {\n whoami\n}\n", "Corefile:2 - directive 'whoami' is not supported by this server yet"),
        (". {\n forward . 127.0.0.1 {\n  tls a b c d\n }\n}\n", "Corefile:3 - forward: tls takes at most CERT KEY CA"),
        (". {\n nosuch\n}\n", "Corefile:2 - unknown directive 'nosuch'"),
        (". {\n kubernetai cluster.local {\n  manifests missing.json\n }\n}\n", "missing.json: cannot read"),
    ];
    for (text, want) in cases {
        let path = dir.write("Corefile", text);
        let (ok, out) = run(&["-conf", path.to_str().expect("path"), "-dns.port", "0"]);
        assert!(!ok, "{text:?} started");
        assert!(out.contains(want), "{text:?}: wanted {want:?} in:\n{out}");
    }
}

#[test]
fn offline_tools_check_a_module_and_resolve_without_a_server() {
    let built = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let (ok, out) = run(&["module", "check", built.to_str().expect("path")]);
    assert!(ok && out.contains(&format!("ok, speaks kubernetai:dns@{}", kubernetai_guest::CONTRACT_VERSION)), "{out}");
    let dir = Scratch::new("offline");
    let garbage = dir.write("garbage.wasm", "not a module");
    let (ok, out) = run(&["module", "check", garbage.to_str().expect("path")]);
    assert!(!ok && out.contains("not a binary WebAssembly component"), "{out}");

    let corefile = harness::root().join("examples/Corefile");
    let (ok, out) = run(&["resolve", "-conf", corefile.to_str().expect("path"), "ledger.shop.svc.cluster.local", "A"]);
    assert!(ok, "{out}");
    assert!(out.contains("ledger.shop.svc.cluster.local. 5 IN CNAME ledger.billing.svc.assemblage.local."), "{out}");
    assert!(out.contains("ledger.billing.svc.assemblage.local. 5 IN A 10.100.0.15"), "{out}");
    let (ok, out) = run(&["resolve", "-conf", corefile.to_str().expect("path"), "nowhere.shop.svc.cluster.local"]);
    assert!(ok && out.contains("NXDomain"), "{out}");
}
