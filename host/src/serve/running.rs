//! One configuration running: from the server blocks of a Corefile to the routers that answer
//! queries, the kubernetai plugins and every task that keeps them current. A reload builds a new
//! one beside the running one; dropping an instance stops its tasks.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::AbortHandle;

use crate::chain::{self, Chain, autopath};
use crate::cluster::feed::{self, SyncWait};
use crate::module::block::{BlockModule, Configuration};
use crate::module::{Module, wit};
use crate::observe::metrics::registry;
use crate::observe::status::Endpoint;
use crate::serve::config;
use crate::observe::counters::Counters;
use crate::serve::router::{Block, Router};

/// A listening address as the Corefile asks for it: the bound IP (unspecified for all) and the
/// configured port (0: any free port).
pub type ListenKey = (IpAddr, u16);

pub struct Running {
    pub routers: BTreeMap<ListenKey, Arc<Router>>,
    pub plugins: Vec<Arc<BlockModule>>,
    /// The HTTP endpoints the blocks ask for.
    pub status: Vec<(String, Endpoint)>,
    /// The longest `health` lameduck of any block.
    pub lameduck: Duration,
    /// A `ready` asks plugins again after they were ready (`monitor continuously`).
    pub ready_continuously: bool,
    /// The first block's `reload` interval and jitter.
    pub reload: Option<(Duration, Duration)>,
    /// `loop` probes to send once listening, to the first address of their block.
    /// Each block's chain by the address whose listener it is told of.
    pub listening: Vec<(ListenKey, Chain)>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

/// "dns://:53", "dns://10.0.0.1:53": the `server` label CoreDNS's metrics carry.
pub fn server_label(srv: &config::BlockConfig) -> String {
    let port = srv.keys.first().map_or(config::DEFAULT_PORT, |(_, p)| *p);
    match srv.bind.first() {
        Some(ip) if !ip.is_unspecified() => format!("dns://{}", SocketAddr::new(*ip, port)),
        _ => format!("dns://:{port}"),
    }
}

impl Running {
    /// What `ready` waits for: the kubernetai plugins, and how it asks them.
    pub fn readiness(&self) -> crate::observe::status::Waited {
        crate::observe::status::Waited {
            plugins: self.plugins.iter().map(|p| p.clone() as Arc<dyn crate::observe::status::Readiness>).collect(),
            continuously: self.ready_continuously,
        }
    }

    /// Starts every block of `servers` with `module`; returns once every stanza has synced or
    /// its startup_timeout passed, as CoreDNS starts.
    pub async fn build(servers: &[config::BlockConfig], module: &Module, counters: &Arc<Counters>) -> anyhow::Result<Self> {
        let mut instance = Running {
            routers: BTreeMap::new(),
            plugins: vec![],
            status: vec![],
            lameduck: Duration::ZERO,
            ready_continuously: false,
            reload: servers.iter().find_map(|s| s.reload),
            listening: vec![],
            tasks: vec![],
        };
        crate::observe::debug::set(servers.iter().any(|s| s.debug));
        registry().clear("coredns_plugin_enabled");
        registry().clear("kubernetai_stanza_synced");
        let host_search = autopath::search_domains("/etc/resolv.conf").unwrap_or_default();
        let mut by_key: BTreeMap<ListenKey, Vec<Block>> = BTreeMap::new();
        let mut syncs = Vec::new();
        for srv in servers {
            let plugin = if srv.stanzas.is_empty() {
                None
            } else {
                Some(start_stanzas(module, srv, &mut syncs, &mut instance.tasks).await?)
            };
            instance.plugins.extend(plugin.clone());
            let label = server_label(srv);
            let zones = srv.zones();
            let block = chain::setup::BlockContext {
                server: &label,
                zones: &zones,
                kubernetai: plugin.as_ref(),
                host_search: &host_search,
            };
            let stages: Chain = srv
                .chain
                .iter()
                .map(|(_, setup)| setup.build(&block))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", srv.at))?
                .into();

            if let Some(errors) = &srv.errors {
                instance.tasks.push(tokio::spawn(errors.clone().flush()).abort_handle());
            }
            if let Some((addr, lameduck)) = &srv.health {
                instance.status.push((addr.clone(), Endpoint::Health));
                instance.lameduck = instance.lameduck.max(*lameduck);
            }
            if let Some((addr, continuously)) = &srv.ready {
                instance.status.push((addr.clone(), Endpoint::Ready));
                instance.ready_continuously |= continuously;
            }
            if let Some(addr) = &srv.prometheus {
                instance.status.push((addr.clone(), Endpoint::Metrics));
                for zone in &zones {
                    for stage in stages.iter() {
                        registry().set("coredns_plugin_enabled", &[&label, zone, "", stage.name()], 1.0);
                    }
                }
            }

            let mut ports: Vec<u16> = srv.keys.iter().map(|(_, p)| *p).collect();
            ports.sort_unstable();
            ports.dedup();
            let binds = if srv.bind.is_empty() { vec![IpAddr::from([0, 0, 0, 0])] } else { srv.bind.clone() };
            for port in ports {
                let block_zones: Vec<String> =
                    srv.keys.iter().filter(|(_, p)| *p == port).map(|(z, _)| z.clone()).collect();
                // Told when the block's first address listens (the loop probe is sent there).
                instance.listening.push(((binds[0], port), stages.clone()));
                for ip in &binds {
                    by_key.entry((*ip, port)).or_default().push(Block::new(
                        block_zones.clone(),
                        label.clone(),
                        srv.log.clone(),
                        srv.errors.clone(),
                        srv.prometheus.is_some(),
                        stages.clone(),
                    ));
                }
            }
        }
        for (key, blocks) in by_key {
            instance.routers.insert(key, Arc::new(Router { blocks, counters: counters.clone() }));
        }
        // As CoreDNS: wait for every stanza's first list, each up to its startup_timeout, then serve.
        let waits = syncs.into_iter().map(|(at, timeout, mut synced): SyncWait| async move {
            if tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await.is_err() {
                println!("[WARNING] plugin/kubernetai: {at}: starting server with unsynced Kubernetes API");
            }
        });
        futures::future::join_all(waits).await;
        Ok(instance)
    }
}

/// Instantiates the module for one server block, configures it with the block's stanzas, and
/// starts feeding each stanza's objects to it.
pub async fn start_stanzas(
    module: &Module,
    srv: &config::BlockConfig,
    syncs: &mut Vec<SyncWait>,
    tasks: &mut Vec<AbortHandle>,
) -> anyhow::Result<Arc<BlockModule>> {
    let server: Arc<str> = server_label(srv).into();
    let local_ips = local_ips(&srv.bind).iter().map(IpAddr::to_string).collect();
    let stanzas: Vec<wit::Stanza> = srv.stanzas.iter().map(|s| s.guest.clone()).collect();
    let instance = Arc::new(
        BlockModule::new(
            module.clone(),
            Configuration {
                server: wit::Server { local_ips },
                stanzas,
                external: srv.external.clone(),
                clusterset: srv.clusterset_members(),
            },
        )
            .with_context(|| format!("server block at {}", srv.at))?,
    );
    for (i, st) in srv.stanzas.iter().enumerate() {
        let index = u32::try_from(i).context("too many stanzas")?;
        feed::start(instance.clone(), &server, index, st, syncs, tasks).await?;
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
