//! The loops that keep a stanza's objects current in whatever holds them: a manifest file read
//! at start and again when it changes, or an API server's watches, each applied to a [`Sink`]
//! in the order they came. The data runs one way: from a cluster's source, through here, into
//! the sink (the module of a server block); nothing here knows what the sink is.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::task::AbortHandle;

use crate::cluster::objects::{self, Change, Table};
use crate::cluster::prune::Reads;
use crate::cluster::stanza::{Source, Stanza};
use crate::cluster::{manifests, watch};
use crate::contract::wit;
use crate::observe::metrics::registry;

/// What takes a stanza's object changes: the narrow side of a server block's module.
pub trait Sink: Send + Sync + 'static {
    /// Applies `events` to stanza `stanza`; returns the objects it refused.
    fn apply(&self, stanza: u32, now: u64, events: Vec<Change>) -> anyhow::Result<Vec<wit::Rejected>>;
    /// The events that turn the stanza's objects into `next`.
    fn changes(&self, stanza: u32, next: Table) -> Vec<Change>;
    /// A remote cluster's stanza holds readiness back unsynced only until `until`.
    fn set_remote(&self, stanza: u32, until: Instant);
}

/// A stanza whose first list startup waits for: where it is written, how long to wait, and
/// whether it has synced.
pub type SyncWait = (String, std::time::Duration, tokio::sync::watch::Receiver<bool>);

/// Loads stanza `index`'s objects into `sink` and starts keeping them current; the tasks it
/// starts are pushed to `tasks`, and an API stanza's first sync to `syncs`.
pub async fn start(
    sink: Arc<dyn Sink>,
    server: &Arc<str>,
    index: u32,
    st: &Stanza,
    syncs: &mut Vec<SyncWait>,
    tasks: &mut Vec<AbortHandle>,
) -> anyhow::Result<()> {
    match &st.source {
        Source::Manifests(files) => {
            // Stamped before reading, so a change racing the startup is still seen as one.
            let stamp = manifests::stamp(files);
            let objects = manifests::load(files, Reads::of(&st.guest)).with_context(|| format!("kubernetai stanza at {}", st.at))?;
            let loaded = objects.len();
            let events = objects.into_initial();
            let count = events.len();
            let started = Instant::now();
            let rejected = sink.apply(index, crate::now(), events)?;
            let took = started.elapsed();
            log_rejected(&st.at, &rejected);
            println!(
                "[INFO] plugin/kubernetai: {}: loaded {} objects from {} file(s) in {:.0} ms ({:.0} events/s per instance)",
                st.at,
                loaded,
                files.len(),
                took.as_secs_f64() * 1000.0,
                count as f64 / took.as_secs_f64().max(1e-9)
            );
            registry().set("kubernetai_stanza_synced", &[&**server, &st.at], 1.0);
            // Reading the file took many times its size in short-lived allocations.
            crate::observe::process::trim_heap();
            let watch = watch_manifests(sink, index, st.at.clone(), files.clone(), stamp, Reads::of(&st.guest));
            tasks.push(tokio::spawn(watch).abort_handle());
        }
        Source::Api(api) => {
            if api.endpoint.is_some() || api.kubeconfig.is_some() {
                sink.set_remote(index, Instant::now() + st.startup_timeout);
            }
            let client = watch::client(api, &st.at).await.with_context(|| format!("kubernetai stanza at {}", st.at))?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let kinds = watch::kinds(&st.guest, st.clusterset.as_ref().is_some_and(|m| !m.export_all));
            for kind in &kinds {
                let run = watch::run(client.clone(), *kind, st.guest.clone(), tx.clone(), st.at.clone());
                tasks.push(tokio::spawn(run).abort_handle());
            }
            let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
            registry().set("kubernetai_stanza_synced", &[&**server, &st.at], 0.0);
            let apply = apply_reports(server.clone(), sink, index, st.at.clone(), kinds, rx, synced_tx);
            tasks.push(tokio::spawn(apply).abort_handle());
            syncs.push((st.at.clone(), st.startup_timeout, synced_rx));
        }
    }
    Ok(())
}

