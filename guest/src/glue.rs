//! The wasm component's exports: converts between the WIT types of `wit/kubernetai.wit` and the
//! library's, and keeps the one `Plugin` of this instance. Nothing here decides anything.

use std::cell::RefCell;

use crate::handler;

wit_bindgen::generate!({ path: "../wit", world: "kubernetai" });

use exports::kubernetai::dns::plugin::Guest;
use kubernetai::dns::types as wit;

thread_local! {
    static PLUGIN: RefCell<Option<handler::Plugin>> = const { RefCell::new(None) };
    /// Where an answer is written before it is handed to the host; its capacity stays.
    static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct Component;

crate::wit_conversions!(wit);

impl Guest for Component {
    fn contract_version() -> String {
        crate::CONTRACT_VERSION.to_string()
    }

    fn configure(server: wit::Server, stanzas: Vec<wit::Stanza>) -> Result<(), String> {
        let server = self::server(&server).map_err(|e| e.to_string())?;
        let stanzas = stanzas
            .iter()
            .enumerate()
            .map(|(i, s)| stanza(i, s))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let plugin = handler::Plugin::new(server, stanzas).map_err(|e| e.to_string())?;
        PLUGIN.with(|p| *p.borrow_mut() = Some(plugin));
        Ok(())
    }

    fn configure_external(external: wit::ExternalZone) -> Result<(), String> {
        let external = external_zone(&external);
        PLUGIN.with(|p| match p.borrow_mut().as_mut() {
            None => Err("configure-external before configure".to_string()),
            Some(plugin) => plugin.serve_external(external).map_err(|e| e.to_string()),
        })
    }

    fn configure_clusterset(members: Vec<wit::ClustersetMember>) -> Result<(), String> {
        let members = clusterset_members(&members);
        PLUGIN.with(|p| match p.borrow_mut().as_mut() {
            None => Err("configure-clusterset before configure".to_string()),
            Some(plugin) => plugin.serve_clusterset(members).map_err(|e| e.to_string()),
        })
    }

    fn apply(stanza: u32, now: u64, events: Vec<wit::Event>) -> Vec<wit::Rejected> {
        let events = events.into_iter().map(event).collect();
        PLUGIN.with(|p| match p.borrow_mut().as_mut() {
            None => vec![wit::Rejected {
                kind: wit::Kind::Namespace,
                name: String::new(),
                reason: "apply before configure".into(),
            }],
            Some(plugin) => rejected(plugin.apply(stanza as usize, now, events)),
        })
    }

    fn handle(query: wit::Query) -> wit::Outcome {
        let q = self::query(&query);
        PLUGIN.with(|p| match p.borrow().as_ref() {
            None => wit::Outcome::Next,
            // An answer is handed over through the host's import, not returned (contract 0.3).
            Some(plugin) => ANSWER.with_borrow_mut(|answer| {
                answer.clear();
                match plugin.handle_into(&q, answer) {
                    None => {
                        kubernetai::dns::host::answer(answer);
                        wit::Outcome::Answer(Vec::new())
                    }
                    Some(other) => outcome(other),
                }
            }),
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
