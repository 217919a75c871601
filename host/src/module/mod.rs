//! The kubernetai module under wasmtime: compiling it once (or loading it compiled,
//! [`compiled`]), checking what it imports, and running instances of it in a sandbox with no
//! capabilities; or the same library linked in ([`native`]). [`source`] fetches candidates
//! (files, [`oci`] registries) and [`provenance`] checks them; [`fed`] keeps a block's one
//! instance and the objects fed to it, [`swap`] replaces the module while it serves, [`admin`]
//! is the endpoint that asks for it.
//!
//! Only binary components are compiled: the text format is refused before any parser sees the
//! bytes, and no error quotes a candidate's bytes back (a refusal names the step and why).
//!
//! A module may import only the contract's `host.answer` and the WASI interfaces Rust's standard
//! library links for wasip2 (`wasi:cli` stdio/environment/exit, `wasi:io`, `wasi:random`); anything else — files,
//! sockets, clocks — is refused at load time. The WASI context handed to it is empty: no
//! environment, arguments or preopened directories, and its stderr goes to memory so a panic
//! message can be logged. Every call runs under an epoch deadline, and memory under a limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable, WasmList};
use wasmtime::{Engine, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub mod admin;
pub mod bounded;
pub mod compiled;
mod engine_settings;
pub mod block;
pub mod native;
pub mod oci;
pub mod provenance;
pub mod shadow;
pub mod source;
pub mod swap;

use native::Native;

pub use crate::contract::wit;
use crate::contract::{Kubernetai, KubernetaiPre};

/// The module built with this host, embedded at compile time (see build.rs).
pub static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetai_guest.wasm"));

/// Interfaces a module may import (prefixes of their names).
/// (`kubernetai:dns/types` carries only types: components list such interfaces as imports.)
const ALLOWED_IMPORTS: &[&str] = &[
    "kubernetai:dns/types@",
    "kubernetai:dns/host@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/",
    "wasi:random/",
];
/// How often the epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// A query has this many ticks (~100 ms) before it is interrupted: a thousand times what a hit costs.
const QUERY_DEADLINE_TICKS: u64 = 10;
/// Configuring and applying events may take longer: a full relist of a large cluster.
const APPLY_DEADLINE_TICKS: u64 = 3000;
/// Objects reach an instance in batches of this many: linear memory never shrinks, so a whole
/// cluster in one call would leave the instance as large as all of its JSON at once.
pub const REPLAY_BATCH: usize = 1000;
/// Linear memory one instance may grow to.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 << 20;
/// How much of a module's stderr is kept for the log.
const STDERR_CAPACITY: usize = 64 << 10;

/// A module that could not be used, naming the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("the candidate is not a binary WebAssembly component ({0}); only binary components are accepted")]
    NotBinary(&'static str),
    /// wasmtime's reason in this host's words ([`own_words`]): nothing of the bytes is quoted.
    #[error("compiling the module: {0}")]
    Compile(String),
    #[error("the module imports {0}, which the sandbox does not grant")]
    Import(String),
    #[error("{origin} (sha256 {digest}) refused: {refusal}")]
    Provenance { origin: String, digest: String, refusal: provenance::Refusal },
    #[error("{0}")]
    Fetch(String),
    #[error("instantiating the module: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("the module speaks contract {found}, this host speaks {expected}")]
    Contract { found: String, expected: String },
    #[error("the module refused its configuration: {0}")]
    Configure(String),
    #[error("the module failed its self-check: {0}")]
    SelfCheck(String),
    #[error("reading the module {file}: {source}")]
    Read { file: String, source: std::io::Error },
    /// One line for the log: the trap (or the first line of the error) and the module's stderr.
    #[error("the module trapped in {call}: {reason}{stderr}")]
    Trap { call: &'static str, reason: String, stderr: String },
}

impl ModuleError {
    /// The contract call that failed, or the step before any call: the `call` label of the traps
    /// metric.
    pub fn call(&self) -> &'static str {
        match self {
            ModuleError::Trap { call, .. } => call,
            ModuleError::Configure(_) => "configure",
            _ => "instantiate",
        }
    }
}

/// What a store holds: the empty WASI context, the limits, and the response `host.answer` gave.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: MemoryOutputPipe,
    /// Its capacity stays from call to call, so a hot answer costs no allocation.
    answer: Vec<u8>,
}

