//! Module swaps: what triggers one (SIGHUP, a change of the `-module` file, a tag's move, an
//! admin request) and carrying it out for every server block. The candidate is fetched, its
//! provenance checked, compiled and checked off the query path (see `BlockModule::swap`); a
//! refused candidate leaves the running module serving.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::file_stamp::FileStamp;
use crate::module::block::BlockModule;
use crate::module::shadow::{self, Session};
use crate::module::source::{Fetched, Fetching, Origin};
use crate::module::{self, Module, ModuleError};
use crate::observe::counters::Counters;

/// What the admin endpoint asks of the module task.
pub enum Command {
    /// Swap in what `-module` names now (as SIGHUP).
    Swap,
    /// Start shadowing a candidate.
    Shadow(Candidate),
    /// End shadowing.
    Unshadow,
    /// Make the shadowing candidate the running module.
    Promote,
    /// The shadow's counts and last differences, as JSON.
    Report,
}

/// Where a shadow candidate comes from.
pub enum Candidate {
    /// What `-module` names (the built-in module when there is no `-module`).
    Source,
    /// Bytes posted to the admin endpoint, with the signature that came with them.
    Posted(Fetched),
}

/// An admin request, answered with the outcome (Err: refused, with why).
pub type Request = (Command, oneshot::Sender<Result<String, String>>);

/// Where modules come from, and what was seen there last.
pub struct Source {
    pub origin: Origin,
    pub fetching: Fetching,
    pub loading: module::Loading,
    /// A file source as it was when it was last read.
    pub stamp: Option<FileStamp>,
    /// The manifest a tag pointed at when it was last pulled (swapped in or refused: a refused
    /// one is not pulled again until the tag moves, or SIGHUP asks).
    pub manifest: Option<String>,
}

impl Source {
    /// Whether the source changed since it was last read (a file's stamp, a tag's manifest).
    async fn changed(&self) -> bool {
        match &self.origin {
            Origin::File(path) => FileStamp::of(path) != self.stamp,
            Origin::Oci(_) => match self.fetching.moved(&self.origin, self.manifest.as_deref()).await {
                Ok(moved) => moved,
                Err(e) => {
                    println!("[WARNING] plugin/kubernetai: {e}; the running module keeps serving");
                    false
                }
            },
            Origin::Builtin | Origin::Native => false,
        }
    }
}

/// The module in use and the plugins running it, both replaced as the server goes on (swaps
/// replace the module, reloads the plugins).
pub struct LiveModule {
    module: Mutex<Module>,
    plugins: Mutex<Vec<Arc<BlockModule>>>,
    /// The shadow session, kept after it ends so its report can still be read.
    shadow: Mutex<Option<Arc<Session>>>,
}

impl LiveModule {
    pub fn new(module: Module, plugins: Vec<Arc<BlockModule>>) -> Self {
        LiveModule { module: Mutex::new(module), plugins: Mutex::new(plugins), shadow: Mutex::new(None) }
    }

