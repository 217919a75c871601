//! The wasm component's exports: converts between the WIT types of `wit/kubernetai.wit` and the
//! library's, and keeps the one `Plugin` of this instance. Nothing here decides anything.

use std::cell::RefCell;

use crate::{config, handler, snapshot};

wit_bindgen::generate!({ path: "../wit", world: "kubernetai" });

use exports::kubernetai::dns::plugin::Guest;
use kubernetai::dns::types as wit;

thread_local! {
    static PLUGIN: RefCell<Option<handler::Plugin>> = const { RefCell::new(None) };
}

struct Component;

fn kind(k: wit::Kind) -> snapshot::Kind {
    match k {
        wit::Kind::Namespace => snapshot::Kind::Namespace,
        wit::Kind::Service => snapshot::Kind::Service,
        wit::Kind::EndpointSlice => snapshot::Kind::EndpointSlice,
        wit::Kind::Pod => snapshot::Kind::Pod,
        wit::Kind::ServiceImport => snapshot::Kind::ServiceImport,
    }
}

fn wit_kind(k: snapshot::Kind) -> wit::Kind {
    match k {
        snapshot::Kind::Namespace => wit::Kind::Namespace,
        snapshot::Kind::Service => wit::Kind::Service,
        snapshot::Kind::EndpointSlice => wit::Kind::EndpointSlice,
        snapshot::Kind::Pod => wit::Kind::Pod,
        snapshot::Kind::ServiceImport => wit::Kind::ServiceImport,
    }
}

fn stanza(i: usize, s: wit::Stanza) -> Result<config::Stanza, config::ConfigError> {
    Ok(config::Stanza {
        zones: s.zones,
        namespaces: s.namespaces,
        namespace_labels: config::selector(i, "namespace_labels", s.namespace_labels.as_deref())?,
        labels: config::selector(i, "labels", s.labels.as_deref())?,
        pods: match s.pods {
            wit::PodMode::Disabled => config::PodMode::Disabled,
            wit::PodMode::Insecure => config::PodMode::Insecure,
            wit::PodMode::Verified => config::PodMode::Verified,
        },
        endpoint_pod_names: s.endpoint_pod_names,
        ttl: s.ttl,
        noendpoints: s.noendpoints,
        fallthrough: s.fallthrough,
        ignore_empty_service: s.ignore_empty_service,
        multicluster: s.multicluster,
        zonal: s.zonal,
    })
}

impl Guest for Component {
    fn contract_version() -> String {
        crate::CONTRACT_VERSION.to_string()
    }

    fn configure(server: wit::Server, stanzas: Vec<wit::Stanza>) -> Result<(), String> {
        let local_ips = server
            .local_ips
            .into_iter()
            .map(|ip| ip.parse().map_err(|_| config::ConfigError::LocalIp(ip)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let stanzas = stanzas
            .into_iter()
            .enumerate()
            .map(|(i, s)| stanza(i, s))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let plugin = handler::Plugin::new(config::Server { local_ips }, stanzas).map_err(|e| e.to_string())?;
        PLUGIN.with(|p| *p.borrow_mut() = Some(plugin));
        Ok(())
    }

    fn apply(stanza: u32, now: u64, events: Vec<wit::Event>) -> Vec<wit::Rejected> {
        let events = events
            .into_iter()
            .map(|e| match e {
                wit::Event::Apply(o) => snapshot::Event::Apply(kind(o.kind), o.json),
                wit::Event::Delete(o) => snapshot::Event::Delete(kind(o.kind), o.json),
                wit::Event::RelistStart(k) => snapshot::Event::RelistStart(kind(k)),
                wit::Event::RelistDone(k) => snapshot::Event::RelistDone(kind(k)),
                wit::Event::Synced(s) => snapshot::Event::Synced(s),
            })
            .collect();
        PLUGIN.with(|p| match p.borrow_mut().as_mut() {
            None => vec![wit::Rejected {
                kind: wit::Kind::Namespace,
                name: String::new(),
                reason: "apply before configure".into(),
            }],
            Some(plugin) => match plugin.apply(stanza as usize, now, events) {
                Ok(rejected) => rejected
                    .into_iter()
                    .map(|r| wit::Rejected { kind: wit_kind(r.kind), name: r.name, reason: r.reason })
                    .collect(),
                Err(e) => {
                    vec![wit::Rejected { kind: wit::Kind::Namespace, name: String::new(), reason: e.to_string() }]
                }
            },
        })
    }

    fn handle(query: wit::Query) -> wit::Outcome {
        let Ok(client) = query.client.parse() else {
            return wit::Outcome::Drop;
        };
        let q = handler::Query {
            packet: &query.packet,
            client,
            transport: match query.transport {
                wit::Transport::Udp => handler::Transport::Udp,
                wit::Transport::Tcp => handler::Transport::Tcp,
            },
            max_size: query.max_size,
        };
        PLUGIN.with(|p| match p.borrow().as_ref() {
            None => wit::Outcome::Next,
            Some(plugin) => match plugin.handle(&q) {
                handler::Outcome::Answer(bytes) => wit::Outcome::Answer(bytes),
                handler::Outcome::Chase { response, target, qtype } => {
                    wit::Outcome::Chase(wit::Chase { response, target, qtype })
                }
                handler::Outcome::Next => wit::Outcome::Next,
                handler::Outcome::Drop => wit::Outcome::Drop,
            },
        })
    }

    fn transfer(query: Vec<u8>) -> Option<Vec<Vec<u8>>> {
        PLUGIN.with(|p| p.borrow().as_ref().and_then(|plugin| plugin.transfer(&query)))
    }

    fn search_path(qname: String, client: String) -> Option<Vec<String>> {
        let client = client.parse().ok()?;
        PLUGIN.with(|p| p.borrow().as_ref().and_then(|plugin| plugin.search_path(&qname, client)))
    }
}

export!(Component);
