//! Soaks: query load for a while with the cluster churning underneath (services and endpoint
//! slices created, changed and deleted) and something happening every so often: module swaps in
//! one, and in the other the faults an operator meets, in turn (the API server going away and
//! coming back with a new history, every watch answered 410, watches gone silent, a Corefile
//! reload, a module swap). No query may be lost or answered wrong, the server must not crash,
//! and its resident memory must stay flat: the highest RSS of the second half no more than
//! RSS_BOUND above the highest of the first.
//!
//! CI runs each for 20 s (and the faults one for at least one round of every fault);
//! `scripts/soak.sh` runs the first for 10 minutes and `scripts/soak-faults.sh` the second for
//! 30 (KUBERNETAI_SOAK_SECONDS), printing the figures the README quotes.

use std::path::Path;
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

/// What an event of a soak works on.
struct Soaking<'a> {
    server: &'a Server,
    api: &'a FakeApi,
    corefile: &'a Path,
    /// The metrics endpoint (announced again by a reload).
    metrics: std::cell::RefCell<String>,
}

/// What a soak does every `every` of its run, besides churn: event `n` (0, 1, …), done and
/// waited for; its name, for the figures.
type Event<'a> = &'a mut dyn FnMut(&Soaking<'_>, usize) -> &'static str;

/// Runs a soak named `name` (a block with one stanza on a fake API server, `-module` a copy of
/// the built module, and `args`) for `duration`, and at least `events` events; returns the
/// server for the caller's last checks and how many events of each name were done.
fn soak(name: &str, args: &[&str], every: Duration, events: usize, event: Event<'_>) -> (Server, Vec<&'static str>) {
    let duration = Duration::from_secs(seconds());
    let api = FakeApi::start();
    let expect = stable_services(&api, "soak", "stable", STABLE);
    let dir = Scratch::new(name);
    let built = harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm");
    let module = dir.write("module.wasm", "");
    std::fs::copy(&built, &module).expect("module");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n",
            api.url()
        ),
    );
    let mut all = vec!["-module", module.to_str().expect("path")];
    all.extend_from_slice(args);
    let server = Server::start_with(&corefile, &all);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving")).into();
    let load = Load::start(server.addr, expect, 3);
    let soaking = Soaking { server: &server, api: &api, corefile: &corefile, metrics };

    let started = Instant::now();
    let mut next_event = started + every;
    let mut done = Vec::new();
    let mut changes = 0u64;
    let mut rss: Vec<(Duration, u64)> = Vec::new();
    let mut next_sample = started;
    let mut round = 0usize;
    while started.elapsed() < duration || done.len() < events {
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
        if Instant::now() >= next_event {
            done.push(event(&soaking, done.len()));
            next_event = Instant::now() + every;
        }
        if Instant::now() >= next_sample {
            rss.push((started.elapsed(), server.rss()));
            next_sample += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = load.finish();
    let half = started.elapsed() / 2;
    let peak = |part: &mut dyn Iterator<Item = &(Duration, u64)>| part.map(|(_, r)| *r).max().unwrap_or(0);
    let first = peak(&mut rss.iter().filter(|(t, _)| *t < half));
    let second = peak(&mut rss.iter().filter(|(t, _)| *t >= half));
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let mut kinds: Vec<String> = Vec::new();
    for kind in &done {
        if !kinds.iter().any(|k| k.ends_with(&format!(" {kind}"))) {
            kinds.push(format!("{} {kind}", done.iter().filter(|d| *d == kind).count()));
        }
    }
    eprintln!(
        "soak: {name}: {:.0} s, {} queries answered ({:.0} qps), {} lost, {} wrong, slowest {:?}; {changes} object changes, {}; RSS peak {:.1} MiB in the first half, {:.1} MiB in the second, {:.1} MiB at the end",
        report.seconds,
        report.answered,
        report.qps(),
        report.lost,
        report.wrong,
        report.slowest,
        kinds.join(", "),
        mib(first),
        mib(second),
        mib(rss.last().map_or(0, |(_, r)| *r)),
    );
    let tenths: Vec<String> = (1..=10)
        .filter_map(|k| rss.iter().rev().find(|(t, _)| *t <= half * 2 * k / 10))
        .map(|(_, r)| format!("{:.0}", mib(*r)))
        .collect();
    eprintln!("soak: {name}: RSS (MiB) at each tenth of the run: {}", tenths.join(" "));
    report.assert_clean();
    assert!(first > 0 && second > 0, "RSS was sampled: {rss:?}");
    assert!(second <= first + RSS_BOUND, "RSS grew from {:.1} to {:.1} MiB", mib(first), mib(second));
    drop(soaking);
    (server, done)
}

fn swap(server: &Server) -> &'static str {
    server.signal("HUP");
    server.wait_for("module swapped");
    "module swaps"
}

