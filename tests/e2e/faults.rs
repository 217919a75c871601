//! Faults of the API server under query load: malformed objects, watches expired (410) again
//! and again, streams cut in the middle of an object, the server down and back, a restart with a
//! new history. Throughout, every query of the load is answered from the last good state, each
//! bad object is logged and counted, and the watch resumes (a new object appears after each
//! fault).

use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::FakeApi;
use crate::harness::{Scratch, Server};
use crate::live::{eventually, service, slice};
use crate::load::{Load, stable_services};
use crate::peers::{curl, metric, url_in};

const SERVICES: usize = 20;

/// Objects a real cluster can hold or send that DNS cannot use, each with the name its log line
/// carries. Every one must be skipped without touching the rest.
fn malformed() -> Vec<(&'static str, Value)> {
    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"}, "spec": spec});
    let mut bad_slice = slice("shop", "svc-0", "10.1.999.1", true);
    bad_slice["metadata"]["name"] = json!("svc-0-bad");
    vec![
        ("shop/bad-ip", svc("bad-ip", json!({"clusterIP": "10.96.300.1"}))),
        ("shop/bad-ips", svc("bad-ips", json!({"clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1", "fd00::zz"]}))),
        ("shop/no-target", svc("no-target", json!({"type": "ExternalName"}))),
        (
            "shop/bad-port",
            svc(
                "bad-port",
                json!({"clusterIP": "10.96.1.2", "ports": [{"name": "x", "port": 70000, "protocol": "TCP"}]}),
            ),
        ),
        ("shop/svc-0-bad", bad_slice),
    ]
}

#[test]
fn the_last_good_state_answers_through_api_server_faults() {
    let api = FakeApi::start();
    let expect = stable_services(&api, "shop", "svc", SERVICES);
    let dir = Scratch::new("faults");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start(&corefile);
    let metrics = url_in(&server.wait_for("plugin/prometheus: serving"));
    let load = Load::start(server.addr, expect, 3);

    // Each fault, then a new object that must appear: the watch came back.
    let mut probe = 0;
    let mut recovered = |server: &Server, api: &FakeApi| {
        probe += 1;
        let ip = format!("10.96.9.{probe}");
        api.apply(service("shop", &format!("probe-{probe}"), &ip, json!({})));
        eventually(server, &format!("probe-{probe}.shop.svc.cluster.local."), &[&ip]);
    };

    let bad = malformed();
    for (_, obj) in &bad {
        api.apply(obj.clone());
    }
    // Objects a healthy API server never sends: no name at all; a huge label; a name too long to
    // be a DNS label; the same object ADDED twice.
    api.inject("ADDED", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "shop"}, "spec": {"clusterIP": "10.96.1.3"}}));
    let huge = "x".repeat(200_000);
    api.apply(service("shop", "huge-label", "10.96.1.4", json!({"big": huge})));
    api.apply(service("shop", &"long".repeat(20), "10.96.1.5", json!({})));
    let twice = service("shop", "twice", "10.96.1.6", json!({}));
    api.inject("ADDED", twice.clone());
    api.inject("ADDED", twice);
    recovered(&server, &api);
    eventually(&server, "twice.shop.svc.cluster.local.", &["10.96.1.6"]);
    eventually(&server, "huge-label.shop.svc.cluster.local.", &["10.96.1.4"]);

    for _ in 0..3 {
        // Expired: every resumed watch gets 410 Gone and relists.
        api.compact();
        api.cut_streams();
        recovered(&server, &api);
    }
    for _ in 0..3 {
        api.cut_streams();
        recovered(&server, &api);
    }
    api.set_down(true);
    std::thread::sleep(Duration::from_secs(3));
    let during_outage = load.answered();
    std::thread::sleep(Duration::from_secs(1));
    assert!(load.answered() > during_outage, "answers go on while the API server is down");
    api.set_down(false);
    recovered(&server, &api);
    api.restart();
    recovered(&server, &api);

    let report = load.finish();
    eprintln!(
        "faults: {} queries answered at {:.0} qps, slowest {:?}, {} lost, {} wrong",
        report.answered,
        report.qps(),
        report.slowest,
        report.lost,
        report.wrong
    );
    report.assert_clean();

    let (code, text) = curl(&metrics);
    assert_eq!(code, 200);
    // Every malformed object is rejected at each (re)list and its watch event: at least once each.
    let rejected = metric(&text, "kubernetai_objects_rejected_total", "");
    assert!(rejected >= (bad.len() + 1) as f64, "rejections counted: {rejected}\n{text}");
    assert!(metric(&text, "kubernetai_watch_errors_total", "") >= 3.0, "watch errors counted\n{text}");
    let log = server.drain().join("\n");
    for (name, _) in &bad {
        assert!(
            log.contains(&format!("skipped Service {name}:"))
                || log.contains(&format!("skipped EndpointSlice {name}:")),
            "{name} logged:\n{log}"
        );
    }
    assert!(log.contains("metadata.name is missing"), "the nameless object is logged:\n{log}");
}

