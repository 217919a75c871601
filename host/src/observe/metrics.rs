//! Prometheus metrics under CoreDNS's names and labels, and kubernetai's own, held in one
//! process-wide registry (it outlives reloads, as CoreDNS's does) and written in the text
//! exposition format for the `prometheus` plugin's /metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use crate::dns::{Proto, Query};

#[derive(Clone, Copy)]
enum Type {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

/// Exponential buckets from 0.25 ms, doubling 16 times: CoreDNS's `TimeBuckets`.
const TIME_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
];
/// CoreDNS's buckets for the programming latency: 1 ms to ~16 min, doubling.
const PROGRAMMING_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 32.768,
    65.536, 131.072, 262.144, 524.288,
];
const SIZE_BUCKETS: &[f64] = &[0., 100., 200., 300., 400., 511., 1023., 2047., 4095., 8291., 16e3, 32e3, 48e3, 64e3];

/// Every metric this server exports: name, help, type, label names.
const FAMILIES: &[(&str, &str, Type, &[&str])] = &[
    (
        "coredns_build_info",
        "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
        Type::Gauge,
        &["version", "revision", "goversion"],
    ),
    (
        "coredns_dns_requests_total",
        "Counter of DNS requests made per zone, protocol and family.",
        Type::Counter,
        &["server", "zone", "view", "proto", "family", "type"],
    ),
    (
        "coredns_dns_do_requests_total",
        "Counter of DNS requests with DO bit set per zone.",
        Type::Counter,
        &["server", "zone", "view"],
    ),
    (
        "coredns_dns_request_duration_seconds",
        "Histogram of the time (in seconds) each request took per zone.",
        Type::Histogram(TIME_BUCKETS),
        &["server", "zone", "view"],
    ),
    (
        "coredns_dns_request_size_bytes",
        "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
        Type::Histogram(SIZE_BUCKETS),
        &["server", "zone", "view", "proto"],
    ),
    (
        "coredns_dns_response_size_bytes",
        "Size of the returned response in bytes.",
        Type::Histogram(SIZE_BUCKETS),
        &["server", "zone", "view", "proto"],
    ),
    (
        "coredns_dns_responses_total",
        "Counter of response status codes.",
        Type::Counter,
        &["server", "zone", "view", "rcode", "plugin"],
    ),
    ("coredns_panics_total", "A metrics that counts the number of panics.", Type::Counter, &[]),
    (
        "coredns_plugin_enabled",
        "A metric that indicates whether a plugin is enabled on per server and zone basis.",
        Type::Gauge,
        &["server", "zone", "view", "name"],
    ),
    (
        "coredns_cache_entries",
        "The number of elements in the cache.",
        Type::Gauge,
        &["server", "type", "zones", "view"],
    ),
    ("coredns_cache_requests_total", "The count of cache requests.", Type::Counter, &["server", "zones", "view"]),
    ("coredns_cache_hits_total", "The count of cache hits.", Type::Counter, &["server", "type", "zones", "view"]),
    (
        "coredns_cache_misses_total",
        "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
        Type::Counter,
        &["server", "zones", "view"],
    ),
    (
        "coredns_cache_served_stale_total",
        "The number of requests served from stale cache entries.",
        Type::Counter,
        &["server", "zones", "view"],
    ),
    (
        "coredns_cache_prefetch_total",
        "The number of times the cache has prefetched a cached item.",
        Type::Counter,
        &["server", "zones", "view"],
    ),
    (
        "coredns_cache_evictions_total",
        "The count of cache evictions.",
        Type::Counter,
        &["server", "type", "zones", "view"],
    ),
    (
        "coredns_proxy_request_duration_seconds",
        "Histogram of the time each request took.",
        Type::Histogram(TIME_BUCKETS),
        &["proxy_name", "to", "rcode"],
    ),
    (
        "coredns_proxy_healthcheck_failures_total",
        "Counter of the number of failed healthchecks.",
        Type::Counter,
        &["proxy_name", "to"],
    ),
    (
        "coredns_forward_healthcheck_broken_total",
        "Counter of the number of complete failures of the healthchecks.",
        Type::Counter,
        &[],
    ),
    (
        "coredns_forward_max_concurrent_rejects_total",
        "Counter of the number of queries rejected because the concurrent queries were at maximum.",
        Type::Counter,
        &[],
    ),
    (
        "coredns_acl_blocked_requests_total",
        "Counter of DNS requests being blocked.",
        Type::Counter,
        &["server", "zone", "view"],
    ),
    (
        "coredns_acl_filtered_requests_total",
        "Counter of DNS requests being filtered.",
        Type::Counter,
        &["server", "zone", "view"],
    ),
    (
        "coredns_acl_allowed_requests_total",
        "Counter of DNS requests being allowed.",
        Type::Counter,
        &["server", "zone", "view"],
    ),
    (
        "coredns_acl_dropped_requests_total",
        "Counter of DNS requests being dropped.",
        Type::Counter,
        &["server", "zone", "view"],
    ),
    ("coredns_hosts_entries", "The combined number of entries in hosts and Corefile.", Type::Gauge, &["hostsfile"]),
    ("coredns_hosts_reload_timestamp_seconds", "The timestamp of the last reload of hosts file.", Type::Gauge, &[]),
    ("coredns_autopath_success_total", "Counter of requests that did autopath.", Type::Counter, &["server"]),
    ("coredns_reload_failed_total", "Counter of the number of failed reload attempts.", Type::Counter, &[]),
    (
        "coredns_health_request_duration_seconds",
        "Histogram of the time (in seconds) each request took.",
        Type::Histogram(TIME_BUCKETS),
        &[],
    ),
    ("coredns_health_request_failures_total", "The number of times the health check failed.", Type::Counter, &[]),
    (
        "coredns_kubernetes_dns_programming_duration_seconds",
        "Histogram of the time (in seconds) it took to program a dns instance.",
        Type::Histogram(PROGRAMMING_BUCKETS),
        &["service_kind"],
    ),
    (
        "kubernetai_stanza_synced",
        "Whether a kubernetai stanza has its first complete view of its cluster (1) or not (0).",
        Type::Gauge,
        &["server", "stanza"],
    ),
    (
        "kubernetai_watch_events_total",
        "Watch events applied to a kubernetai stanza, by object kind and event.",
        Type::Counter,
        &["stanza", "kind", "event"],
    ),
    (
        "kubernetai_watch_errors_total",
        "Failed lists and watches of a kubernetai stanza, by reason (tls, connect, timeout, unauthorized, forbidden, gone, other); each is retried with backoff.",
        Type::Counter,
        &["stanza", "reason"],
    ),
    (
        "kubernetai_watch_restarts_total",
        "Watches of a kubernetai stanza started again, by reason: ended (a watch call ended — closed by the API server after its timeout, at most -watch.silence, given up as silent, or failed — and was made again from its resourceVersion) or relist (the API server answered 410 and everything was listed again).",
        Type::Counter,
        &["stanza", "reason"],
    ),
    (
        "kubernetai_watch_last_event_timestamp_seconds",
        "When a kubernetai stanza's watch of a kind last delivered anything (an event or the end of a list), in Unix seconds, to a second; time() minus it is the watch's silence.",
        Type::Gauge,
        &["stanza", "kind"],
    ),
    (
        "kubernetai_watch_last_heard_timestamp_seconds",
        "When a kubernetai stanza's watch stream of a resource last delivered anything, an event or a bookmark, in Unix seconds; time() minus it is how long the API server has said nothing at all.",
        Type::Gauge,
        &["stanza", "resource"],
    ),
    (
        "kubernetai_objects_rejected_total",
        "Malformed Kubernetes objects a kubernetai stanza skipped.",
        Type::Counter,
        &["stanza", "kind"],
    ),
    (
        "kubernetai_requests_screened_total",
        "Requests stopped before any plugin: dropped (short, a response, oversized), answered FORMERR, NOTIMP, REFUSED (class) or BADVERS, and TCP connections over the limit.",
        Type::Counter,
        &["reason"],
    ),
    ("kubernetai_module_swaps_total", "Module swaps carried out.", Type::Counter, &[]),
    (
        "kubernetai_module_provenance_refused_total",
        "Candidate modules refused before compiling: another digest than -module.sha256 pins, no signature, or a signature by no trusted key.",
        Type::Counter,
        &["reason"],
    ),
    (
        "kubernetai_module_swaps_refused_total",
        "Candidate modules refused; the running module kept serving.",
        Type::Counter,
        &[],
    ),
    (
        "kubernetai_shadow_queries_total",
        "Queries answered by a shadowing candidate module and compared with the running module's answer.",
        Type::Counter,
        &[],
    ),
    (
        "kubernetai_shadow_differences_total",
        "Differences between a shadowing candidate's answers and the running module's, by kind.",
        Type::Counter,
        &["kind"],
    ),
    (
        "kubernetai_module_traps_total",
        "Module calls that trapped or failed; the instance was rebuilt.",
        Type::Counter,
        &["call"],
    ),
];