/// The contract's `host.answer`: the response is copied out of the module's memory while the
/// call that gives it runs (a returned list would be lifted into a new `Vec`, then freed).
fn link_host_answer(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    let interface = format!("kubernetai:dns/host@{}", kubernetai_guest::CONTRACT_VERSION);
    linker.instance(&interface)?.func_wrap(
        "answer",
        |mut store: StoreContextMut<'_, State>, (response,): (WasmList<u8>,)| {
            // The buffer keeps its capacity: a module must not grow it past a DNS message.
            if response.len() > usize::from(u16::MAX) {
                wasmtime::bail!("host.answer was given {} bytes, more than a DNS message holds", response.len());
            }
            let mut kept = std::mem::take(&mut store.data_mut().answer);
            kept.clear();
            kept.extend_from_slice(response.as_le_slice(&store));
            store.data_mut().answer = kept;
            Ok(())
        },
    )
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A compiled, checked module, ready to instantiate many times; or the resolution library
/// linked into the host (`-module native`), the baseline that shows what the sandbox costs.
#[derive(Clone)]
pub struct Module {
    wasm: Option<Wasm>,
}

#[derive(Clone)]
struct Wasm {
    engine: Engine,
    pre: KubernetaiPre<State>,
    memory_limit: usize,
    /// One per compile: also what tells two modules apart ([`Module::same`]).
    ticker: Arc<Ticker>,
}

/// How modules are loaded: `-module.memory` and `-module.cache`.
#[derive(Clone, Debug)]
pub struct Loading {
    /// Linear memory each instance may use, in bytes.
    pub memory_limit: usize,
    /// Where compiled modules are kept between starts ([`crate::module::compiled`]).
    pub cache: Option<std::path::PathBuf>,
}

impl Default for Loading {
    fn default() -> Self {
        Loading { memory_limit: DEFAULT_MEMORY_LIMIT, cache: None }
    }
}

/// The 8 bytes a binary component starts with: the wasm magic, then the component layer's
/// version (a core module has `01 00 00 00`).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Refuses what is not a binary component before wasmtime parses it.
fn binary_component(bytes: &[u8]) -> Result<(), ModuleError> {
    if bytes.starts_with(&COMPONENT_HEADER) {
        return Ok(());
    }
    Err(ModuleError::NotBinary(if bytes.starts_with(b"\0asm") {
        "a core module or another version, not a component"
    } else if bytes.trim_ascii_start().starts_with(b"(") {
        "it looks like the text format"
    } else {
        "it does not start with the wasm magic bytes"
    }))
}

/// A compile error as this host says it: the kind of failure and where, never a name or text
/// out of the candidate (a validator's message may quote the module's names).
fn own_words(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    let offset = text
        .find("at offset 0x")
        .map(|i| text[i + 10..].chars().take_while(char::is_ascii_hexdigit).collect::<String>())
        .filter(|hex| !hex.is_empty());
    let kind = if text.contains("unexpected end") {
        "the binary ends early"
    } else if text.contains("type mismatch") || text.contains("type") {
        "it fails type validation"
    } else {
        "it is not a valid component"
    };
    match offset {
        Some(hex) => format!("wasmtime refused it: {kind} (at byte offset {hex})"),
        None => format!("wasmtime refused it: {kind}"),
    }
}

/// An import's name as the log may show it: an interface name of the component model's
/// grammar, else a description (a name is the candidate's bytes).
fn import_name(name: &str) -> String {
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:/@.".contains(c);
    if name.len() <= 128 && name.chars().all(plain) {
        name.to_string()
    } else {
        format!("an interface whose name is not a component-model name ({} bytes)", name.len())
    }
}

/// The `-module` value that selects the native library.
pub const NATIVE: &str = "native";

