//! `kubernetai`: a DNS server for Kubernetes clusters, several at once, whose resolution logic is
//! a sandboxed wasm module. It reads a Corefile, feeds each server block's `kubernetai` stanzas
//! to a module instance, keeps their cluster snapshots current, and serves DNS over UDP and TCP.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use kubernetai::module::{admin, swap};
use kubernetai::observe::metrics::registry;
use kubernetai::observe::{debug, process, status};
use kubernetai::observe::counters::Counters;
use kubernetai::serve::listeners::Listeners;
use kubernetai::serve::running::Running;
use kubernetai::serve::{config, reload};
use kubernetai::{cli, corefile, module, offline};

fn main() -> ExitCode {
    process::cap_malloc_arenas();
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
        Ok(cli::Command::CompileModule(args, file)) => {
            return printed(offline::compile_module(&args, file.as_deref()));
        }
        Ok(cli::Command::DiffModules { args, old, new, queries }) => {
            return match block_on(offline::diff_modules(&args, &old, &new, &queries)) {
                Ok(diff) => {
                    print!("{}", diff.report);
                    if diff.differs { ExitCode::FAILURE } else { ExitCode::SUCCESS }
                }
                Err(e) => {
                    eprintln!("[FATAL] {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Ok(cli::Command::PushModule(args, file, remote)) => {
            return printed(block_on(offline::push_module(&args, &file, &remote)));
        }
        Ok(cli::Command::Resolve(args, name, qtype)) => {
            return printed(block_on(offline::resolve(&args, &name, &qtype)));
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
            println!("[FATAL] starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(args));
    // A compile or pull still running on a blocking thread must not hold the exit: SIGTERM
    // always stops the process.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("[FATAL] {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An offline command's outcome: its text on standard output, or its error on standard error.
fn printed(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("[FATAL] {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an offline command that needs the runtime (cluster sources, the chain).
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(work)
}

async fn run(args: cli::Args) -> anyhow::Result<()> {
    process::raise_open_files_limit();
    kubernetai::cluster::watch::set_silence(args.watch_silence);
    let _pidfile = match &args.pidfile {
        Some(path) => Some(process::Pidfile::write(path)?),
        None => None,
    };
    let servers = load_servers(&args)?;
    let mut fingerprint = reload::fingerprint(&args.conf);
    // Taken before the module is read, so a change racing the startup is still seen as one.
    let module_stamp = match &args.module {
        module::source::Origin::File(path) => kubernetai::file_stamp::FileStamp::of(path),
        _ => None,
    };
    if matches!(args.module, module::source::Origin::Oci(_)) && args.loading.cache.is_none() {
        println!(
            "[WARNING] plugin/kubernetai: pulled modules are not kept without -module.cache DIR: a restart needs the registry"
        );
    }
    let fetched = args.fetching.fetch(&args.module, args.loading.cache.as_deref()).await;
    let fetched = fetched.with_context(|| format!("loading {}", args.module.describe()))?;
    let manifest = fetched.as_ref().and_then(|f| f.manifest.clone());
    if let Some(f) = &fetched {
        println!("[INFO] plugin/kubernetai: module {} sha256 {}", f.origin, f.digest);
    }
    let module = args
        .fetching
        .module(&args.module, fetched.as_ref(), &args.loading)
        .with_context(|| format!("loading {}", args.module.describe()))?;
    drop(fetched);
    initialise_series();
    let token = match &args.admin_token {
        Some(file) => Some(Arc::new(admin::Token::read(file).map_err(anyhow::Error::msg)?)),
        None => None,
    };
    let counters = Arc::new(Counters::default());
    let mut running = Running::build(&servers, &module, &counters).await?;
    // SIGHUP swaps the module, SIGUSR1 reloads the Corefile now (as CoreDNS does), SIGQUIT ends
    // at once without lameduck. Their handlers are in place before anyone can learn the server
    // is up: a signal before them would end the process (the default action of all three).
    use tokio::signal::unix::{SignalKind, signal};
    let hup = signal(SignalKind::hangup()).context("handling SIGHUP")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("handling SIGUSR1")?;
    let mut quit = signal(SignalKind::quit()).context("handling SIGQUIT")?;
    let mut listeners = Listeners::default();
    listeners.serve(&running).await?;
    let status = status::Status::default();
    status.configure(&running.status, running.readiness()).await?;
    listeners.probe_loops(&running);
    announce(&servers, args.quiet);

    let (admin_tx, admin_rx) = tokio::sync::mpsc::channel(4);
    if let Some(addr) = &args.admin {
        match tokio::net::TcpListener::bind(addr.as_str()).await {
            Ok(listener) => {
                let guarded = if token.is_some() { " (bearer token required)" } else { "" };
                println!("[INFO] admin endpoint{guarded} on http://{}", listener.local_addr()?);
                tokio::spawn(admin::serve(listener, token.clone(), admin_tx.clone()));
            }
            Err(e) => println!("[WARNING] admin endpoint {addr}: {e}; module swaps by SIGHUP and file change only"),
        }
    }
    let live = Arc::new(swap::LiveModule::new(module, running.plugins.clone()));
    let source = swap::Source {
        origin: args.module.clone(),
        fetching: args.fetching.clone(),
        loading: args.loading.clone(),
        stamp: module_stamp,
        manifest,
    };
    tokio::spawn(swap::run(source, hup, admin_rx, admin_tx, args.shadow.clone(), live.clone(), counters.clone()));

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let wait = running.reload.map_or(Duration::MAX, |(interval, jitter)| reload::next_wait(interval, jitter));
        let forced = tokio::select! {
            _ = &mut shutdown => break,
            _ = quit.recv() => {
                println!("[INFO] SIGQUIT: shutting down at once: {}", counters.summary());
                // exit() runs no destructors: the pidfile goes by hand.
                drop(_pidfile);
                std::process::exit(0);
            }
            _ = usr1.recv() => true,
            _ = tokio::time::sleep(wait.min(Duration::from_secs(86400))) => false,
        };
        let now = reload::fingerprint(&args.conf);
        if !forced && (running.reload.is_none() || now == fingerprint) {
            if running.reload.is_some() {
                debug::line("reload", || format!("{} unchanged", args.conf.display()));
            }
            continue;
        }
        fingerprint = now;
        if forced {
            println!("[INFO] SIGUSR1: reloading");
        }
        match reload_instance(&args, &live, &counters, &mut listeners, &status).await {
            Ok(next) => {
                running = next;
                println!("[INFO] Reloading complete");
            }
            Err(e) => {
                registry().inc("coredns_reload_failed_total", &[]);
                println!("[ERROR] Restart failed: {e:#}");
            }
        }
    }
    if !running.lameduck.is_zero() {
        // Still answering, so clients and load balancers move away before the sockets close;
        // no longer ready, so the Service stops sending new clients here.
        status.enter_lameduck();
        println!(
            "[INFO] plugin/health: Going into lameduck mode for {}",
            kubernetai::corefile::args::go_duration(running.lameduck)
        );
        tokio::time::sleep(running.lameduck).await;
    }
    println!("[INFO] shutting down: {}", counters.summary());
    Ok(())
}

/// Series of label values known in advance exist from the start, at 0: a dashboard's
/// `sum(…) == 0` then reads as zero, not as no data.
fn initialise_series() {
    for reason in module::provenance::Refusal::REASONS {
        registry().add("kubernetai_module_provenance_refused_total", &[reason], 0.0);
    }
    for kind in kubernetai::dns::compare::Difference::ALL {
        registry().add("kubernetai_shadow_differences_total", &[kind.name()], 0.0);
    }
    registry().add("kubernetai_shadow_queries_total", &[], 0.0);
}

fn load_servers(args: &cli::Args) -> anyhow::Result<Vec<config::BlockConfig>> {
    let blocks = corefile::load(&args.conf)?;
    Ok(config::servers(&blocks, args.port)?)
}

/// CoreDNS's startup banner: every zone and port served, then the version; none with `-quiet`.
fn announce(servers: &[config::BlockConfig], quiet: bool) {
    if quiet {
        return;
    }
    for srv in servers {
        for (zone, port) in &srv.keys {
            println!("{zone}:{port}");
        }
    }
    println!("kubernetai-{}", env!("CARGO_PKG_VERSION"));
}

/// Reads the changed Corefile and starts it beside the running one; only when everything has
/// started do the listeners switch to it. The running instance is left alone on any error.
async fn reload_instance(
    args: &cli::Args,
    live: &Arc<swap::LiveModule>,
    counters: &Arc<Counters>,
    listeners: &mut Listeners,
    status: &status::Status,
) -> anyhow::Result<Running> {
    let servers = load_servers(args)?;
    let module = live.module();
    let next = Running::build(&servers, &module, counters).await?;
    listeners.bind_missing(&next).await?;
    status.configure(&next.status, next.readiness()).await?;
    listeners.serve(&next).await?;
    listeners.probe_loops(&next);
    let (live, plugins) = (live.clone(), next.plugins.clone());
    tokio::task::spawn_blocking(move || live.install(plugins, &module)).await?;
    announce(&servers, args.quiet);
    Ok(next)
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
