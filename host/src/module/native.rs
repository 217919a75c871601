//! The resolution library linked into the host and called directly, with the same inputs the
//! wasm module gets: the WIT types converted to the library's by the same conversions the
//! module's glue uses (`kubernetai_guest::wit_conversions!`). `-module native` serves with it, the baseline that shows what the sandbox costs; the
//! tests run the conformance tables through it in-process.

use kubernetai_guest::config::ConfigError;
use kubernetai_guest::{Plugin, wit_conversions};

use crate::contract::wit;

wit_conversions!(wit);

/// A native plugin, configured like a module instance.
pub struct Native(Plugin);

impl Native {
    pub fn new(server: &wit::Server, stanzas: &[wit::Stanza]) -> Result<Self, ConfigError> {
        let stanzas = stanzas.iter().enumerate().map(|(i, s)| stanza(i, s)).collect::<Result<_, _>>()?;
        Ok(Native(Plugin::new(self::server(server)?, stanzas)?))
    }

    pub fn serve_external(&mut self, external: &wit::ExternalZone) -> Result<(), ConfigError> {
        self.0.serve_external(external_zone(external))
    }

    pub fn serve_clusterset(&mut self, members: &[wit::ClustersetMember]) -> Result<(), ConfigError> {
        self.0.serve_clusterset(clusterset_members(members))
    }

    pub fn apply(&mut self, stanza: u32, now: u64, events: &[wit::Event]) -> Vec<wit::Rejected> {
        let events = events.iter().cloned().map(event).collect();
        rejected(self.0.apply(stanza as usize, now, events))
    }

    /// The outcome of `q`, an answer appended to `out` (None) instead of returned.
    pub fn handle_into(&self, q: &wit::Query, out: &mut Vec<u8>) -> Option<wit::Outcome> {
        self.0.handle_into(&query(q), out).map(outcome)
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
            let members = servers[0].clusterset_members();
            if !members.is_empty() {
                native.serve_clusterset(&members).expect("clusterset");
            }
            for (i, st) in servers[0].stanzas.iter().enumerate() {
                let crate::cluster::stanza::Source::Manifests(files) = &st.source else {
                    panic!("conformance stanzas use manifests")
                };
                let objects = crate::cluster::manifests::load(files, crate::cluster::prune::Reads::of(&st.guest)).expect("manifests");
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
                let mut answer = Vec::new();
                match native.handle_into(&query, &mut answer).unwrap_or(wit::Outcome::Answer(answer)) {
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
