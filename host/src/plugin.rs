//! The kubernetai plugin of one server block: the module instance that answers its queries, the
//! objects every stanza was fed (so a fresh instance can be brought up to date), and the
//! replacement of one instance by another — after a trap, or for a new module.
//!
//! A block is served by a pool of instances of one module, one per worker thread, each holding
//! the whole snapshot. Events go to the object store and to every instance, in order, under one
//! lock; replacements are built and swapped under that same lock, so no event is lost between
//! the replay and the swap. A query takes one idle instance; queries in flight on the old
//! instances finish there before a swap completes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use serde::Deserialize;

use crate::module::{Instance, Module, ModuleError, wit};
use crate::objects::{Table, rank, relist_events};

/// The objects of one stanza as the host last saw them, in the contract's terms.
#[derive(Default)]
struct Objects {
    live: Table,
    /// Relists in progress, by kind rank.
    relist: BTreeMap<u8, Table>,
    synced: bool,
}

fn key(kind: wit::Kind, json: &str) -> Option<(u8, String, String)> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Meta {
        namespace: String,
        name: String,
    }
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        metadata: Meta,
    }
    let m = serde_json::from_str::<Only>(json).ok()?.metadata;
    Some((rank(kind), m.namespace, m.name))
}

impl Objects {
    fn record(&mut self, event: &wit::Event) {
        match event {
            wit::Event::Apply(o) => {
                if let Some(k) = key(o.kind, &o.json) {
                    let target = self.relist.get_mut(&k.0).unwrap_or(&mut self.live);
                    target.insert(k, (o.kind, o.json.clone()));
                }
            }
            wit::Event::Delete(o) => {
                if let Some(k) = key(o.kind, &o.json) {
                    let target = self.relist.get_mut(&k.0).unwrap_or(&mut self.live);
                    target.remove(&k);
                }
            }
            wit::Event::RelistStart(kind) => {
                self.relist.insert(rank(*kind), BTreeMap::new());
            }
            wit::Event::RelistDone(kind) => {
                if let Some(fresh) = self.relist.remove(&rank(*kind)) {
                    self.live.retain(|k, _| k.0 != rank(*kind));
                    self.live.extend(fresh);
                }
            }
            wit::Event::Synced(s) => self.synced = *s,
        }
    }

    /// The events that bring an empty instance to this state: one relist per kind, then sync.
    fn replay(&self) -> Vec<wit::Event> {
        relist_events(&self.live, self.synced)
    }
}

/// Objects are replayed in batches: linear memory never shrinks, so one huge call would leave
/// the instance as large as the whole snapshot in transit.
const REPLAY_BATCH: usize = 1000;

/// The instances answering queries, all of one module.
struct Generation {
    instances: Vec<Mutex<Instance>>,
    module: Module,
}

/// One server block's plugin.
pub struct Plugin {
    server: wit::Server,
    stanzas: Vec<wit::Stanza>,
    /// Every stanza's objects; held while events are applied and while instances are replaced.
    fed: Mutex<Vec<Objects>>,
    /// One instance per worker thread, each holding the whole snapshot, so queries on different
    /// threads do not wait for each other.
    current: RwLock<Generation>,
    /// Which instance the next query tries first.
    next: AtomicUsize,
}