/// Advances the engine's epoch while any module is alive.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Module {
    /// Compiles `bytes` (a component) and checks its imports; instances get the default memory limit.
    pub fn load(bytes: &[u8]) -> Result<Self, ModuleError> {
        Self::compile(bytes, &Loading::default())
    }

    /// The resolution library linked into the host (`-module native`).
    pub fn native() -> Self {
        Module { wasm: None }
    }

    /// As `load`, with the memory limit and compiled-module cache of `loading`.
    pub fn compile(bytes: &[u8], loading: &Loading) -> Result<Self, ModuleError> {
        binary_component(bytes)?;
        let memory_limit = loading.memory_limit;
        let mut config = engine_settings::engine_config();
        // The module's functions by name for `perf` (and for reading a callgrind profile's JIT
        // addresses): /tmp/perf-PID.map.
        if std::env::var_os("KUBERNETAI_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| ModuleError::Compile(format!("the engine: {e}")))?;
        let component = crate::module::compiled::component(&engine, bytes, loading.cache.as_deref())
            .map_err(|e| ModuleError::Compile(own_words(&e)))?;
        for (name, _) in component.component_type().imports(&engine) {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                return Err(ModuleError::Import(import_name(name)));
            }
        }
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(ModuleError::Instantiate)?;
        link_host_answer(&mut linker).map_err(ModuleError::Instantiate)?;
        let pre = linker.instantiate_pre(&component).map_err(ModuleError::Instantiate)?;
        let pre = KubernetaiPre::new(pre).map_err(ModuleError::Instantiate)?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| ModuleError::Instantiate(e.into()))?;
        Ok(Module { wasm: Some(Wasm { engine, pre, memory_limit, ticker: Arc::new(Ticker { stop }) }) })
    }

    /// Whether both are the one module loaded once (clones of it), or both the native library.
    pub fn same(&self, other: &Module) -> bool {
        match (&self.wasm, &other.wasm) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a.ticker, &b.ticker),
            (None, None) => true,
            _ => false,
        }
    }

    /// Where `dir` keeps this module's machine code, when it is compiled from `bytes` (None for
    /// the native library).
    pub fn entry(&self, dir: &std::path::Path, bytes: &[u8]) -> Option<std::path::PathBuf> {
        self.wasm.as_ref().map(|w| crate::module::compiled::entry(dir, &w.engine, bytes))
    }

    /// A fresh instance, its contract version checked.
    pub fn instantiate(&self) -> Result<Instance, ModuleError> {
        let Some(wasm) = &self.wasm else {
            return Ok(Instance::Native(None));
        };
        wasm.instantiate()
    }
}

impl Wasm {
    fn instantiate(&self) -> Result<Instance, ModuleError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let state = State {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(self.memory_limit).trap_on_grow_failure(true).build(),
            stderr,
            answer: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(APPLY_DEADLINE_TICKS);
        let bindings = self.pre.instantiate(&mut store).map_err(ModuleError::Instantiate)?;
        let mut instance = Instance::Wasm { store, bindings };
        let found = instance.call("contract-version", APPLY_DEADLINE_TICKS, |b, s| {
            b.kubernetai_dns_plugin().call_contract_version(s)
        })?;
        let expected = kubernetai_guest::CONTRACT_VERSION;
        if !compatible(&found, expected) {
            let found = if found.len() <= 32 && found.chars().all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c)) {
                found
            } else {
                "an unreadable version".to_string()
            };
            return Err(ModuleError::Contract { found, expected: expected.to_string() });
        }
        Ok(instance)
    }
}

/// Same major and minor version; patch releases only clarify documentation.
fn compatible(found: &str, expected: &str) -> bool {
    let head = |v: &str| v.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    head(found) == head(expected)
}

/// One running instance of the module, or of the native library (configured on `configure`).
pub enum Instance {
    Wasm { store: Store<State>, bindings: Kubernetai },
    Native(Option<Native>),
}

