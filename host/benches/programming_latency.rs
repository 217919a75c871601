//! DNS programming latency, CoreDNS's SLI: the time from the API server sending a change to
//! the DNS answer reflecting it. A fake API server (the tests' own) changes a service's cluster
//! IP many times; each time the clock runs until the real binary answers the new address.
//! Prints p50/p90/p99/max. Run: `cargo bench -p kubernetai --bench programming_latency`.

#[path = "../../tests/e2e/apiserver.rs"]
#[allow(dead_code)]
mod apiserver;
#[path = "../../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::json;

/// Changes measured: enough for a stable p99.
const CHANGES: usize = 300;

fn main() {
    let api = apiserver::FakeApi::start();
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}));
    let service = |ip: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "moving", "namespace": "bench"},
               "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    };
    api.apply(service("10.0.0.1"));
    let dir = harness::Scratch::new("bench-latency");
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n", api.url()),
    );
    let server = harness::Server::start(&corefile);
    let query = harness::query("moving.bench.svc.cluster.local.", RecordType::A, 1, None);
    let mut latencies = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        let started = Instant::now();
        api.apply(service(&ip));
        loop {
            let answer = harness::parse(&harness::udp(server.addr, &query));
            if answer.answers.first().is_some_and(|r| r.data.to_string() == ip) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "change {i} never arrived");
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("DNS programming latency over {CHANGES} changes (API server event → answer):");
    for (name, d) in [("p50", at(0.50)), ("p90", at(0.90)), ("p99", at(0.99)), ("max", latencies[latencies.len() - 1])]
    {
        println!("  {name:>4}  {:8.3} ms", d.as_secs_f64() * 1e3);
    }
}