/// One series: a scalar, or a histogram's per-bucket counts (not cumulative: an observation
/// touches one bucket; the exposition sums them), updated without the registry's lock through
/// a [`Handle`].
pub struct Series {
    scalar: AtomicU64,
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
}

/// A series resolved once and updated for ever after without a lookup.
pub type Handle = Arc<Series>;

/// Adds `by` to the f64 held as bits in `cell`.
fn add_f64(cell: &AtomicU64, by: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + by).to_bits()));
}

impl Series {
    fn new(kind: Type) -> Series {
        let bounds = match kind {
            Type::Histogram(b) => b,
            _ => &[],
        };
        Series {
            scalar: AtomicU64::new(0f64.to_bits()),
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub fn add(&self, by: f64) {
        add_f64(&self.scalar, by);
    }

    pub fn inc(&self) {
        self.add(1.0);
    }

    pub fn set(&self, to: f64) {
        self.scalar.store(to.to_bits(), Ordering::Relaxed);
    }

    pub fn observe(&self, value: f64) {
        // The first bucket whose bound holds the value; past the last one only +Inf counts it.
        let at = self.bounds.partition_point(|b| *b < value);
        if let Some(bucket) = self.buckets.get(at) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&self.sum, value);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn scalar(&self) -> f64 {
        f64::from_bits(self.scalar.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
pub struct Registry {
    /// metric name → label values (joined by [`SEP`]) → series, with the buffer a key is
    /// written into to probe, so finding a series that exists allocates nothing.
    series: Mutex<(BTreeMap<&'static str, BTreeMap<String, Handle>>, String)>,
}

/// Separates label values in a series key: a control character no label value holds.
const SEP: char = '\u{1f}';

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::default();
    r.set("coredns_build_info", &[env!("CARGO_PKG_VERSION"), "", "rust"], 1.0);
    // Exported at 0, as dashboards expect: a panic ends this process rather than one query.
    r.add("coredns_panics_total", &[], 0.0);
    r
});

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

fn family(name: &str) -> Option<&'static (&'static str, &'static str, Type, &'static [&'static str])> {
    FAMILIES.iter().find(|f| f.0 == name)
}

impl Registry {
    /// The series of `name` with `labels`, made at its first use.
    pub fn handle(&self, name: &str, labels: &[&str]) -> Handle {
        let Some(&(name, _, kind, names)) = family(name) else {
            debug_assert!(false, "unknown metric {name}");
            // Counted nowhere: an unknown name is a programming error caught by the debug build.
            return Arc::new(Series::new(Type::Counter));
        };
        debug_assert_eq!(labels.len(), names.len(), "{name}");
        let mut guard = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let (series, key) = &mut *guard;
        key.clear();
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            key.push_str(l);
        }
        let values = series.entry(name).or_default();
        if let Some(h) = values.get(key.as_str()) {
            return h.clone();
        }
        let h = Arc::new(Series::new(kind));
        values.insert(key.clone(), h.clone());
        h
    }

    pub fn add(&self, name: &str, labels: &[&str], by: f64) {
        self.handle(name, labels).add(by);
    }

    pub fn inc(&self, name: &str, labels: &[&str]) {
        self.add(name, labels, 1.0);
    }

    pub fn set(&self, name: &str, labels: &[&str], to: f64) {
        self.handle(name, labels).set(to);
    }

    pub fn observe(&self, name: &str, labels: &[&str], value: f64) {
        self.handle(name, labels).observe(value);
    }

    /// Forgets every series of `name` (gauges of things that are gone after a reload).
    pub fn clear(&self, name: &str) {
        self.series.lock().unwrap_or_else(|p| p.into_inner()).0.remove(name);
    }

    /// The text exposition of every metric with at least one series.
    pub fn render(&self) -> String {
        let guard = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series = &guard.0;
        let mut out = String::new();
        for &(name, help, kind, names) in FAMILIES {
            let Some(values) = series.get(name) else {
                continue;
            };
            let type_name = match kind {
                Type::Counter => "counter",
                Type::Gauge => "gauge",
                Type::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {type_name}");
            for (labels, value) in values {
                let pairs: Vec<String> = if names.is_empty() {
                    Vec::new()
                } else {
                    names.iter().zip(labels.split(SEP)).map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect()
                };
                if value.bounds.is_empty() {
                    let _ = writeln!(out, "{name}{} {}", braces(&pairs), value.scalar());
                    continue;
                }
                let mut cumulative = 0;
                for (c, bound) in value.buckets.iter().zip(value.bounds) {
                    cumulative += c.load(Ordering::Relaxed);
                    let mut with_le = pairs.clone();
                    with_le.push(format!("le=\"{bound}\""));
                    let _ = writeln!(out, "{name}_bucket{} {cumulative}", braces(&with_le));
                }
                let count = value.count.load(Ordering::Relaxed);
                let sum = f64::from_bits(value.sum.load(Ordering::Relaxed));
                let mut with_le = pairs.clone();
                with_le.push("le=\"+Inf\"".to_string());
                let _ = writeln!(out, "{name}_bucket{} {count}", braces(&with_le));
                let _ = writeln!(out, "{name}_sum{} {sum}", braces(&pairs));
                let _ = writeln!(out, "{name}_count{} {count}", braces(&pairs));
            }
        }
        drop(guard);
        process_metrics(&mut out);
        if RUNTIME_METRICS.load(Ordering::Relaxed) {
            runtime_metrics(&mut out);
        }
        out
    }
}

/// `prometheus { runtime_metrics }` was read: the runtime's own figures are exported too.
static RUNTIME_METRICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns on the runtime metrics for the rest of the process's life, as CoreDNS latches them.
pub fn export_runtime_metrics() {
    RUNTIME_METRICS.store(true, Ordering::Relaxed);
}

/// CoreDNS's `runtime_metrics` exports Go's runtime/metrics; this server has no Go runtime, so
/// it exports what its own runtime (tokio) measures of the same concerns: its worker threads,
/// the tasks alive, and those waiting in its global queue (scheduling delay building up).
fn runtime_metrics(out: &mut String) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    let m = handle.metrics();
    for (name, help, kind, value) in [
        ("tokio_workers", "Worker threads of the async runtime.", "gauge", m.num_workers() as f64),
        ("tokio_alive_tasks", "Tasks alive in the async runtime.", "gauge", m.num_alive_tasks() as f64),
        (
            "tokio_global_queue_depth",
            "Tasks waiting in the runtime's global queue.",
            "gauge",
            m.global_queue_depth() as f64,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
}

/// The standard process metrics of Prometheus clients (CoreDNS's Go client exports them), read
/// from /proc when scraped.
fn process_metrics(out: &mut String) {
    let ticks = 100.0; // USER_HZ on Linux
    let page = 4096.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12, starttime 19, vsize 20, rss 21.
    let cpu = (field(11) + field(12)) / ticks;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let max_fds = {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit only writes the struct passed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur as f64 } else { 0.0 }
    };
    for (name, help, kind, value) in [
        ("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", cpu),
        ("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", field(21) * page),
        ("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", field(20)),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            boot + field(19) / ticks,
        ),
        ("process_open_fds", "Number of open file descriptors.", "gauge", fds as f64),
        ("process_max_fds", "Maximum number of open file descriptors.", "gauge", max_fds),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
}

/// The `type` label of the request metrics: CoreDNS's monitored types by name, any other as
/// "other", so the label's values stay few whatever clients ask.
pub fn qtype_label(qtype: u16) -> &'static str {
    QTYPES.get(qtype_index(qtype)).map_or("other", |t| t.1)
}

/// CoreDNS's monitored query types.
const QTYPES: [(u16, &str); 18] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];

/// The position of `qtype` in [`QTYPES`], or its length for "other".
fn qtype_index(qtype: u16) -> usize {
    QTYPES.iter().position(|t| t.0 == qtype).unwrap_or(QTYPES.len())
}

fn braces(pairs: &[String]) -> String {
    if pairs.is_empty() { String::new() } else { format!("{{{}}}", pairs.join(",")) }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Records one request of a block with `prometheus`, as CoreDNS's metrics plugin does.
#[allow(clippy::too_many_arguments)]
/// Counts a request stopped before any plugin, for `reason`.
pub fn screened(reason: &str) {
    registry().inc("kubernetai_requests_screened_total", &[reason]);
}

/// What the request metrics read of a query.
pub struct Asked {
    pub ipv4: bool,
    pub qtype: u16,
    pub proto: Proto,
    pub dnssec_ok: bool,
}

impl Asked {
    pub fn of(q: &Query) -> Asked {
        Asked {
            ipv4: q.client.is_ipv4(),
            qtype: u16::from(q.qtype),
            proto: q.proto,
            dnssec_ok: q.message.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        }
    }
}

/// The request metrics of one zone of one server block, each series resolved at its first use
/// and updated after that without the registry's lock or a lookup: the per-query cost of
/// CoreDNS's `dnsserver` metrics is a handful of atomic additions.
pub struct ZoneMetrics {
    server: String,
    zone: String,
    /// By protocol (udp, tcp), family (1, 2) and type ([`QTYPES`], then "other").
    requests: [[[OnceLock<Handle>; QTYPES.len() + 1]; 2]; 2],
    do_requests: OnceLock<Handle>,
    duration: OnceLock<Handle>,
    request_size: [OnceLock<Handle>; 2],
    response_size: [OnceLock<Handle>; 2],
    /// By rcode: the plugin that first answered with it and its series (another plugin's
    /// answers with the same rcode go through the registry).
    responses: [OnceLock<(&'static str, Handle)>; 16],
}

impl ZoneMetrics {
    pub fn new(server: &str, zone: &str) -> ZoneMetrics {
        ZoneMetrics {
            server: server.to_string(),
            zone: zone.to_string(),
            requests: Default::default(),
            do_requests: OnceLock::new(),
            duration: OnceLock::new(),
            request_size: Default::default(),
            response_size: Default::default(),
            responses: Default::default(),
        }
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Counts one answered request, as CoreDNS's metrics do: `response` is the first message
    /// sent, `response_size` the bytes of all of them, `by` the plugin that wrote it.
    #[allow(clippy::too_many_arguments)] // one request's every measured aspect, as CoreDNS's metrics take them
    pub fn report(
        &self,
        q: &Asked,
        request_size: usize,
        response: &[u8],
        response_size: usize,
        by: &'static str,
        took: Duration,
    ) {
        let r = registry();
        let (server, zone) = (self.server.as_str(), self.zone.as_str());
        let (p, proto) = (usize::from(q.proto == Proto::Tcp), q.proto.name());
        let f = usize::from(!q.ipv4);
        let t = qtype_index(q.qtype);
        self.requests[p][f][t]
            .get_or_init(|| {
                r.handle("coredns_dns_requests_total", &[server, zone, "", proto, ["1", "2"][f], qtype_label(q.qtype)])
            })
            .inc();
        if q.dnssec_ok {
            self.do_requests.get_or_init(|| r.handle("coredns_dns_do_requests_total", &[server, zone, ""])).inc();
        }
        self.duration
            .get_or_init(|| r.handle("coredns_dns_request_duration_seconds", &[server, zone, ""]))
            .observe(took.as_secs_f64());
        self.request_size[p]
            .get_or_init(|| r.handle("coredns_dns_request_size_bytes", &[server, zone, "", proto]))
            .observe(request_size as f64);
        self.response_size[p]
            .get_or_init(|| r.handle("coredns_dns_response_size_bytes", &[server, zone, "", proto]))
            .observe(response_size as f64);
        let code = response.get(3).map_or(2, |b| b & 0x0f);
        let rcode = crate::dns::rcode_name(code);
        let (first, series) = self.responses[usize::from(code)]
            .get_or_init(|| (by, r.handle("coredns_dns_responses_total", &[server, zone, "", rcode, by])));
        if *first == by {
            series.inc();
        } else {
            r.inc("coredns_dns_responses_total", &[server, zone, "", rcode, by]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_handles_count_what_the_exposition_shows() {
        let m = ZoneMetrics::new("dns://:1053", "handles.test.");
        let asked = Asked { ipv4: true, qtype: 1, proto: Proto::Udp, dnssec_ok: true };
        let noerror = [0u8, 0, 0x81, 0x80];
        for took in [0.0001, 0.0003, 0.003, 10.0] {
            m.report(&asked, 40, &noerror, 100, "kubernetai", Duration::from_secs_f64(took));
        }
        // Another plugin answering with the same rcode is counted under its own name.
        m.report(&Asked { qtype: 999, ..asked }, 40, &noerror, 100, "cache", Duration::ZERO);
        let text = registry().render();
        let line = |needle: &str| {
            text.lines().find(|l| l.contains("handles.test.") && l.starts_with(needle)).map(str::to_string)
        };
        let series = r#"{server="dns://:1053",zone="handles.test.",view="""#;
        assert_eq!(
            line("coredns_dns_requests_total").as_deref(),
            Some(format!("coredns_dns_requests_total{series},proto=\"udp\",family=\"1\",type=\"A\"}} 4").as_str())
        );
        assert!(
            text.contains(&format!("coredns_dns_requests_total{series},proto=\"udp\",family=\"1\",type=\"other\"}} 1"))
        );
        assert!(text.contains(&format!("coredns_dns_do_requests_total{series}}} 5")));
        assert!(
            text.contains(&format!("coredns_dns_responses_total{series},rcode=\"NOERROR\",plugin=\"kubernetai\"}} 4"))
        );
        assert!(text.contains(&format!("coredns_dns_responses_total{series},rcode=\"NOERROR\",plugin=\"cache\"}} 1")));
        // Buckets are cumulative: 0 and 0.0001 s in the first, 0.0003 s by the second, 0.003 s by
        // the sixth, 10 s only in +Inf.
        let bucket = |le: &str| format!("coredns_dns_request_duration_seconds_bucket{series},le=\"{le}\"}}");
        for (le, n) in [("0.00025", 2), ("0.0005", 3), ("0.002", 3), ("0.004", 4), ("8.192", 4), ("+Inf", 5)] {
            assert!(text.contains(&format!("{} {n}", bucket(le))), "{le}: {n}\n{text}");
        }
        assert!(text.contains(&format!("coredns_dns_request_duration_seconds_count{series}}} 5")));
    }
}
