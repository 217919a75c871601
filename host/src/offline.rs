//! The server's work without a server: checking a module against the contract, and answering
//! one query from a Corefile whose stanzas read manifests — a way to try a module before
//! swapping it in.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::cluster::stanza::Source;
use crate::module::fed::FedModule;
use crate::module::{self, Module, wit};
use crate::serve::router::Counters;
use crate::serve::running::Running;
use crate::{cli, corefile, serve::config};

/// Compiles `path`, checks its imports and contract version, configures it with one stanza and
/// runs the same self-check a swap runs.
pub fn check_module(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).context("reading the module")?;
    let module = Module::load(&bytes)?;
    let blocks = corefile::parse("cluster.local {\n kubernetai\n}\n", Path::new("(check)"))?;
    let stanzas: Vec<wit::Stanza> = config::servers(&blocks, 53)?[0].stanzas.iter().map(|s| s.guest.clone()).collect();
    let plugin = FedModule::new(module.clone(), wit::Server { local_ips: vec![] }, stanzas)?;
    plugin.swap(module)?;
    Ok(format!("{}: ok, speaks kubernetai:dns@{}", path.display(), kubernetai_guest::CONTRACT_VERSION))
}

/// Answers `name` `qtype` from the Corefile in `args`, printed as dig prints a message.
pub async fn resolve(args: &cli::Args, name: &str, qtype: &str) -> anyhow::Result<String> {
    let qtype =
        RecordType::from_str(&qtype.to_uppercase()).map_err(|_| anyhow::anyhow!("unknown query type {qtype:?}"))?;
    let blocks = corefile::load(&args.conf)?;
    let servers = config::servers(&blocks, args.port)?;
    let module = module::from_source(args.module.as_deref(), &args.loading)?;
    // The blocks of one listener, as a query would meet them: the port of the first block whose
    // zones hold the name best.
    let lower = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
    let best = servers
        .iter()
        .filter_map(|s| {
            s.keys
                .iter()
                .filter(|(z, _)| kubernetai_guest::name::is_subdomain(&lower, z))
                .map(|(z, p)| (z.len(), *p))
                .max()
        })
        .fold(None, |acc: Option<(usize, u16)>, x| if acc.is_none_or(|a| x.0 > a.0) { Some(x) } else { acc });
    let Some((_, port)) = best else { bail!("no server block serves {name}") };
    let on_port: Vec<config::Server> =
        servers.iter().filter(|s| s.keys.iter().any(|(_, p)| *p == port)).cloned().collect();
    if let Some(st) = on_port.iter().flat_map(|s| &s.stanzas).find(|s| !matches!(s.source, Source::Manifests(_))) {
        bail!("{}: resolve works offline, so every kubernetai stanza needs `manifests`", st.at);
    }
    let instance = Running::build(&on_port, &module, &Arc::new(Counters::default())).await?;
    let router = instance.routers.iter().find(|((_, p), _)| *p == port).map(|(_, r)| r.clone()).context("no router")?;
    let mut query = Message::new(1, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).context("the name")?, qtype));
    let answer = router.answer_offline(&query.to_vec()?).await.context("the query was dropped")?;
    Ok(Message::from_vec(&answer)?.to_string())
}
