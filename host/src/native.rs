//! The resolution library linked into the host and called directly, with the same inputs the
//! wasm module gets: the WIT types converted to the library's. It runs the conformance tables
//! in-process and is the baseline that shows what the sandbox costs.

use kubernetai_guest::config::{self, ConfigError};
use kubernetai_guest::{Event, Kind, Outcome, Plugin, Query, Transport};

use crate::module::wit;

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

    pub fn apply(&mut self, stanza: u32, now: u64, events: &[wit::Event]) -> Vec<String> {
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
            Ok(rejected) => rejected.into_iter().map(|r| format!("{:?} {}: {}", r.kind, r.name, r.reason)).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    pub fn handle(&self, packet: &[u8], max_size: u16) -> Outcome {
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        self.0.handle(&Query { packet, client, transport: Transport::Udp, max_size })
    }
}

#[path = "../../tests/support/cases.rs"]
mod cases;

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
            let servers = crate::config::servers(&blocks, 53).expect("config");
            let stanzas: Vec<wit::Stanza> = servers[0].stanzas.iter().map(|s| s.guest.clone()).collect();
            let mut native = Native::new(&wit::Server { local_ips: vec![] }, &stanzas).expect("native plugin");
            for (i, st) in servers[0].stanzas.iter().enumerate() {
                let crate::stanza::Source::Manifests(files) = &st.source else {
                    panic!("conformance stanzas use manifests")
                };
                let objects = crate::manifests::load(files).expect("manifests");
                let rejected = native.apply(i as u32, 1, &objects.initial_events());
                assert!(rejected.is_empty(), "{rejected:?}");
            }
            for (i, case) in cases::load(&cases_file).iter().enumerate() {
                total += 1;
                match native.handle(&case.packet(i as u16), 4096) {
                    // Without the host's chain a chased answer is checked as the module gave it.
                    Outcome::Answer(bytes) | Outcome::Chase { response: bytes, .. } => {
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
