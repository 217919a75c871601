//! The kubernetai plugin of one server block: the module instance that answers its queries, the
//! host's copy of what every stanza was fed (`cluster::store`, so a fresh instance can be brought
//! up to date), and the replacement of one instance by another — after a trap, or for a new
//! module.
//!
//! A block is served by one instance of the module, whatever the number of worker threads, so
//! each stanza's snapshot exists once; workers take turns calling it. Events go to the object
//! store and to the instance, in order, under one lock; replacements are built and swapped under
//! that same lock, so no event is lost between the replay and the swap. A query in flight on the
//! old instance finishes there before a swap completes.

use std::sync::{Arc, Mutex, RwLock};

use crate::cluster::objects::{Change, Key, Table};
use crate::cluster::store::Store;
use crate::module::shadow::{Session, ShadowInstance};
use crate::module::{Instance, Module, ModuleError, REPLAY_BATCH, wit};

/// The instance answering queries, and the module it is of.
struct Generation {
    serving: Mutex<ServingInstance>,
    module: Module,
}

/// An instance and whether a failed call left it unusable: the next caller repairs it first.
struct ServingInstance {
    instance: Instance,
    broken: bool,
}

impl ServingInstance {
    fn new(instance: Instance) -> Mutex<ServingInstance> {
        Mutex::new(ServingInstance { instance, broken: false })
    }
}

/// What every instance of a block's module is configured with, in the contract's terms.
#[derive(Clone, Debug)]
pub struct Configuration {
    pub server: wit::Server,
    pub stanzas: Vec<wit::Stanza>,
    /// The block's `k8s_external`, configured after the stanzas.
    pub external: Option<wit::ExternalZone>,
    /// The stanzas' clusterset memberships, configured after the stanzas (contract 0.5).
    pub clusterset: Vec<wit::ClustersetMember>,
}

/// The module of one server block and the objects fed to it: one instance, whatever the number of
/// cores, rebuilt from the objects it was fed when it fails.
pub struct BlockModule {
    config: Configuration,
    /// Every stanza's objects; held while events are applied and while the instance is replaced.
    stores: Mutex<Vec<Store>>,
    /// One instance however many worker threads serve: the snapshot exists once, and workers
    /// take turns (a call is a few microseconds; the kernel's UDP path costs more).
    current: RwLock<Generation>,
    /// Per stanza, when a remote cluster's stanza stops holding readiness back unsynced.
    remote_until: Mutex<Vec<Option<std::time::Instant>>>,
    /// A candidate module shadowing this one: fed the same events, offered a sample of queries.
    shadow: arc_swap::ArcSwapOption<ShadowInstance>,
    /// Whether `shadow` holds one: a relaxed load on the query path, instead of the swap's guard.
    shadowing: std::sync::atomic::AtomicBool,
}

