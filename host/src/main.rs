//! `kubernetai`: a DNS server for Kubernetes clusters, several at once, whose resolution logic is
//! a sandboxed wasm module. It reads a Corefile, feeds each server block's `kubernetai` stanzas
//! to a module instance, keeps their cluster snapshots current, and serves DNS over UDP and TCP.

mod admin;
mod cli;
mod config;
mod corefile;
mod manifests;
mod module;
#[cfg(test)]
mod native;
mod objects;
mod offline;
mod plugin;
mod plugins;
mod server;
mod stanza;
mod swap;
mod watch;
mod wire;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::net::{TcpListener, UdpSocket};

use crate::module::{Module, wit};
use crate::plugin::Plugin;
use crate::server::{Block, Counters, Router};
use crate::stanza::Source;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(args)) => args,
        Ok(cli::Command::CheckModule(path)) => {
            return match offline::check_module(&path) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e:#}", path.display());
                    ExitCode::FAILURE
                }
            };
        }
        Ok(cli::Command::Resolve(args, name, qtype)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            let result =
                runtime.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(offline::resolve(&args, &name, &qtype)));
            return match result {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("[FATAL] {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(cli::Command::Print(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("[FATAL] starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[FATAL] {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn log_rejected(at: &str, rejected: &[wit::Rejected]) {
    for r in rejected {
        eprintln!("[WARNING] plugin/kubernetai: {at}: skipped {:?} {}: {}", r.kind, r.name, r.reason);
    }
}

async fn run(args: cli::Args) -> anyhow::Result<()> {
    let blocks = corefile::load(&args.conf)?;
    let servers = config::servers(&blocks, args.port)?;
    // Taken before the module is read, so a change racing the startup is still seen as one.
    let module_stamp = args.module.as_deref().and_then(swap::modified);
    let module = match &args.module {
        Some(path) => Module::load_with(&swap::read_module(path)?, args.memory_limit)
            .with_context(|| format!("loading the module {}", path.display()))?,
        None => Module::load_with(module::EMBEDDED, args.memory_limit).context("loading the built-in module")?,
    };
    let mut plugins = Vec::new();

    let mut by_port: BTreeMap<u16, (Vec<IpAddr>, Vec<Block>)> = BTreeMap::new();
    let mut syncs = Vec::new();
    for srv in &servers {
        let plugin = if srv.stanzas.is_empty() { None } else { Some(start_stanzas(&module, srv, &mut syncs).await?) };
        plugins.extend(plugin.clone());
        let mut ports: Vec<u16> = srv.keys.iter().map(|(_, p)| *p).collect();
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            let zones = srv.keys.iter().filter(|(_, p)| *p == port).map(|(z, _)| z.clone()).collect();
            let entry = by_port.entry(port).or_default();
            entry.0.extend(&srv.bind);
            entry.1.push(Block { zones, log: srv.log, errors: srv.errors, plugin: plugin.clone() });
        }
    }

    // As CoreDNS: wait for every stanza's first list, each up to its startup_timeout, then serve.
    let waits = syncs.into_iter().map(|(at, timeout, mut synced): Sync| async move {
        if tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await.is_err() {
            eprintln!("[WARNING] plugin/kubernetai: {at}: starting server with unsynced Kubernetes API");
        }
    });
    futures::future::join_all(waits).await;

    // SIGHUP swaps the module; its handler is in place before anyone can learn the server is up.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("handling SIGHUP")?;
    let counters = Arc::new(Counters::default());
    for (port, (binds, blocks)) in by_port {
        let router = Arc::new(Router { blocks, counters: counters.clone() });
        let binds = if binds.is_empty() { vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)] } else { binds };
        for ip in binds {
            let (udp, tcp) = bind_pair(SocketAddr::new(ip, port)).await?;
            let addr = udp.local_addr()?;
            println!("[INFO] listening on udp+tcp {addr}");
            // Several receivers on one socket, one per core, so UDP queries are answered in parallel.
            let udp = Arc::new(udp);
            for _ in 0..std::thread::available_parallelism().map_or(1, |n| n.get()) {
                tokio::spawn(server::serve_udp(udp.clone(), router.clone()));
            }
            tokio::spawn(server::serve_tcp(tcp, router.clone()));
        }
    }
    for srv in &servers {
        for (zone, port) in &srv.keys {
            println!("{zone}:{port}");
        }
    }
    println!("kubernetai-{}", env!("CARGO_PKG_VERSION"));

    let (admin_tx, admin_rx) = tokio::sync::mpsc::channel(4);
    if let Some(addr) = &args.admin {
        match tokio::net::TcpListener::bind(addr.as_str()).await {
            Ok(listener) => {
                println!("[INFO] admin endpoint on http://{}", listener.local_addr()?);
                tokio::spawn(admin::serve(listener, admin_tx));
            }
            Err(e) => eprintln!("[WARNING] admin endpoint {addr}: {e}; module swaps by SIGHUP and file change only"),
        }
    }
    let source = swap::Source { path: args.module.clone(), stamp: module_stamp, memory_limit: args.memory_limit };
    tokio::spawn(swap::run(source, hup, admin_rx, plugins, counters.clone()));
    shutdown_signal().await;
    eprintln!("[INFO] shutting down: {}", counters.summary());
    Ok(())
}

/// A UDP socket and a TCP listener on the same address. Port 0 picks a free port for both.
async fn bind_pair(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await.with_context(|| format!("binding udp {addr}"))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // With port 0 the TCP side of a free UDP port may be taken: try another.
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e).with_context(|| format!("binding tcp {addr}")),
        }
    }
    bail!("no port free for both udp and tcp on {}: {:?}", addr.ip(), last_err)
}

