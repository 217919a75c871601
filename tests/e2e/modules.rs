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

    std::fs::write(&module, b"\0asm garbage").expect("garbage");
    assert!(server.wait_for("module refused").contains("compiling the module"));
    assert_eq!(web(&server), want);

    std::fs::write(&module, r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance)))"#).expect("wat");
    assert!(server.wait_for("module refused").contains("imports wasi:filesystem/preopens@0.2.0"));
    assert_eq!(web(&server), want);

    std::fs::write(&module, &good).expect("restore");
    server.wait_for("module swapped");
    assert_eq!(web(&server), want);
}
