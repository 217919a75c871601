//! The server's work without a server: checking a module against the contract, answering one
//! query from a Corefile whose stanzas read manifests, and comparing two modules' answers to a
//! query file — ways to try a module before swapping it in.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::cluster::stanza::Source;
use crate::module::block::{BlockModule, Configuration};
use crate::module::shadow::Session;
use crate::module::{self, Module, wit};
use crate::observe::counters::Counters;
use crate::serve::running::Running;
use crate::{cli, corefile, serve::config};

/// Compiles `path`, checks its imports and contract version, configures it with one stanza and
/// runs the same self-check a swap runs.
pub fn check_module(path: &Path) -> anyhow::Result<String> {
    let bytes = module::bounded::read_bounded(path, module::bounded::MAX_MODULE).context("reading the module")?;
    let module = Module::load(&bytes)?;
    let blocks = corefile::parse("cluster.local {\n kubernetai\n}\n", Path::new("(check)"))?;
    let stanzas: Vec<wit::Stanza> = config::servers(&blocks, 53)?[0].stanzas.iter().map(|s| s.guest.clone()).collect();
    let config = Configuration { server: wit::Server { local_ips: vec![] }, stanzas, external: None, clusterset: vec![] };
    let plugin = BlockModule::new(module.clone(), config)?;
    plugin.swap(module)?;
    Ok(format!("{}: ok, speaks kubernetai:dns@{}", path.display(), kubernetai_guest::CONTRACT_VERSION))
}

/// Compiles `file` (the built-in module when None) and keeps its machine code where a start
/// looks for it: `-module.cache DIR`, or else beside the executable — an image built with this
/// step never compiles its module at start.
pub fn compile_module(args: &cli::Args, file: Option<&Path>) -> anyhow::Result<String> {
    let dir = match &args.loading.cache {
        Some(dir) => dir.clone(),
        None => module::compiled::shipped_dir().context("the executable's directory")?,
    };
    let loading = module::Loading { cache: Some(dir.clone()), ..args.loading.clone() };
    let source = file.filter(|f| f.as_os_str() != "builtin");
    let bytes = match source {
        Some(f) => module::bounded::read_bounded(f, module::bounded::MAX_MODULE)
            .with_context(|| format!("reading {}", f.display()))?,
        None => module::EMBEDDED.to_vec(),
    };
    let what = source.map_or_else(|| "the built-in module".to_string(), |f| f.display().to_string());
    let entry = Module::compile(&bytes, &loading)?.entry(&dir, &bytes).context("the native library is not compiled")?;
    if !entry.exists() {
        bail!("{what}: compiled, but {} could not be written", entry.display());
    }
    Ok(format!("{what}: machine code kept in {}", entry.display()))
}

/// Publishes `file` (and `FILE.minisig` beside it, as the manifest's signature annotation) to
/// `remote` in the Wasm OCI artifact layout, after checking it is a module this host loads.
pub async fn push_module(args: &cli::Args, file: &Path, remote: &module::oci::Remote) -> anyhow::Result<String> {
    let bytes = module::bounded::read_bounded(file, module::bounded::MAX_MODULE)
        .with_context(|| format!("reading {}", file.display()))?;
    let (bytes, loaded) = tokio::task::spawn_blocking(move || {
        let loaded = Module::load(&bytes).map(drop);
        (bytes, loaded)
    })
    .await?;
    loaded.with_context(|| format!("{}", file.display()))?;
    let signature = module::provenance::signature_beside(file)
        .with_context(|| format!("reading the signature beside {}", file.display()))?;
    let signed = if signature.is_some() { ", signed" } else { ", unsigned" };
    let digest = module::oci::push(remote, &args.fetching.registry, bytes, signature).await?;
    Ok(format!("pushed {} to {}{signed}: {digest}", file.display(), remote.text))
}

/// Answers `name` `qtype` from the Corefile in `args`, printed as dig prints a message.
pub async fn resolve(args: &cli::Args, name: &str, qtype: &str) -> anyhow::Result<String> {
    let qtype =
        RecordType::from_str(&qtype.to_uppercase()).map_err(|_| anyhow::anyhow!("unknown query type {qtype:?}"))?;
    let blocks = corefile::load(&args.conf)?;
    let servers = config::servers(&blocks, args.port)?;
    let module = args.fetching.load(&args.module, &args.loading).await?;
    let Some(port) = port_of(&servers, name) else { bail!("no server block serves {name}") };
    let on_port: Vec<config::BlockConfig> =
        servers.iter().filter(|s| s.keys.iter().any(|(_, p)| *p == port)).cloned().collect();
    if let Some(st) = on_port.iter().flat_map(|s| &s.stanzas).find(|s| !matches!(s.source, Source::Manifests(_))) {
        bail!("{}: resolve works offline, so every kubernetai stanza needs `manifests`", st.at);
    }
    let instance = Running::build(&on_port, &module, &Arc::new(Counters::default())).await?;
    let router = instance.routers.iter().find(|((_, p), _)| *p == port).map(|(_, r)| r.clone()).context("no router")?;
    let answer = router.answer_offline(&packet(1, name, qtype)?).await.context("the query was dropped")?;
    Ok(Message::from_vec(&answer)?.to_string())
}