/// Re-reads the manifest files when they change and feeds the difference to the sink.
async fn watch_manifests(
    sink: Arc<dyn Sink>,
    index: u32,
    at: String,
    files: Vec<std::path::PathBuf>,
    mut stamp: Vec<Option<crate::file_stamp::FileStamp>>,
    reads: Reads,
) {
    loop {
        tokio::time::sleep(manifests::POLL_INTERVAL).await;
        let next_stamp = manifests::stamp(&files);
        if next_stamp == stamp {
            continue;
        }
        stamp = next_stamp;
        let next = match manifests::load(&files, reads) {
            Ok(next) => next,
            Err(e) => {
                println!("[ERROR] plugin/kubernetai: {at}: {e}; keeping the last good objects");
                continue;
            }
        };
        let events = sink.changes(index, next.into_table());
        if events.is_empty() {
            continue;
        }
        let count = events.len();
        match sink.apply(index, crate::now(), events) {
            Ok(rejected) => {
                log_rejected(&at, &rejected);
                println!("[INFO] plugin/kubernetai: {at}: applied {count} change(s)");
                crate::observe::process::trim_heap();
            }
            Err(e) => println!("[ERROR] plugin/kubernetai: {at}: applying changes: {e:#}"),
        }
    }
}

/// Applies a stanza's watch events to the sink in the order they came, batching what has
/// queued up, and marks the stanza synced once every kind has listed.
async fn apply_reports(
    server: Arc<str>,
    sink: Arc<dyn Sink>,
    index: u32,
    at: String,
    mut pending: Vec<wit::Kind>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<watch::Report>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    while let Some(first) = rx.recv().await {
        let mut events = Vec::new();
        let mut triggers = Vec::new();
        let mut report = Some(first);
        while let Some(r) = report.take() {
            match r {
                watch::Report::Events(mut e, mut t) => {
                    events.append(&mut e);
                    triggers.append(&mut t);
                }
                watch::Report::Listed(kind) => {
                    pending.retain(|k| *k != kind);
                    if pending.is_empty() && !*synced.borrow() {
                        events.push(Change::marker(wit::Event::Synced(true)));
                    }
                }
            }
            report = rx.try_recv().ok();
        }
        let became_synced = events.iter().any(|e| matches!(e.event, wit::Event::Synced(true)));
        let relisted = *synced.borrow() && events.iter().any(|e| matches!(e.event, wit::Event::RelistDone(_)));
        let counted = counted_events(&events);
        let count = events.len();
        crate::observe::debug::line("kubernetai", || format!("{at}: applying {count} watch event(s)"));
        match sink.apply(index, crate::now(), events) {
            Ok(rejected) => log_rejected(&at, &rejected),
            Err(e) => println!("[ERROR] plugin/kubernetai: {at}: applying watch events: {e:#}"),
        }
        // Counted once applied: a reader who sees the count go up can ask for what changed.
        for (kind, event) in counted {
            registry().inc("kubernetai_watch_events_total", &[&at, kind, event]);
        }
        // The answers reflect these changes from now on.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for t in triggers {
            let took = (now - t.at).max(0.0);
            registry().observe("coredns_kubernetes_dns_programming_duration_seconds", &[t.service_kind], took);
        }
        if relisted {
            // A relist (after 410 Gone, or a restarted API server) decoded whole pages again.
            crate::observe::process::trim_heap();
        }
        if became_synced {
            // The first lists decoded whole pages of full objects: hand what they left back.
            crate::observe::process::trim_heap();
            println!("[INFO] plugin/kubernetai: {at}: synced with the Kubernetes API");
            registry().set("kubernetai_stanza_synced", &[&*server, &at], 1.0);
            let _ = synced.send(true);
        }
    }
}

fn log_rejected(at: &str, rejected: &[wit::Rejected]) {
    for r in rejected {
        let kind = objects::kind_name(r.kind);
        registry().inc("kubernetai_objects_rejected_total", &[at, kind]);
        println!("[WARNING] plugin/kubernetai: {at}: skipped {kind} {}: {}", r.name, r.reason);
    }
}

/// The kind and event of each object event, as `kubernetai_watch_events_total` labels them.
fn counted_events(events: &[Change]) -> Vec<(&'static str, &'static str)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            wit::Event::Apply(o) => Some((objects::kind_name(o.kind), "apply")),
            wit::Event::Delete(o) => Some((objects::kind_name(o.kind), "delete")),
            _ => None,
        })
        .collect()
}