impl BlockModule {
    /// A plugin whose instance is configured with `config` and holds no objects yet.
    pub fn new(module: Module, config: Configuration) -> Result<Self, ModuleError> {
        let stores: Vec<Store> = config.stanzas.iter().map(|_| Store::default()).collect();
        let stanza_count = stores.len();
        let instance = outside_runtime(|| build(&module, &config, &stores))?;
        Ok(BlockModule {
            config,
            stores: Mutex::new(stores),
            current: RwLock::new(Generation { serving: ServingInstance::new(instance), module }),
            remote_until: Mutex::new(vec![None; stanza_count]),
            shadow: arc_swap::ArcSwapOption::empty(),
            shadowing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Applies a stanza's changes: fed to the instance, then kept (moved, not copied) for replays.
    pub fn apply(&self, stanza: u32, now: u64, changes: Vec<Change>) -> Result<Vec<wit::Rejected>, ModuleError> {
        let (events, keys): (Vec<wit::Event>, Vec<Option<Key>>) = changes.into_iter().map(|c| (c.event, c.key)).unzip();
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let result = {
            let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
            let mut slot = generation.serving.lock().unwrap_or_else(|p| p.into_inner());
            if slot.broken {
                // Repaired below from the objects just recorded, these events included.
                Ok(Vec::new())
            } else {
                let result = outside_runtime(|| slot.instance.apply_batched(stanza, now, &events));
                if let Err(e) = &result {
                    println!("[ERROR] plugin/kubernetai: applying events: {e}; rebuilding the instance");
                    crate::observe::metrics::registry().inc("kubernetai_module_traps_total", &[e.call()]);
                    slot.broken = true;
                }
                result
            }
        };
        if let Some(side) = self.shadow.load().as_ref() {
            outside_runtime(|| side.apply(stanza, now, &events));
        }
        if let Some(objects) = stores.get_mut(stanza as usize) {
            events.into_iter().zip(keys).for_each(|(e, k)| objects.record(e, k));
        }
        self.repair_locked(&stores);
        result
    }

    /// Answers a query; a trap or a missed deadline is the caller's SERVFAIL, and the instance is
    /// rebuilt from the recorded objects before the next call.
    pub fn handle(&self, query: &wit::Query) -> Result<wit::Outcome, ModuleError> {
        let mut bytes = Vec::new();
        Ok(self.handle_into(query, &mut bytes)?.unwrap_or(wit::Outcome::Answer(bytes)))
    }

    /// As `handle`, an answer appended to `out` (None) instead of returned: the plain UDP path
    /// writes it straight into the buffer it sends from.
    pub fn handle_into(&self, query: &wit::Query, out: &mut Vec<u8>) -> Result<Option<wit::Outcome>, ModuleError> {
        let from = out.len();
        let outcome = self.with_instance(|instance| {
            out.truncate(from);
            instance.handle_into(query, out)
        });
        if self.shadowing.load(std::sync::atomic::Ordering::Relaxed)
            && let (Ok(running), Some(side)) = (&outcome, self.shadow.load().as_ref())
        {
            side.offer(query, || running.clone().unwrap_or_else(|| wit::Outcome::Answer(out[from..].to_vec())));
        }
        outcome
    }

    /// The messages of a zone transfer, or None when no stanza is authoritative for the zone.
    pub fn transfer(&self, query: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ModuleError> {
        self.with_instance(|instance| instance.transfer(query))
    }

    /// The autopath search path of the pod at `client`, for a query named `qname`.
    pub fn search_path(&self, qname: &str, client: &str) -> Result<Option<Vec<String>>, ModuleError> {
        self.with_instance(|instance| instance.search_path(qname, client))
    }

    /// The events that turn stanza `stanza`'s objects into `next` (a manifest file read again):
    /// the source diffs against the one copy the plugin keeps instead of a copy of its own.
    pub fn changes(&self, stanza: u32, next: Table) -> Vec<Change> {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.get(stanza as usize)
            .map(|objects| crate::cluster::objects::changes(objects.live(), next))
            .unwrap_or_default()
    }

    /// Whether every stanza has its first complete view of its cluster.
    pub fn synced(&self) -> bool {
        self.stores.lock().unwrap_or_else(|p| p.into_inner()).iter().all(Store::synced)
    }

    /// Marks stanza `stanza` as a remote cluster's (`endpoint` or `kubeconfig`): unsynced, it
    /// holds readiness back only until `until`.
    pub fn set_remote(&self, stanza: u32, until: std::time::Instant) {
        if let Some(slot) = self.remote_until.lock().unwrap_or_else(|p| p.into_inner()).get_mut(stanza as usize) {
            *slot = Some(until);
        }
    }

    /// The `ready` plugin's answer: every stanza has synced, except a remote cluster's whose
    /// startup_timeout has passed. Another cluster's outage must never keep this replica out of
    /// its own cluster's Service; that stanza's names answer SERVFAIL (or fall through) until it
    /// syncs.
    pub fn ready(&self) -> bool {
        let now = std::time::Instant::now();
        let remote = self.remote_until.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.iter().zip(remote).all(|(o, until)| o.synced() || until.is_some_and(|u| now >= u))
    }

    /// Runs `call` on the instance. A failed call marks it broken and rebuilds it; a caller that
    /// finds it broken waits for (or does) the rebuild, then calls once more.
    fn with_instance<T>(
        &self,
        mut call: impl FnMut(&mut Instance) -> Result<T, ModuleError>,
    ) -> Result<T, ModuleError> {
        for _ in 0..2 {
            {
                let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
                let mut slot = generation.serving.lock().unwrap_or_else(|p| p.into_inner());
                if !slot.broken {
                    let result = outside_runtime(|| call(&mut slot.instance));
                    if let Err(e) = &result {
                        println!("[ERROR] plugin/kubernetai: {e}; rebuilding the instance");
                        crate::observe::metrics::registry().inc("kubernetai_module_traps_total", &[e.call()]);
                        slot.broken = true;
                    } else {
                        return result;
                    }
                    // The instance is rebuilt below, outside its own lock (repairs take the
                    // objects' lock first, as `apply` and `swap` do).
                    drop(slot);
                    drop(generation);
                    self.repair_locked(&self.stores.lock().unwrap_or_else(|p| p.into_inner()));
                    return result;
                }
            }
            self.repair_locked(&self.stores.lock().unwrap_or_else(|p| p.into_inner()));
        }
        Err(ModuleError::Trap {
            call: "handle",
            reason: "the instance could not be rebuilt".into(),
            stderr: String::new(),
        })
    }

    /// Rebuilds the instance from `stores` if a failed call left it broken. Callers hold the
    /// objects' lock, so only one rebuild runs and no event is missed by it.
    fn repair_locked(&self, stores: &[Store]) {
        let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
        if !generation.serving.lock().unwrap_or_else(|p| p.into_inner()).broken {
            return;
        }
        // Queries wait for the lock of the broken slot only long enough to see it is broken.
        match outside_runtime(|| build(&generation.module, &self.config, stores)) {
            Ok(fresh) => {
                *generation.serving.lock().unwrap_or_else(|p| p.into_inner()) = ServingInstance { instance: fresh, broken: false }
            }
            Err(e) => println!("[ERROR] plugin/kubernetai: rebuilding the instance failed: {e}"),
        }
    }

    /// Replaces the module: a candidate is instantiated, configured, fed every object and
    /// checked with a query per stanza before it takes over. On any failure the running module
    /// keeps serving and the error says which step failed.
    pub fn swap(&self, module: Module) -> Result<(), ModuleError> {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let candidate = self.checked_candidate(&module, &stores)?;
        // A query in flight finishes on the old instance: the write lock waits for it.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Generation { serving: ServingInstance::new(candidate), module };
        Ok(())
    }

    /// Starts shadowing with `session`'s module: a candidate built and checked as a swap's is,
    /// brought up to date under the objects' lock, so it misses no later event.
    pub fn shadow(&self, session: &Arc<Session>) -> Result<(), ModuleError> {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let candidate = outside_runtime(|| self.checked_candidate(&session.module, &stores))?;
        self.shadow.store(Some(ShadowInstance::new(session.clone(), candidate)));
        self.shadowing.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Ends shadowing here; the candidate's instance is dropped.
    pub fn unshadow(&self) {
        self.shadowing.store(false, std::sync::atomic::Ordering::Relaxed);
        self.shadow.store(None);
    }

    /// The shadow's instance, fed the same events as the running one, takes over: the same
    /// self-check as a swap, and no replay (it is already up to date).
    pub fn promote(&self) -> Result<(), ModuleError> {
        let _stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let refused = |why: &str| ModuleError::SelfCheck(why.to_string());
        self.shadowing.store(false, std::sync::atomic::Ordering::Relaxed);
        let side = self.shadow.swap(None).ok_or_else(|| refused("no module is shadowing"))?;
        let mut candidate = side.take().ok_or_else(|| refused("the shadowing module failed"))?;
        outside_runtime(|| self.self_checks(&mut candidate))?;
        let module = side.session.module.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Generation { serving: ServingInstance::new(candidate), module };
        Ok(())
    }

    /// A fresh instance of `module` fed `stores`, that passed the self-check of every stanza.
    fn checked_candidate(&self, module: &Module, stores: &[Store]) -> Result<Instance, ModuleError> {
        let mut candidate = build(module, &self.config, stores)?;
        self.self_checks(&mut candidate)?;
        Ok(candidate)
    }

    fn self_checks(&self, candidate: &mut Instance) -> Result<(), ModuleError> {
        for stanza in &self.config.stanzas {
            let Some(zone) = stanza.zones.iter().find(|z| !kubernetai_guest::resolve::is_reverse(z)) else {
                continue;
            };
            self_check(candidate, zone)?;
        }
        Ok(())
    }
}

thread_local! {
    static OFF_RUNTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as one of the server's own (a UDP worker), not tokio's: module calls on it
/// run as they are.
pub fn off_runtime_thread() {
    OFF_RUNTIME.with(|w| w.set(true));
}

/// Runs a module call where wasmtime-wasi may block on tokio: a module writing to stderr (a panic
/// message, say) makes it call `Handle::block_on`, which tokio forbids on its worker threads and
/// which would otherwise take the serving task down with it.
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    // The UDP worker threads are not the runtime's: there the call may simply run.
    if OFF_RUNTIME.with(std::cell::Cell::get) {
        return f();
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A fresh instance of `module`, configured and fed `stores`.
fn build(module: &Module, config: &Configuration, stores: &[Store]) -> Result<Instance, ModuleError> {
    let mut instance = module.instantiate()?;
    instance.configure(&config.server, &config.stanzas)?;
    if let Some(external) = &config.external {
        instance.configure_external(external)?;
    }
    if !config.clusterset.is_empty() {
        instance.configure_clusterset(&config.clusterset)?;
    }
    for (i, objects) in stores.iter().enumerate() {
        objects.replay(REPLAY_BATCH, |batch| instance.apply(i as u32, crate::now(), batch).map(drop))?;
    }
    Ok(instance)
}

/// The candidate must answer `dns-version.<zone>` TXT with the schema version, without trapping.
fn self_check(candidate: &mut Instance, zone: &str) -> Result<(), ModuleError> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let fail = |why: String| ModuleError::SelfCheck(format!("dns-version.{zone} TXT: {why}"));
    let name = Name::from_ascii(format!("dns-version.{zone}")).map_err(|e| fail(e.to_string()))?;
    let mut m = Message::new(0x5e1f, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name, RecordType::TXT));
    let packet = m.to_vec().map_err(|e| fail(e.to_string()))?;
    let query = wit::Query {
        packet,
        client: "127.0.0.1".into(),
        client_port: 0,
        transport: wit::Transport::Udp,
        max_size: 512,
    };
    match candidate.handle(&query)? {
        wit::Outcome::Answer(bytes) => {
            let answer = Message::from_vec(&bytes).map_err(|e| fail(format!("unparseable answer: {e}")))?;
            if answer.metadata.id != 0x5e1f || answer.answers.is_empty() {
                return Err(fail(format!(
                    "unexpected answer {:?} with {} records",
                    answer.metadata.response_code,
                    answer.answers.len()
                )));
            }
            Ok(())
        }
        other => Err(fail(format!("expected an answer, got {other:?}"))),
    }
}

impl crate::observe::status::Readiness for BlockModule {
    fn ready(&self) -> bool {
        BlockModule::ready(self)
    }
}

impl crate::cluster::feed::Sink for BlockModule {
    fn apply(&self, stanza: u32, now: u64, events: Vec<Change>) -> anyhow::Result<Vec<wit::Rejected>> {
        Ok(BlockModule::apply(self, stanza, now, events)?)
    }

    fn changes(&self, stanza: u32, next: Table) -> Vec<Change> {
        BlockModule::changes(self, stanza, next)
    }

    fn set_remote(&self, stanza: u32, until: std::time::Instant) {
        BlockModule::set_remote(self, stanza, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin() -> BlockModule {
        let blocks = crate::corefile::parse("cluster.local {\n kubernetai\n}\n", std::path::Path::new("(test)"))
            .unwrap_or_else(|e| panic!("{e}"));
        let servers = crate::serve::config::servers(&blocks, 53).unwrap_or_else(|e| panic!("{e}"));
        let stanzas = servers[0].stanzas.iter().map(|s| s.guest.clone()).collect();
        let config = Configuration { server: wit::Server { local_ips: vec![] }, stanzas, external: None, clusterset: vec![] };
        BlockModule::new(crate::module::Module::native(), config).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_in_cluster_stanza_gates_readiness_until_synced_a_remote_one_until_its_timeout() {
        let p = plugin();
        assert!(!p.ready(), "unsynced, in-cluster");
        p.set_remote(0, std::time::Instant::now() + std::time::Duration::from_secs(60));
        assert!(!p.ready(), "unsynced, remote, within its startup_timeout");
        p.set_remote(0, std::time::Instant::now());
        assert!(p.ready() && !p.synced(), "unsynced, remote, past its startup_timeout");

        let p = plugin();
        p.apply(0, 1, vec![Change::marker(wit::Event::Synced(true))]).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.ready() && p.synced());
    }
}