/// How many instances serve a block: one per worker thread of the runtime (one per core).
fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Plugin {
    /// A plugin whose instances are configured with `stanzas` and hold no objects yet.
    pub fn new(module: Module, server: wit::Server, stanzas: Vec<wit::Stanza>) -> Result<Self, ModuleError> {
        let fed: Vec<Objects> = stanzas.iter().map(|_| Objects::default()).collect();
        let instances = (0..pool_size())
            .map(|_| outside_runtime(|| build(&module, &server, &stanzas, &fed)).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Plugin {
            server,
            stanzas,
            fed: Mutex::new(fed),
            current: RwLock::new(Generation { instances, module }),
            next: AtomicUsize::new(0),
        })
    }

    /// Applies a stanza's events: recorded, then fed to every instance in the same order.
    pub fn apply(&self, stanza: u32, now: u64, events: &[wit::Event]) -> Result<Vec<wit::Rejected>, ModuleError> {
        let mut fed = self.fed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(objects) = fed.get_mut(stanza as usize) {
            events.iter().for_each(|e| objects.record(e));
        }
        let mut first: Option<Result<Vec<wit::Rejected>, ModuleError>> = None;
        let mut broken = Vec::new();
        {
            let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
            for (i, instance) in generation.instances.iter().enumerate() {
                let result = outside_runtime(|| {
                    apply_batched(&mut instance.lock().unwrap_or_else(|p| p.into_inner()), stanza, now, events)
                });
                if let Err(e) = &result {
                    eprintln!("[ERROR] plugin/kubernetai: applying events: {e}; rebuilding instance {i}");
                    crate::metrics::registry().inc("kubernetai_module_traps_total", &[e.call()]);
                    broken.push(i);
                }
                first.get_or_insert(result);
            }
        }
        for i in broken {
            self.rebuild_locked(&fed, i);
        }
        first.unwrap_or(Ok(Vec::new()))
    }

    /// Answers a query on the first idle instance; a trap or a missed deadline is the caller's
    /// SERVFAIL, and that instance is rebuilt from the recorded objects.
    pub fn handle(&self, query: &wit::Query) -> Result<wit::Outcome, ModuleError> {
        self.with_instance(|instance| instance.handle(query))
    }

    /// The messages of a zone transfer, or None when no stanza is authoritative for the zone.
    pub fn transfer(&self, query: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ModuleError> {
        self.with_instance(|instance| instance.transfer(query))
    }

    /// The autopath search path of the pod at `client`, for a query named `qname`.
    pub fn search_path(&self, qname: &str, client: &str) -> Result<Option<Vec<String>>, ModuleError> {
        self.with_instance(|instance| instance.search_path(qname, client))
    }

    /// How many instances serve this block.
    pub fn pool_size(&self) -> usize {
        self.current.read().unwrap_or_else(|p| p.into_inner()).instances.len()
    }

    /// Whether every stanza has its first complete view of its cluster (the `ready` plugin).
    pub fn synced(&self) -> bool {
        self.fed.lock().unwrap_or_else(|p| p.into_inner()).iter().all(|o| o.synced)
    }

    /// Runs `call` on the first idle instance, rebuilding the instance if the call fails.
    fn with_instance<T>(&self, call: impl FnOnce(&mut Instance) -> Result<T, ModuleError>) -> Result<T, ModuleError> {
        let (result, used) = {
            let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
            let n = generation.instances.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
            let idle =
                (0..n).map(|k| (start + k) % n).find_map(|i| generation.instances[i].try_lock().ok().map(|g| (i, g)));
            let (used, mut instance) = match idle {
                Some(found) => found,
                None => (start, generation.instances[start].lock().unwrap_or_else(|p| p.into_inner())),
            };
            (outside_runtime(|| call(&mut instance)), used)
        };
        if let Err(e) = &result {
            eprintln!("[ERROR] plugin/kubernetai: {e}; rebuilding instance {used}");
            crate::metrics::registry().inc("kubernetai_module_traps_total", &[e.call()]);
            let fed = self.fed.lock().unwrap_or_else(|p| p.into_inner());
            self.rebuild_locked(&fed, used);
        }
        result
    }

    /// Replaces instance `i` with a fresh one of the current module, fed `fed`.
    fn rebuild_locked(&self, fed: &[Objects], i: usize) {
        let module = self.current.read().unwrap_or_else(|p| p.into_inner()).module.clone();
        match outside_runtime(|| build(&module, &self.server, &self.stanzas, fed)) {
            Ok(fresh) => {
                let generation = self.current.read().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = generation.instances.get(i) {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
            }
            Err(e) => eprintln!("[ERROR] plugin/kubernetai: rebuilding instance {i} failed: {e}"),
        }
    }

    /// Replaces the module: candidates are instantiated, configured, fed every object and
    /// checked with a query per stanza before they take over together. On any failure the
    /// running module keeps serving and the error says which step failed.
    pub fn swap(&self, module: Module) -> Result<(), ModuleError> {
        let fed = self.fed.lock().unwrap_or_else(|p| p.into_inner());
        let mut instances = Vec::new();
        for _ in 0..pool_size() {
            let mut candidate = build(&module, &self.server, &self.stanzas, &fed)?;
            for stanza in &self.stanzas {
                let Some(zone) = stanza.zones.iter().find(|z| !kubernetai_guest::resolve::is_reverse(z)) else {
                    continue;
                };
                self_check(&mut candidate, zone)?;
            }
            instances.push(Mutex::new(candidate));
        }
        // Queries in flight finish on the old instances: the write lock waits for them.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Generation { instances, module };
        Ok(())
    }
}

/// Runs a module call where wasmtime-wasi may block on tokio: a module writing to stderr (a panic
/// message, say) makes it call `Handle::block_on`, which tokio forbids on its worker threads and
/// which would otherwise take the serving task down with it.
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    // The UDP worker threads are not the runtime's: there the call may simply run.
    if crate::server::on_udp_worker() {
        return f();
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Applies `events` in batches: linear memory never shrinks, so a whole cluster's worth in one
/// call would leave the instance as large as all of its JSON at once.
fn apply_batched(
    instance: &mut Instance,
    stanza: u32,
    now: u64,
    events: &[wit::Event],
) -> Result<Vec<wit::Rejected>, ModuleError> {
    let mut rejected = Vec::new();
    for batch in events.chunks(REPLAY_BATCH) {
        rejected.extend(instance.apply(stanza, now, batch)?);
    }
    Ok(rejected)
}

/// A fresh instance of `module`, configured and fed `fed`.
fn build(
    module: &Module,
    server: &wit::Server,
    stanzas: &[wit::Stanza],
    fed: &[Objects],
) -> Result<Instance, ModuleError> {
    let mut instance = module.instantiate()?;
    instance.configure(server, stanzas)?;
    for (i, objects) in fed.iter().enumerate() {
        apply_batched(&mut instance, i as u32, crate::now(), &objects.replay())?;
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
