//! Soak: query load for a while with the cluster churning underneath (services and endpoint
//! slices created, changed and deleted) and the module swapped every 1/8 of the run, at most
//! 30 s apart. No query may be lost or answered wrong, the server must not crash, and its
//! resident memory must stay flat: the highest RSS of the second half no more than RSS_BOUND
//! above the highest of the first.
//!
//! CI runs it for 20 s; `scripts/soak.sh` runs it for 10 minutes (KUBERNETAI_SOAK_SECONDS=600)
//! and prints the figures the README quotes.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::apiserver::FakeApi;
use crate::harness::{self, Scratch, Server};
use crate::live::{service, slice};
use crate::load::{Load, stable_services};

/// Stable services the load asks for; they never change.
const STABLE: usize = 50;
/// Services that churn.
const CHURN: usize = 200;
/// How far RSS may rise from the first half of the run to the second.
const RSS_BOUND: u64 = 16 << 20;

fn seconds() -> u64 {
    std::env::var("KUBERNETAI_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

#[test]
fn churn_and_module_swaps_under_load_lose_nothing_and_keep_memory_flat() {
    let duration = Duration::from_secs(seconds());
    let api = FakeApi::start();
    let expect = stable_services(&api, "soak", "stable", STABLE);
    let dir = Scratch::new("soak");
    let built = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let module = dir.write("module.wasm", "");
    std::fs::copy(&built, &module).expect("module");
    let corefile = dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n", api.url()),
    );
    let server = Server::start_with(&corefile, &["-module", module.to_str().expect("path")]);
    let load = Load::start(server.addr, expect, 3);

    let started = Instant::now();
    let swap_every = (duration / 8).min(Duration::from_secs(30));
    let mut next_swap = started + swap_every;
    let (mut swaps, mut changes) = (0, 0u64);
    let mut rss: Vec<(Duration, u64)> = Vec::new();
    let mut next_sample = started;
    let mut round = 0usize;
    while started.elapsed() < duration {
        round += 1;
        // One round of churn: a service and its slice created or changed, an older one deleted.
        let i = round % CHURN;
        let ip = format!("10.97.{}.{}", round / 250 % 250, round % 250 + 1);
        api.apply(service("soak", &format!("churn-{i}"), "None", json!({"round": round.to_string()})));
        api.apply(slice("soak", &format!("churn-{i}"), &ip, !round.is_multiple_of(3)));
        let old = (round + CHURN / 2) % CHURN;
        api.delete("EndpointSlice", "soak", &format!("churn-{old}-1"));
        api.delete("Service", "soak", &format!("churn-{old}"));
        changes += 4;
        if Instant::now() >= next_swap {
            server.signal("HUP");
            server.wait_for("module swapped");
            swaps += 1;
            next_swap += swap_every;
        }
        if Instant::now() >= next_sample {
            rss.push((started.elapsed(), server.rss()));
            next_sample += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = load.finish();
    let half = duration / 2;
    let peak = |part: &mut dyn Iterator<Item = &(Duration, u64)>| part.map(|(_, r)| *r).max().unwrap_or(0);
    let first = peak(&mut rss.iter().filter(|(t, _)| *t < half));
    let second = peak(&mut rss.iter().filter(|(t, _)| *t >= half));
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "soak: {:.0} s, {} queries answered ({:.0} qps), {} lost, {} wrong, slowest {:?}; {changes} object changes, {swaps} module swaps; RSS peak {:.1} MiB in the first half, {:.1} MiB in the second, {:.1} MiB at the end",
        report.seconds,
        report.answered,
        report.qps(),
        report.lost,
        report.wrong,
        report.slowest,
        mib(first),
        mib(second),
        mib(rss.last().map_or(0, |(_, r)| *r)),
    );
    let tenths: Vec<String> = (1..=10)
        .filter_map(|k| rss.iter().rev().find(|(t, _)| *t <= duration * k / 10))
        .map(|(_, r)| format!("{:.0}", mib(*r)))
        .collect();
    eprintln!("soak: RSS (MiB) at each tenth of the run: {}", tenths.join(" "));
    report.assert_clean();
    assert!(swaps >= 4, "modules were swapped: {swaps}");
    assert!(first > 0 && second > 0, "RSS was sampled: {rss:?}");
    assert!(second <= first + RSS_BOUND, "RSS grew from {:.1} to {:.1} MiB", mib(first), mib(second));
    let summary = server.stop();
    assert!(summary.contains(&format!("swaps={swaps} refused=0")), "{summary}");
}