/// The port whose blocks a query for `name` meets: that of the block whose zones hold it best.
fn port_of(servers: &[config::BlockConfig], name: &str) -> Option<u16> {
    let lower = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
    servers
        .iter()
        .filter_map(|s| {
            s.keys
                .iter()
                .filter(|(z, _)| kubernetai_guest::name::is_subdomain(&lower, z))
                .map(|(z, p)| (z.len(), *p))
                .max()
        })
        .fold(None, |acc: Option<(usize, u16)>, x| if acc.is_none_or(|a| x.0 > a.0) { Some(x) } else { acc })
        .map(|(_, port)| port)
}

/// A recursion-desired query for `name` `qtype`.
fn packet(id: u16, name: &str, qtype: RecordType) -> anyhow::Result<Vec<u8>> {
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).with_context(|| format!("the name {name:?}"))?, qtype));
    Ok(query.to_vec()?)
}

/// What `kubernetai module diff` found.
pub struct Diff {
    pub report: String,
    pub differs: bool,
}

/// Runs the Corefile's blocks (manifests or API servers) with `old`, shadowed by `new` on every
/// query, asks each query of `queries` (dnsperf's format: `NAME [TYPE]` per line), and reports
/// the queries the two modules answer differently. `builtin` and `native` name those modules.
pub async fn diff_modules(args: &cli::Args, old: &Path, new: &Path, queries: &Path) -> anyhow::Result<Diff> {
    let text = std::fs::read_to_string(queries).with_context(|| format!("reading {}", queries.display()))?;
    let mut asked = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let qtype = words.next().unwrap_or("A");
        let qtype = RecordType::from_str(&qtype.to_uppercase())
            .map_err(|_| anyhow::anyhow!("{}:{}: unknown query type {qtype:?}", queries.display(), n + 1))?;
        asked.push((name.to_string(), qtype));
    }
    let servers = config::servers(&corefile::load(&args.conf)?, args.port)?;
    let load = async |p: &Path| {
        let origin = module::source::Origin::parse(&p.to_string_lossy()).map_err(anyhow::Error::msg)?;
        args.fetching.load(&origin, &args.loading).await.with_context(|| format!("loading {}", p.display()))
    };
    let (old_module, new_module) = (load(old).await?, load(new).await?);
    let instance = Running::build(&servers, &old_module, &Arc::new(Counters::default())).await?;
    let session = Session::offline(new_module, new.display().to_string())?;
    let plugins = instance.plugins.clone();
    let started = session.clone();
    tokio::task::spawn_blocking(move || plugins.iter().try_for_each(|p| p.shadow(&started)))
        .await?
        .with_context(|| format!("{} refused", new.display()))?;
    let mut unanswered = 0;
    for (i, (name, qtype)) in asked.iter().enumerate() {
        let Some(port) = port_of(&servers, name) else {
            unanswered += 1;
            continue;
        };
        let Some(router) = instance.routers.iter().find(|((_, p), _)| *p == port).map(|(_, r)| r.clone()) else {
            continue;
        };
        router.answer_offline(&packet(i as u16, name, *qtype)?).await;
    }
    let waiting = session.clone();
    tokio::task::spawn_blocking(move || waiting.drain()).await?;
    let mut report = String::new();
    for shown in session.shown() {
        let kinds: Vec<&str> = shown.kinds.iter().map(|k| k.name()).collect();
        report.push_str(&format!(
            ";; {} differs ({})\n;; {}:\n{}\n;; {}:\n{}\n\n",
            shown.query,
            kinds.join(", "),
            old.display(),
            shown.running.trim_end(),
            new.display(),
            shown.candidate.trim_end()
        ));
    }
    let json = session.report();
    let failure = json["failure"].as_str().map(|f| format!("; {} failed: {f}", new.display())).unwrap_or_default();
    report.push_str(&format!(
        "{} queries, {} asked of both modules, {} answered differently{}{failure}\n",
        asked.len(),
        session.compared(),
        session.differences(),
        if unanswered > 0 { format!(", {unanswered} served by no block") } else { String::new() },
    ));
    Ok(Diff { report, differs: session.differences() > 0 || !failure.is_empty() })
}