/// With the process's descriptor limit lowered to 96, a few hundred connections to the DNS port,
/// `health`, `ready`, `prometheus` and the admin endpoint run it out of descriptors; once they
/// close, every listener answers again within seconds (an accept error used to end the HTTP
/// listeners for good: the liveness probe would then restart the pod).
#[test]
fn every_listener_answers_again_after_descriptors_ran_out() {
    let dir = Scratch::new("faults-descriptors");
    let local = crate::harness::root().join("examples/clusters/local.json");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n health 127.0.0.1:0\n ready 127.0.0.1:0\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  manifests {}\n }}\n}}\n",
            local.display()
        ),
    );
    let server = Server::start(&corefile);
    let mut urls = std::collections::BTreeMap::new();
    while urls.len() < 4 {
        let line = server.wait_for(" on http://");
        for (needle, name) in [
            ("plugin/health", "health"),
            ("plugin/ready", "ready"),
            ("plugin/prometheus", "metrics"),
            ("admin endpoint", "admin"),
        ] {
            if line.contains(needle) {
                urls.insert(name, url_in(&line));
            }
        }
    }
    let limit = libc::rlimit { rlim_cur: 96, rlim_max: 4096 };
    // SAFETY: a valid rlimit for a child process of this test.
    let set = unsafe { libc::prlimit(server.pid() as libc::pid_t, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    let addrs: Vec<std::net::SocketAddr> = std::iter::once(server.addr)
        .chain(urls.values().map(|u| {
            let hostport = u.trim_start_matches("http://").split('/').next().expect("host:port").to_string();
            hostport.parse().expect("an address")
        }))
        .collect();
    let mut flood = Vec::new();
    for addr in &addrs {
        for _ in 0..150 {
            if let Ok(conn) = std::net::TcpStream::connect_timeout(addr, Duration::from_millis(200)) {
                flood.push(conn);
            }
        }
    }
    server.wait_for("Too many open files");
    drop(flood);
    let admin = urls["admin"].trim_start_matches("http://").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let answering = || {
        let http = ["health", "ready", "metrics"].iter().all(|n| curl(&urls[n]).0 == 200);
        let admin = curl(&format!("http://{admin}/module/shadow")).0 == 404;
        let dns = std::net::TcpStream::connect(server.addr).ok().and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            crate::harness::ask_tcp(
                &mut c,
                &crate::harness::query("web.shop.svc.cluster.local.", hickory_proto::rr::RecordType::A, 1, None),
            )
        });
        http && admin && dns.is_some()
    };
    while !answering() {
        assert!(std::time::Instant::now() < deadline, "a listener did not come back after the descriptors were freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A watch that stays open but goes silent (no event, no bookmark: a load balancer or VPN that
/// stopped forwarding) is taken for dead after `-watch.silence` and started again: a service
/// created meanwhile answers within seconds of that, not after kube-rs's five minutes.
#[test]
fn a_silent_watch_is_restarted_and_a_change_made_meanwhile_answers() {
    use serde_json::json;
    let api = FakeApi::start();
    api.apply(crate::live::namespace("shop"));
    api.apply(service("shop", "web", "10.0.0.1", json!({})));
    let dir = Scratch::new("faults-silent-watch");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  endpoint {}\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start_with(&corefile, &["-watch.silence", "10s"]);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    crate::live::eventually(&server, "web.shop.svc.cluster.local.", &["10.0.0.1"]);
    // Stalled once open: a watch opened after the stall would be served as usual.
    api.wait_for_watches(&["services", "endpointslices"]);
    api.stall_streams();
    api.apply(service("shop", "late", "10.0.0.2", json!({})));
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(60);
    while crate::live::lookup(&server, "late.shop.svc.cluster.local.") != ["10.0.0.2"] {
        assert!(std::time::Instant::now() < deadline, "the change was never seen: the silent watch was kept");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("answered {:.1} s after the watch went silent", started.elapsed().as_secs_f64());
    assert_eq!(crate::live::lookup(&server, "web.shop.svc.cluster.local."), ["10.0.0.1"]);
    // Counted as restarts of that stanza's watches, and their last events are stamped.
    let (_, text) = crate::peers::curl(&metrics);
    assert!(crate::peers::metric(&text, "kubernetai_watch_restarts_total", "reason=\"ended\"") >= 1.0, "{text}");
    let stamp = crate::peers::metric(&text, "kubernetai_watch_last_event_timestamp_seconds", "kind=\"Service\"");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    assert!(stamp > 0.0 && now - stamp < 60.0, "stamped {stamp}, now {now}");
    // Anything a watch stream delivers, bookmarks included, is stamped per resource.
    let heard = crate::peers::metric(&text, "kubernetai_watch_last_heard_timestamp_seconds", "resource=\"services\"");
    assert!(heard > 0.0 && now - heard < 60.0, "heard {heard}, now {now}");
}

/// Every watch answered 410 Gone (the history compacted and the streams cut), then the API
/// server restarted with a new history: each time every kind is listed again, answers go on
/// meanwhile, and memory comes back to where it was instead of holding a second copy. Prints
/// the figures (`relist:` lines).
#[test]
fn a_relist_of_every_watch_keeps_one_copy_and_memory_comes_back() {
    use serde_json::json;
    const SERVICES: usize = 5000;
    let api = FakeApi::start();
    api.apply(crate::live::namespace("shop"));
    for i in 0..SERVICES {
        let (name, ip) = (format!("svc-{i}"), format!("10.1.{}.{}", i / 250, i % 250 + 1));
        api.apply(service("shop", &name, &format!("10.0.{}.{}", i / 250, i % 250 + 1), json!({"app": name})));
        api.apply(crate::live::slice("shop", &name, &ip, true));
        api.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-0"), "namespace": "shop", "labels": {"app": name},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-04T00:00:00Z"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.2.3",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True"}]}}));
    }
    let objects = (3 * SERVICES) as f64;
    let dir = Scratch::new("faults-relist-memory");
    let corefile = dir.write(
        "Corefile",
        &format!(
            ". {{\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n kubernetai cluster.local {{\n  endpoint {}\n  pods verified\n }}\n}}\n",
            api.url()
        ),
    );
    let server = Server::start(&corefile);
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    let last = format!("svc-{}.shop.svc.cluster.local.", SERVICES - 1);
    crate::live::eventually(&server, &last, &[&format!("10.0.{}.{}", (SERVICES - 1) / 250, (SERVICES - 1) % 250 + 1)]);
    let applied = || {
        let (_, text) = crate::peers::curl(&metrics);
        crate::peers::metric(&text, "kubernetai_watch_events_total", "event=\"apply\"")
    };
    // Resident memory once it stops moving: five samples in a row within 1 % of each other.
    let settled = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut samples: Vec<u64> = Vec::new();
        loop {
            samples.push(server.rss());
            let recent = &samples[samples.len().saturating_sub(5)..];
            let (lo, hi) = (recent.iter().min().copied().unwrap_or(0), recent.iter().max().copied().unwrap_or(0));
            if recent.len() == 5 && hi as f64 <= lo as f64 * 1.01 {
                return hi;
            }
            assert!(std::time::Instant::now() < deadline, "memory never settled: {samples:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let steady = settled();
    let mib = |b: u64| b as f64 / 1048576.0;
    for (fault, cause) in [("410", &(|a: &FakeApi| {
        a.compact();
        a.cut_streams();
    }) as &dyn Fn(&FakeApi)), ("restart", &|a: &FakeApi| a.restart())] {
        let before = applied();
        cause(&api);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut peak = 0;
        while applied() < before + objects {
            peak = peak.max(server.rss());
            assert_eq!(crate::live::lookup(&server, "svc-7.shop.svc.cluster.local."), ["10.0.0.8"], "answered during the relist");
            assert!(std::time::Instant::now() < deadline, "the relist after {fault} never completed");
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = settled();
        println!(
            "relist: after {fault}: steady {:.1} MiB, peak {:.1} MiB ({:.2} x), after {:.1} MiB ({:.3} x)",
            mib(steady),
            mib(peak.max(after)),
            peak.max(after) as f64 / steady as f64,
            mib(after),
            after as f64 / steady as f64
        );
        assert!(peak.max(after) as f64 <= steady as f64 * 1.2, "a relist after {fault} held a second copy");
        assert!(after as f64 <= steady as f64 * 1.05, "memory after the relist after {fault} did not come back");
    }
}
