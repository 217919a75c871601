//! Module swaps: what triggers one (SIGHUP, a change of the `-module` file, an admin request)
//! and carrying it out for every server block. The candidate is compiled and checked off the
//! query path (see `FedModule::swap`); a refused candidate leaves the running module serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::module::fed::FedModule;
use crate::module::{self, Module, ModuleError};
use crate::observe::counters::Counters;

/// How often the module file is checked for a change (CoreDNS's reload plugin polls too).
const MODULE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// An admin request for a swap, answered with the outcome.
pub type Request = oneshot::Sender<Result<String, String>>;

/// Where modules come from.
pub struct Source {
    /// The `-module` file, or None for the built-in module.
    pub path: Option<PathBuf>,
    /// The file's modification time when it was last read.
    pub stamp: Option<SystemTime>,
    pub loading: module::Loading,
}

/// When a file last changed.
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The module in use and the plugins running it, both replaced as the server goes on (swaps
/// replace the module, reloads the plugins).
pub struct Live {
    module: Mutex<Module>,
    plugins: Mutex<Vec<Arc<FedModule>>>,
}

impl Live {
    pub fn new(module: Module, plugins: Vec<Arc<FedModule>>) -> Self {
        Live { module: Mutex::new(module), plugins: Mutex::new(plugins) }
    }

    pub fn module(&self) -> Module {
        self.module.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_plugins(&self, plugins: Vec<Arc<FedModule>>) {
        *self.plugins.lock().unwrap_or_else(|p| p.into_inner()) = plugins;
    }
}

/// Swaps on every trigger, for ever.
pub async fn run(
    mut source: Source,
    mut hup: tokio::signal::unix::Signal,
    mut admin: mpsc::Receiver<Request>,
    live: Arc<Live>,
    counters: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(MODULE_POLL);
    loop {
        let reply = tokio::select! {
            _ = hup.recv() => None,
            Some(reply) = admin.recv() => Some(reply),
            _ = tick.tick() => {
                if source.path.is_none() || source.path.as_deref().and_then(modified) == source.stamp {
                    continue;
                }
                None
            }
        };
        source.stamp = source.path.as_deref().and_then(modified);
        let (path, loading, live) = (source.path.clone(), source.loading.clone(), live.clone());
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || -> Result<usize, ModuleError> {
            let module = module::from_source(path.as_deref(), &loading)?;
            // Held through the swap, so a reload builds on the module every plugin runs.
            let mut current = live.module.lock().unwrap_or_else(|p| p.into_inner());
            let plugins = live.plugins.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for plugin in &plugins {
                plugin.swap(module.clone())?;
            }
            *current = module;
            Ok(plugins.len())
        })
        .await;
        let result = match outcome {
            Ok(Ok(n)) => {
                crate::observe::process::trim_heap();
                counters.swaps.fetch_add(1, Ordering::Relaxed);
                crate::observe::metrics::registry().inc("kubernetai_module_swaps_total", &[]);
                let text = format!(
                    "module swapped in {n} server block(s) in {:.0} ms",
                    started.elapsed().as_secs_f64() * 1000.0
                );
                println!("[INFO] plugin/kubernetai: {text}");
                Ok(text)
            }
            Ok(Err(e)) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                crate::observe::metrics::registry().inc("kubernetai_module_swaps_refused_total", &[]);
                let text = format!("module refused, the running one keeps serving: {e}");
                println!("[ERROR] plugin/kubernetai: {text}");
                Err(text)
            }
            Err(e) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                println!("[ERROR] plugin/kubernetai: module swap task failed: {e}");
                Err(format!("module swap task failed: {e}"))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}