/// A stanza whose first list startup waits for: where it is written, how long to wait, and
/// whether it has synced.
type Sync = (String, std::time::Duration, tokio::sync::watch::Receiver<bool>);

/// Instantiates the module for one server block, configures it with the block's stanzas, loads
/// each stanza's objects and starts keeping them current.
pub async fn start_stanzas(
    module: &Module,
    srv: &config::Server,
    syncs: &mut Vec<Sync>,
) -> anyhow::Result<Arc<Plugin>> {
    let local_ips = local_ips(&srv.bind).iter().map(IpAddr::to_string).collect();
    let stanzas: Vec<wit::Stanza> = srv.stanzas.iter().map(|s| s.guest.clone()).collect();
    let instance = Arc::new(
        Plugin::new(module.clone(), wit::Server { local_ips }, stanzas)
            .with_context(|| format!("server block at {}", srv.at))?,
    );
    for (i, st) in srv.stanzas.iter().enumerate() {
        let index = u32::try_from(i).context("too many stanzas")?;
        match &st.source {
            Source::Manifests(files) => {
                // Stamped before reading, so a change racing the startup is still seen as one.
                let stamp = manifests::stamp(files);
                let objects = manifests::load(files).with_context(|| format!("kubernetai stanza at {}", st.at))?;
                let rejected = instance.apply(index, now(), &objects.initial_events())?;
                log_rejected(&st.at, &rejected);
                eprintln!(
                    "[INFO] plugin/kubernetai: {}: loaded {} objects from {} file(s)",
                    st.at,
                    objects.len(),
                    files.len()
                );
                tokio::spawn(watch_manifests(instance.clone(), index, st.at.clone(), files.clone(), stamp, objects));
            }
            Source::Api(api) => {
                let client = watch::client(api).await.with_context(|| format!("kubernetai stanza at {}", st.at))?;
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let kinds = watch::kinds(&st.guest);
                for kind in &kinds {
                    tokio::spawn(watch::run(client.clone(), *kind, st.guest.clone(), tx.clone(), st.at.clone()));
                }
                let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(apply_reports(instance.clone(), index, st.at.clone(), kinds, rx, synced_tx));
                syncs.push((st.at.clone(), st.startup_timeout, synced_rx));
            }
        }
    }
    Ok(instance)
}

/// The addresses the zone's NS records name, as CoreDNS picks them: the bound addresses, or
/// every interface address when the block binds all; loopback never.
fn local_ips(bind: &[IpAddr]) -> Vec<IpAddr> {
    let all = bind.is_empty() || bind.iter().any(IpAddr::is_unspecified);
    let candidates: Vec<IpAddr> = if all {
        if_addrs::get_if_addrs().map(|ifs| ifs.into_iter().map(|i| i.ip()).collect()).unwrap_or_default()
    } else {
        bind.to_vec()
    };
    candidates
        .into_iter()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        // Link-local IPv6 addresses are not reachable as name servers.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .collect()
}

/// Re-reads the manifest files when they change and feeds the difference to the instance.
async fn watch_manifests(
    instance: Arc<Plugin>,
    index: u32,
    at: String,
    files: Vec<std::path::PathBuf>,
    mut stamp: Vec<Option<SystemTime>>,
    mut current: manifests::Objects,
) {
    loop {
        tokio::time::sleep(manifests::POLL_INTERVAL).await;
        let next_stamp = manifests::stamp(&files);
        if next_stamp == stamp {
            continue;
        }
        stamp = next_stamp;
        let next = match manifests::load(&files) {
            Ok(next) => next,
            Err(e) => {
                eprintln!("[ERROR] plugin/kubernetai: {at}: {e}; keeping the last good objects");
                continue;
            }
        };
        let events = current.diff(&next);
        if events.is_empty() {
            continue;
        }
        let result = instance.apply(index, now(), &events);
        match result {
            Ok(rejected) => {
                log_rejected(&at, &rejected);
                eprintln!("[INFO] plugin/kubernetai: {at}: applied {} change(s)", events.len());
                current = next;
            }
            Err(e) => eprintln!("[ERROR] plugin/kubernetai: {at}: applying changes: {e:#}"),
        }
    }
}

/// Applies a stanza's watch events to the instance in the order they came, batching what has
/// queued up, and marks the stanza synced once every kind has listed.
async fn apply_reports(
    instance: Arc<Plugin>,
    index: u32,
    at: String,
    mut pending: Vec<wit::Kind>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<watch::Report>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    while let Some(first) = rx.recv().await {
        let mut events = Vec::new();
        let mut report = Some(first);
        while let Some(r) = report.take() {
            match r {
                watch::Report::Events(mut e) => events.append(&mut e),
                watch::Report::Listed(kind) => {
                    pending.retain(|k| *k != kind);
                    if pending.is_empty() && !*synced.borrow() {
                        events.push(wit::Event::Synced(true));
                    }
                }
            }
            report = rx.try_recv().ok();
        }
        let became_synced = events.iter().any(|e| matches!(e, wit::Event::Synced(true)));
        match instance.apply(index, now(), &events) {
            Ok(rejected) => log_rejected(&at, &rejected),
            Err(e) => eprintln!("[ERROR] plugin/kubernetai: {at}: applying watch events: {e:#}"),
        }
        if became_synced {
            eprintln!("[INFO] plugin/kubernetai: {at}: synced with the Kubernetes API");
            let _ = synced.send(true);
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
