//! The resolution library linked into the host and called directly, with the same inputs the
//! wasm module gets: the WIT types converted to the library's (glue.rs does the same inside the
//! module). `-module native` serves with it, the baseline that shows what the sandbox costs; the
//! tests run the conformance tables through it in-process.

use kubernetai_guest::config::{self, ConfigError};
use kubernetai_guest::{Event, Kind, Outcome, Plugin, Query, Transport};

use crate::contract::wit;

fn kind(k: wit::Kind) -> Kind {
    match k {
        wit::Kind::Namespace => Kind::Namespace,
        wit::Kind::Service => Kind::Service,
        wit::Kind::EndpointSlice => Kind::EndpointSlice,
        wit::Kind::Pod => Kind::Pod,
        wit::Kind::ServiceImport => Kind::ServiceImport,
    }
}

/// The WIT stanza in the library's terms; glue.rs does the same for the wit-bindgen types.
fn stanza(i: usize, s: &wit::Stanza) -> Result<config::Stanza, ConfigError> {
    Ok(config::Stanza {
        zones: s.zones.clone(),
        namespaces: s.namespaces.clone(),
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
        fallthrough: s.fallthrough.clone(),
        ignore_empty_service: s.ignore_empty_service,
        multicluster: s.multicluster.clone(),
        zonal: s.zonal,
    })
}

fn wit_kind(k: Kind) -> wit::Kind {
    match k {
        Kind::Namespace => wit::Kind::Namespace,
        Kind::Service => wit::Kind::Service,
        Kind::EndpointSlice => wit::Kind::EndpointSlice,
        Kind::Pod => wit::Kind::Pod,
        Kind::ServiceImport => wit::Kind::ServiceImport,
    }
}

/// A native plugin, configured like a module instance.
pub struct Native(Plugin);

impl Native {
    pub fn new(server: &wit::Server, stanzas: &[wit::Stanza]) -> Result<Self, ConfigError> {
        let local_ips = server
            .local_ips
            .iter()
            .map(|ip| ip.parse().map_err(|_| ConfigError::LocalIp(ip.clone())))
            .collect::<Result<_, _>>()?;
        let stanzas = stanzas.iter().enumerate().map(|(i, s)| stanza(i, s)).collect::<Result<_, _>>()?;
        Ok(Native(Plugin::new(config::Server { local_ips }, stanzas)?))
    }

    pub fn apply(&mut self, stanza: u32, now: u64, events: &[wit::Event]) -> Vec<wit::Rejected> {
        let events = events
            .iter()
            .map(|e| match e {
                wit::Event::Apply(o) => Event::Apply(kind(o.kind), o.json.clone()),
                wit::Event::Delete(o) => Event::Delete(kind(o.kind), o.json.clone()),
                wit::Event::RelistStart(k) => Event::RelistStart(kind(*k)),
                wit::Event::RelistDone(k) => Event::RelistDone(kind(*k)),
                wit::Event::Synced(s) => Event::Synced(*s),
            })
            .collect();
        match self.0.apply(stanza as usize, now, events) {
            Ok(rejected) => rejected
                .into_iter()
                .map(|r| wit::Rejected { kind: wit_kind(r.kind), name: r.name, reason: r.reason })
                .collect(),
            Err(e) => vec![wit::Rejected { kind: wit::Kind::Namespace, name: String::new(), reason: e.to_string() }],
        }
    }

    pub fn handle(&self, q: &wit::Query) -> wit::Outcome {
        let Ok(client) = q.client.parse() else {
            return wit::Outcome::Drop;
        };
        let transport = if q.transport == wit::Transport::Udp { Transport::Udp } else { Transport::Tcp };
        match self.0.handle(&Query { packet: &q.packet, client, transport, max_size: q.max_size }) {
            Outcome::Answer(bytes) => wit::Outcome::Answer(bytes),
            Outcome::Chase { response, target, qtype } => wit::Outcome::Chase(wit::Chase { response, target, qtype }),
            Outcome::Next => wit::Outcome::Next,
            Outcome::Drop => wit::Outcome::Drop,
        }
    }

    pub fn transfer(&self, query: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.0.transfer(query)
    }

    pub fn search_path(&self, qname: &str, client: &str) -> Option<Vec<String>> {
        self.0.search_path(qname, client.parse().ok()?)
    }
}

#[cfg(test)]
#[path = "../../../tests/support/cases.rs"]
mod cases;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::cases;

    use super::*;

    /// Every `tests/conformance/NAME.cases` with its `NAME.Corefile`.
    pub fn tables() -> Vec<(PathBuf, PathBuf)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
        let mut out: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(&dir)
            .expect("tests/conformance")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cases"))
            .map(|p| (p.clone(), p.with_extension("Corefile")))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn conformance_tables_pass_natively() {
        let mut failures = Vec::new();
        let mut total = 0;
        for (cases_file, corefile) in tables() {
            let blocks = crate::corefile::load(&corefile).expect("corefile");
            let servers = crate::serve::config::servers(&blocks, 53).expect("config");
            let stanzas: Vec<wit::Stanza> = servers[0].stanzas.iter().map(|s| s.guest.clone()).collect();
            let mut native = Native::new(&wit::Server { local_ips: vec![] }, &stanzas).expect("native plugin");
            for (i, st) in servers[0].stanzas.iter().enumerate() {
                let crate::cluster::stanza::Source::Manifests(files) = &st.source else {
                    panic!("conformance stanzas use manifests")
                };
                let objects = crate::cluster::manifests::load(files).expect("manifests");
                let rejected = native.apply(i as u32, 1, &objects.initial_events());
                assert!(rejected.is_empty(), "{rejected:?}");
            }
            for (i, case) in cases::load(&cases_file).iter().enumerate() {
                total += 1;
                let query = wit::Query {
                    packet: case.packet(i as u16),
                    client: "127.0.0.1".into(),
                    client_port: 0,
                    transport: wit::Transport::Udp,
                    max_size: 4096,
                };
                match native.handle(&query) {
                    // Without the host's chain a chased answer is checked as the module gave it.
                    wit::Outcome::Answer(bytes) | wit::Outcome::Chase(wit::Chase { response: bytes, .. }) => {
                        failures.extend(case.check(&bytes).err())
                    }
                    other => failures.push(format!("{}: {other:?}", case.at)),
                }
            }
        }
        assert!(total > 90, "the tables hold their cases ({total})");
        assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
    }
}