#[test]
fn churn_and_module_swaps_under_load_lose_nothing_and_keep_memory_flat() {
    let every = (Duration::from_secs(seconds()) / 8).min(Duration::from_secs(30));
    let (server, done) = soak("soak", &[], every, 4, &mut |s, _| swap(s.server));
    let swaps = done.len();
    let summary = server.stop();
    assert!(summary.contains(&format!("swaps={swaps} refused=0")), "{summary}");
}

impl Soaking<'_> {
    /// A metric of the server, summed over the series whose labels hold `labels`.
    fn counter(&self, name: &str, labels: &str) -> f64 {
        crate::peers::metric(&crate::peers::curl(&self.metrics.borrow()).1, name, labels)
    }

    /// Waits until the counter passes `above`.
    fn counted(&self, name: &str, labels: &str, above: f64, what: &str) {
        crate::peers::wait_metric_above(&self.metrics.borrow(), name, labels, above, what);
    }
}

#[test]
fn faults_under_load_lose_nothing_and_keep_memory_flat() {
    const FAULTS: usize = 5;
    let every = (Duration::from_secs(seconds()) / 20).clamp(Duration::from_secs(1), Duration::from_secs(90));
    const RESTARTS: &str = "kubernetai_watch_restarts_total";
    const RELIST: &str = "reason=\"relist\"";
    let (server, done) = soak("soak-faults", &["-watch.silence", "6s"], every, FAULTS, &mut |s, n| match n % FAULTS {
        0 => {
            // The API server goes away (connections dropped) and comes back with a new history:
            // every watch lists again.
            let (relists, errors) = (s.counter(RESTARTS, RELIST), s.counter("kubernetai_watch_errors_total", ""));
            s.api.set_down(true);
            s.counted("kubernetai_watch_errors_total", "", errors, "the API server went away");
            s.api.set_down(false);
            s.api.restart();
            s.counted(RESTARTS, RELIST, relists, "the API server came back");
            "API server restarts"
        }
        1 => {
            let relists = s.counter(RESTARTS, RELIST);
            s.api.compact();
            s.api.cut_streams();
            s.counted(RESTARTS, RELIST, relists, "every watch answered 410");
            "watch expiries"
        }
        2 => {
            let ended = s.counter(RESTARTS, "reason=\"ended\"");
            s.api.stall_streams();
            s.counted(RESTARTS, "reason=\"ended\"", ended, "silent watches");
            "silent watches"
        }
        3 => {
            let text = std::fs::read_to_string(s.corefile).expect("Corefile");
            harness::put(s.corefile, format!("{text}# reload {n}\n").as_bytes());
            s.server.signal("USR1");
            let said = s.server.lines_until("Reloading complete");
            if let Some(line) = said.iter().rev().find(|l| l.contains("plugin/prometheus: serving")) {
                *s.metrics.borrow_mut() = crate::peers::url_in(line);
            }
            "Corefile reloads"
        }
        _ => swap(s.server),
    });
    assert!(done.len() >= FAULTS, "every fault at least once: {done:?}");
    let summary = server.stop();
    assert!(summary.contains("refused=0"), "{summary}");
}