impl Instance {
    fn call<T>(
        &mut self,
        call: &'static str,
        ticks: u64,
        f: impl FnOnce(&Kubernetai, &mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<T, ModuleError> {
        let Instance::Wasm { store, bindings } = self else {
            return Err(ModuleError::Trap { call, reason: "not a wasm instance".into(), stderr: String::new() });
        };
        store.set_epoch_deadline(ticks);
        f(bindings, store).map_err(|error| {
            let text = String::from_utf8_lossy(&store.data().stderr.contents()).trim().replace('\n', " | ");
            let stderr = if text.is_empty() { String::new() } else { format!(" (module stderr: {text})") };
            let reason = match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                // A limit (memory growth refused) is an error, not a trap: its cause says which.
                None => error.root_cause().to_string().lines().next().unwrap_or_default().to_string(),
            };
            ModuleError::Trap { call, reason, stderr }
        })
    }

    /// The configured native library, or the error of a call before `configure`.
    fn native<'a>(slot: &'a mut Option<Native>, call: &'static str) -> Result<&'a mut Native, ModuleError> {
        slot.as_mut().ok_or_else(|| ModuleError::Trap {
            call,
            reason: "called before configure".into(),
            stderr: String::new(),
        })
    }

    pub fn configure(&mut self, server: &wit::Server, stanzas: &[wit::Stanza]) -> Result<(), ModuleError> {
        if let Instance::Native(slot) = self {
            *slot = Some(Native::new(server, stanzas).map_err(|e| ModuleError::Configure(e.to_string()))?);
            return Ok(());
        }
        self.call("configure", APPLY_DEADLINE_TICKS, |b, s| {
            b.kubernetai_dns_plugin().call_configure(s, server, stanzas)
        })?
        .map_err(ModuleError::Configure)
    }

    /// Serves a block's `k8s_external` zones too (contract 0.4).
    pub fn configure_external(&mut self, external: &wit::ExternalZone) -> Result<(), ModuleError> {
        if let Instance::Native(slot) = self {
            let native = Self::native(slot, "configure-external")?;
            return native.serve_external(external).map_err(|e| ModuleError::Configure(e.to_string()));
        }
        self.call("configure-external", APPLY_DEADLINE_TICKS, |b, s| {
            b.kubernetai_dns_plugin().call_configure_external(s, external)
        })?
        .map_err(ModuleError::Configure)
    }

    /// Serves a block's clusterset zones too (contract 0.5).
    pub fn configure_clusterset(&mut self, members: &[wit::ClustersetMember]) -> Result<(), ModuleError> {
        if let Instance::Native(slot) = self {
            let native = Self::native(slot, "configure-clusterset")?;
            return native.serve_clusterset(members).map_err(|e| ModuleError::Configure(e.to_string()));
        }
        self.call("configure-clusterset", APPLY_DEADLINE_TICKS, |b, s| {
            b.kubernetai_dns_plugin().call_configure_clusterset(s, members)
        })?
        .map_err(ModuleError::Configure)
    }

    pub fn apply(&mut self, stanza: u32, now: u64, events: &[wit::Event]) -> Result<Vec<wit::Rejected>, ModuleError> {
        if let Instance::Native(slot) = self {
            return Ok(Self::native(slot, "apply")?.apply(stanza, now, events));
        }
        self.call("apply", APPLY_DEADLINE_TICKS, |b, s| b.kubernetai_dns_plugin().call_apply(s, stanza, now, events))
    }

    /// Applies `events` in batches of [`REPLAY_BATCH`].
    pub fn apply_batched(
        &mut self,
        stanza: u32,
        now: u64,
        events: &[wit::Event],
    ) -> Result<Vec<wit::Rejected>, ModuleError> {
        let mut rejected = Vec::new();
        for batch in events.chunks(REPLAY_BATCH) {
            rejected.extend(self.apply(stanza, now, batch)?);
        }
        Ok(rejected)
    }

    /// The outcome of `query`, an answer's bytes in a `Vec` of their own.
    pub fn handle(&mut self, query: &wit::Query) -> Result<wit::Outcome, ModuleError> {
        let mut bytes = Vec::new();
        Ok(self.handle_into(query, &mut bytes)?.unwrap_or(wit::Outcome::Answer(bytes)))
    }

    /// The outcome of `query`, an answer appended to `out` (None) instead of returned: the
    /// module's bytes go from its memory (or the native library's cache) into `out` with no
    /// allocation once `out` has room.
    pub fn handle_into(&mut self, query: &wit::Query, out: &mut Vec<u8>) -> Result<Option<wit::Outcome>, ModuleError> {
        if let Instance::Native(slot) = self {
            return Ok(Self::native(slot, "handle")?.handle_into(query, out));
        }
        if let Instance::Wasm { store, .. } = self {
            store.data_mut().answer.clear();
        }
        let outcome =
            self.call("handle", QUERY_DEADLINE_TICKS, |b, s| b.kubernetai_dns_plugin().call_handle(s, query))?;
        match outcome {
            wit::Outcome::Answer(bytes) if bytes.is_empty() => {
                if let Instance::Wasm { store, .. } = self {
                    out.extend_from_slice(&store.data().answer);
                }
                Ok(None)
            }
            wit::Outcome::Answer(bytes) => {
                out.extend_from_slice(&bytes);
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    pub fn transfer(&mut self, query: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ModuleError> {
        if let Instance::Native(slot) = self {
            return Ok(Self::native(slot, "transfer")?.transfer(query));
        }
        // A transfer walks the whole zone: it gets the time an apply gets.
        self.call("transfer", APPLY_DEADLINE_TICKS, |b, s| b.kubernetai_dns_plugin().call_transfer(s, query))
    }

    pub fn search_path(&mut self, qname: &str, client: &str) -> Result<Option<Vec<String>>, ModuleError> {
        if let Instance::Native(slot) = self {
            return Ok(Self::native(slot, "search-path")?.search_path(qname, client));
        }
        self.call("search-path", QUERY_DEADLINE_TICKS, |b, s| {
            b.kubernetai_dns_plugin().call_search_path(s, qname, client)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions_match_on_major_and_minor() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.1.0", "0.1.0"));
    }

    #[test]
    fn the_wit_package_version_is_the_contract_version() {
        let wit = include_str!("../../../wit/kubernetai.wit");
        let line = wit.lines().find(|l| l.starts_with("package ")).expect("a package line");
        assert_eq!(line, format!("package kubernetai:dns@{};", kubernetai_guest::CONTRACT_VERSION));
    }

    #[test]
    fn the_embedded_module_loads_with_only_allowed_imports() {
        let module = Module::load(EMBEDDED).expect("the embedded module loads");
        module.instantiate().expect("and instantiates");
    }

    #[test]
    fn the_embedded_module_hands_its_answer_over_through_the_host_import() {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        use hickory_proto::rr::{Name, RecordType};
        let blocks = crate::corefile::parse("cluster.local {\n kubernetai\n}\n", std::path::Path::new("(test)"))
            .expect("corefile");
        let servers = crate::serve::config::servers(&blocks, 53).expect("config");
        let stanzas: Vec<wit::Stanza> = servers[0].stanzas.iter().map(|s| s.guest.clone()).collect();
        let mut instance = Module::load(EMBEDDED).and_then(|m| m.instantiate()).expect("an instance");
        instance.configure(&wit::Server { local_ips: vec![] }, &stanzas).expect("configured");
        let mut m = Message::new(0x4b1d, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("dns-version.cluster.local.").expect("name"), RecordType::TXT));
        let packet = m.to_vec().expect("packet");
        let query = wit::Query {
            packet,
            client: "10.0.0.1".into(),
            client_port: 1,
            transport: wit::Transport::Udp,
            max_size: 512,
        };

        let mut out = vec![0xaa];
        assert!(instance.handle_into(&query, &mut out).expect("answered").is_none(), "an answer");
        assert_eq!(out[0], 0xaa, "appended after what the buffer held");
        let answer = Message::from_vec(&out[1..]).expect("a DNS message");
        assert_eq!((answer.metadata.id, answer.answers.len()), (0x4b1d, 1));
        let Instance::Wasm { store, .. } = &instance else { panic!("a wasm instance") };
        assert_eq!(store.data().answer, out[1..], "given through host.answer, not returned");
        match instance.handle(&query).expect("answered") {
            wit::Outcome::Answer(bytes) => assert_eq!(bytes, out[1..], "handle returns the same bytes"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_module_importing_files_is_refused() {
        let wat = r#"(component
            (import "wasi:filesystem/preopens@0.2.0" (instance))
        )"#;
        let err = Module::load(&wat::parse_str(wat).expect("binary")).err().expect("refused");
        assert!(err.to_string().contains("wasi:filesystem/preopens@0.2.0"), "{err}");
        let secret = wat::parse_str(r#"(component (import "TOPSECRET-1234" (instance)))"#);
        if let Ok(secret) = secret {
            let err = Module::load(&secret).err().expect("refused").to_string();
            assert!(!err.contains("TOPSECRET"), "a name out of the candidate is not quoted: {err}");
        }
    }

    #[test]
    fn only_binary_components_reach_the_compiler_and_nothing_is_quoted() {
        let text = Module::load(b"(component)").err().expect("text refused").to_string();
        assert!(text.contains("text format"), "{text}");
        let core = wat::parse_str("(module)").expect("a core module");
        assert!(Module::load(&core).err().expect("refused").to_string().contains("not a component"));
        let mut garbage = COMPONENT_HEADER.to_vec();
        garbage.extend_from_slice(b"TOPSECRET-in-the-bytes");
        let err = Module::load(&garbage).err().expect("refused").to_string();
        assert!(err.starts_with("compiling the module: wasmtime refused it") && !err.contains("TOPSECRET"), "{err}");
    }
}
