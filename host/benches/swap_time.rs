//! Module swap time for a large cluster: 10,000 services and 100,000 pods (`pods verified`, so
//! every pod is held), served from a manifest. Measures the first load at startup and a swap
//! (SIGHUP → a fresh instance compiled, configured, fed every object, self-checked and swapped
//! in), each from the server's own log. Run: `cargo bench -p kubernetai --bench swap_time`.

#[path = "../../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Instant;

const SERVICES: usize = 10_000;
const PODS: usize = 100_000;
const SWAPS: usize = 5;

fn main() {
    let dir = harness::Scratch::new("bench-swap");
    let mut items = vec![r#"{"kind":"Namespace","metadata":{"name":"bench"}}"#.to_string()];
    for i in 0..SERVICES {
        items.push(format!(
            r#"{{"kind":"Service","metadata":{{"name":"svc-{i}","namespace":"bench"}},"spec":{{"clusterIP":"10.96.{}.{}","ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}}"#,
            i / 250,
            i % 250 + 1
        ));
    }
    for i in 0..PODS {
        items.push(format!(
            r#"{{"kind":"Pod","metadata":{{"name":"pod-{i}","namespace":"bench"}},"status":{{"podIP":"10.{}.{}.{}","podIPs":[{{"ip":"10.{}.{}.{}"}}]}}}}"#,
            100 + i / 62500,
            i / 250 % 250,
            i % 250 + 1,
            100 + i / 62500,
            i / 250 % 250,
            i % 250 + 1
        ));
    }
    let cluster = dir.write("cluster.json", &format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(",")));
    let module = dir.write("module.wasm", "");
    std::fs::copy(harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm"), &module)
        .expect("module");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  manifests {}\n  pods verified\n }}\n}}\n",
            cluster.display()
        ),
    );
    let started = Instant::now();
    let server = harness::Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let startup = started.elapsed();
    println!(
        "cluster: {SERVICES} services + {PODS} pods ({} MB of JSON)",
        std::fs::metadata(&cluster).map_or(0, |m| m.len() >> 20)
    );
    println!("  startup (read, prune, feed the instances):       {:8.1} ms", startup.as_secs_f64() * 1e3);
    let mut swaps = Vec::new();
    for _ in 0..SWAPS {
        let t = Instant::now();
        server.signal("HUP");
        server.wait_for("module swapped");
        swaps.push(t.elapsed());
    }
    swaps.sort();
    println!(
        "  swap (compile, instantiate, replay, self-check): {:8.1} ms median of {SWAPS} ({:.1}–{:.1})",
        swaps[SWAPS / 2].as_secs_f64() * 1e3,
        swaps[0].as_secs_f64() * 1e3,
        swaps[SWAPS - 1].as_secs_f64() * 1e3
    );
}