    pub fn module(&self) -> Module {
        self.module.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs the plugins of a reloaded Corefile, built on `built_on`. A swap or a promotion
    /// that came while the reload waited for its stanzas reached only the plugins serving then:
    /// under the lock a swap holds, the new plugins are put on the module that serves now, so
    /// the configuration that ends up serving runs it. A shadow ends with the plugins it was fed
    /// through. Blocking (a swap replays the snapshot).
    pub fn install(&self, plugins: Vec<Arc<BlockModule>>, built_on: &Module) {
        let current = self.module.lock().unwrap_or_else(|p| p.into_inner());
        if !current.same(built_on) {
            for plugin in &plugins {
                if let Err(e) = plugin.swap(current.clone()) {
                    println!("[ERROR] plugin/kubernetai: the module swapped during the reload: {e}");
                }
            }
            println!(
                "[INFO] plugin/kubernetai: the module swapped during the reload serves the reloaded configuration in {} server block(s)",
                plugins.len()
            );
        }
        *self.plugins.lock().unwrap_or_else(|p| p.into_inner()) = plugins;
        if let Some(session) = self.shadow.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && session.end()
        {
            println!("[INFO] plugin/kubernetai: shadow: the Corefile reload ended it: {}", session.summary());
        }
    }

    fn plugins(&self) -> Vec<Arc<BlockModule>> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn session(&self) -> Option<Arc<Session>> {
        self.shadow.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Carries out swaps and shadow requests, one at a time, for ever. `requests` is the sending
/// side of `admin`: automatic promotion asks through it as an operator would.
pub async fn run(
    mut source: Source,
    mut hup: tokio::signal::unix::Signal,
    mut admin: mpsc::Receiver<Request>,
    requests: mpsc::Sender<Request>,
    shadowing: shadow::Settings,
    live: Arc<LiveModule>,
    counters: Arc<Counters>,
) {
    let every = source.fetching.poll_every(&source.origin);
    // A source that never changes is never polled (a day is as good as never for `interval`).
    let mut tick = tokio::time::interval(every.unwrap_or(std::time::Duration::from_secs(86400)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let (command, reply) = tokio::select! {
            _ = hup.recv() => (Command::Swap, None),
            Some((command, reply)) = admin.recv() => (command, Some(reply)),
            _ = tick.tick() => {
                if every.is_none() || !source.changed().await {
                    continue;
                }
                (Command::Swap, None)
            }
        };
        let result = match command {
            Command::Swap => swap(&mut source, &live, &counters).await,
            Command::Shadow(candidate) => start_shadow(candidate, &source, &shadowing, &requests, &live).await,
            Command::Unshadow => match live.session().filter(|s| s.end()) {
                Some(session) => {
                    live.plugins().iter().for_each(|p| p.unshadow());
                    let text = format!("shadow of {} ended: {}", session.origin, session.summary());
                    println!("[INFO] plugin/kubernetai: {text}");
                    Ok(text)
                }
                None => Err("no module is shadowing".to_string()),
            },
            Command::Promote => promote(&live, &counters).await,
            Command::Report => {
                live.session().map(|s| s.report().to_string()).ok_or_else(|| "no module has shadowed".to_string())
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

/// Swaps in what `source` names, in every server block.
async fn swap(source: &mut Source, live: &Arc<LiveModule>, counters: &Counters) -> Result<String, String> {
    let started = std::time::Instant::now();
    if let Origin::File(path) = &source.origin {
        source.stamp = FileStamp::of(path);
    }
    let fetched = match source.fetching.fetch(&source.origin, source.loading.cache.as_deref()).await {
        Ok(fetched) => fetched,
        Err(e) => return swapped(Ok(Err(e)), started, counters, "module swapped"),
    };
    if let Some(f) = &fetched {
        println!("[INFO] plugin/kubernetai: candidate {} sha256 {}", f.origin, f.digest);
        // Tried, swapped in or refused: a refused manifest is not pulled again until the tag moves.
        if let Some(manifest) = &f.manifest {
            source.manifest = Some(manifest.clone());
        }
    }
    let (fetching, origin, loading, live) =
        (source.fetching.clone(), source.origin.clone(), source.loading.clone(), live.clone());
    let outcome = tokio::task::spawn_blocking(move || -> Result<usize, ModuleError> {
        let module = fetching.module(&origin, fetched.as_ref(), &loading)?;
        // Held through the swap, so a reload builds on the module every plugin runs.
        let mut current = live.module.lock().unwrap_or_else(|p| p.into_inner());
        let plugins = live.plugins();
        for plugin in &plugins {
            plugin.swap(module.clone())?;
        }
        *current = module;
        Ok(plugins.len())
    })
    .await;
    swapped(outcome, started, counters, "module swapped")
}

/// Logs and counts a swap's outcome (a promotion is a swap too).
fn swapped(
    outcome: Result<Result<usize, ModuleError>, tokio::task::JoinError>,
    started: std::time::Instant,
    counters: &Counters,
    what: &str,
) -> Result<String, String> {
    match outcome {
        Ok(Ok(n)) => {
            crate::observe::process::trim_heap();
            counters.swaps.fetch_add(1, Ordering::Relaxed);
            crate::observe::metrics::registry().inc("kubernetai_module_swaps_total", &[]);
            let text = format!("{what} in {n} server block(s) in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
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
    }
}

/// Loads `candidate` and starts shadowing it in every server block, replacing any shadow.
async fn start_shadow(
    candidate: Candidate,
    source: &Source,
    settings: &shadow::Settings,
    requests: &mpsc::Sender<Request>,
    live: &Arc<LiveModule>,
) -> Result<String, String> {
    let (loading, live, settings) = (source.loading.clone(), live.clone(), settings.clone());
    let (module, origin) = match candidate {
        Candidate::Source => (source.fetching.load(&source.origin, &loading).await, source.origin.describe()),
        Candidate::Posted(fetched) => {
            let (fetching, loading) = (source.fetching.clone(), loading.clone());
            let origin = format!("{} (sha256 {})", fetched.origin, fetched.digest);
            let compiled = tokio::task::spawn_blocking(move || fetching.compile(&fetched, &loading)).await;
            (compiled.unwrap_or_else(|e| Err(ModuleError::Fetch(format!("the compile task failed: {e}")))), origin)
        }
    };
    let requests = requests.clone();
    // Asked once clean queries reach `promote_after`; false when the request could not be queued
    // (then the next clean query asks again).
    let promote: Box<dyn Fn() -> bool + Send + Sync> = Box::new(move || {
        let (reply, _) = oneshot::channel();
        requests.try_send((Command::Promote, reply)).is_ok()
    });
    let outcome = tokio::task::spawn_blocking(move || -> Result<String, ModuleError> {
        let session = Session::new(module?, origin, settings, Some(promote))?;
        let plugins = live.plugins();
        if let Some(old) = live.session().filter(|s| s.end()) {
            plugins.iter().for_each(|p| p.unshadow());
            println!("[INFO] plugin/kubernetai: shadow of {} replaced: {}", old.origin, old.summary());
        }
        for plugin in &plugins {
            if let Err(e) = plugin.shadow(&session) {
                plugins.iter().for_each(|p| p.unshadow());
                session.end();
                return Err(e);
            }
        }
        *live.shadow.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
        let promotion = session.settings.promote_after.map_or_else(
            || "promotion by POST /module/promote".to_string(),
            |n| format!("promoted after {n} queries without a difference"),
        );
        Ok(format!(
            "shadowing {} in {} server block(s), {}% of queries, {promotion}",
            session.origin,
            plugins.len(),
            session.settings.rate * 100.0
        ))
    })
    .await;
    let result = match outcome {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("shadow refused, nothing changed: {e}")),
        Err(e) => Err(format!("shadow task failed: {e}")),
    };
    match &result {
        Ok(text) => println!("[INFO] plugin/kubernetai: {text}"),
        Err(text) => println!("[ERROR] plugin/kubernetai: {text}"),
    }
    result
}

/// The shadowing candidate becomes the running module in every server block. A block that
/// refuses it puts the blocks already promoted back on the running module.
async fn promote(live: &Arc<LiveModule>, counters: &Counters) -> Result<String, String> {
    let Some(session) = live.session().filter(|s| s.active()) else {
        return Err("no module is shadowing".to_string());
    };
    let started = std::time::Instant::now();
    let live = live.clone();
    let summary = session.summary();
    let outcome = tokio::task::spawn_blocking(move || -> Result<usize, ModuleError> {
        let mut current = live.module.lock().unwrap_or_else(|p| p.into_inner());
        let plugins = live.plugins();
        for (i, plugin) in plugins.iter().enumerate() {
            if let Err(e) = plugin.promote() {
                session.end();
                plugins.iter().for_each(|p| p.unshadow());
                for done in &plugins[..i] {
                    if let Err(back) = done.swap(current.clone()) {
                        println!("[ERROR] plugin/kubernetai: putting the running module back: {back}");
                    }
                }
                return Err(e);
            }
        }
        *current = session.module.clone();
        session.promoted();
        Ok(plugins.len())
    })
    .await;
    swapped(outcome, started, counters, &format!("shadow promoted ({summary})"))
}
