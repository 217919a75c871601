//! The `autopath` plugin: server-side search path walking. A query for `name.<ns>.svc.<zone>`,
//! the first name a pod's resolver tries, is answered by trying each search domain in turn
//! here and returning the first answer that is not NXDOMAIN, under a CNAME from the asked name,
//! which saves the client its round trips. With `@kubernetai` the search path is the client
//! pod's own (its namespace, from the stanza that knows it; `pods verified`).

use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record};

use futures::future::BoxFuture;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};
use crate::module::block::BlockModule;
use crate::observe::metrics::registry;

/// Where the search path comes from.
pub enum Search {
    /// A resolv.conf's `search` domains (normalized), then "".
    Fixed(Vec<String>),
    /// The kubernetai plugin's answer for the client pod, then the host's own search domains.
    Kubernetai(Arc<BlockModule>, Vec<String>),
}

pub struct Autopath {
    zones: Vec<String>,
    search: Search,
    /// The `server` label of the metric.
    server: String,
}

/// What `autopath [ZONES...] RESOLV-CONF` names.
#[derive(Clone, Debug)]
pub struct Options {
    pub zones: Vec<String>,
    /// `@plugin`, or the search domains of a file.
    pub source: Result<String, Vec<String>>,
}

/// The `search` domains of a resolv.conf-style file, normalized.
pub fn search_domains(path: &str) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    // The last `search` line wins, as resolvers read the file.
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .rfind(|rest| rest.starts_with(char::is_whitespace))
        .map(|rest| rest.split_whitespace().map(kubernetai_guest::name::normalize_zone).collect())
        .unwrap_or_default())
}

pub fn parse(d: &Directive, block_zones: &[String]) -> Result<Options, Error> {
    let Some((last, zones)) = d.args.split_last() else {
        return Err(d.error("autopath: no resolv-conf specified"));
    };
    let zones: Vec<String> = if zones.is_empty() {
        block_zones.to_vec()
    } else {
        zones.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
    };
    let source = match last.text.strip_prefix('@') {
        // `@kubernetes` in a Corefile written for CoreDNS's own plugin: the stanzas play its part.
        Some("kubernetai" | "kubernetes") => Ok("kubernetai".to_string()),
        Some(other) => {
            return Err(Error::token(
                last,
                format!("autopath: unknown plugin @{other}; only @kubernetai (or @kubernetes) gives a search path"),
            ));
        }
        None => Err(search_domains(&last.text)
            .map_err(|e| Error::token(last, format!("autopath: failed to parse {:?}: {e}", last.text)))?),
    };
    Ok(Options { zones, source })
}

impl Autopath {
    pub fn new(zones: Vec<String>, search: Search, server: &str) -> Self {
        Autopath { zones, search, server: server.to_string() }
    }

    fn search_path(&self, q: &Query) -> Vec<String> {
        match &self.search {
            Search::Fixed(list) => list.iter().cloned().chain([String::new()]).collect(),
            Search::Kubernetai(plugin, host) => match plugin.search_path(&q.qname, &q.client.ip().to_string()) {
                Ok(Some(mut list)) if !list.is_empty() => {
                    list.extend(host.iter().cloned());
                    list.push(String::new());
                    list
                }
                _ => Vec::new(),
            },
        }
    }

    pub async fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        if kubernetai_guest::name::longest_zone(&q.qname, &self.zones).is_none() {
            return next.run(q).await;
        }
        let path = self.search_path(q);
        let Some(first) = path.first() else {
            return next.run(q).await;
        };
        // Only the first name the client's own search would try is walked.
        let Some(base) = q.qname.strip_suffix(first.as_str()).and_then(|b| b.strip_suffix('.')) else {
            return next.run(q).await;
        };
        if base.is_empty() {
            return next.run(q).await;
        }
        let asked = q.message.queries[0].name().clone();
        let mut first_reply = None;
        for (i, domain) in path.iter().enumerate() {
            let candidate =
                if domain.is_empty() || domain == "." { format!("{base}.") } else { format!("{base}.{domain}") };
            let Some(sub) = Name::from_ascii(&candidate).ok().and_then(|n| q.renamed(n)) else {
                continue;
            };
            let reply = next.run(&sub).await;
            if let Reply::Answer { bytes, by } = &reply
                && bytes.get(3).is_some_and(|b| b & 0x0f != ResponseCode::NXDomain.low())
            {
                registry().inc("coredns_autopath_success_total", &[&self.server]);
                return Reply::Answer { bytes: cnamer(bytes, &asked, q.max_size), by };
            }
            if i == 0 {
                first_reply = Some(reply);
            }
        }
        // Every name failed: the first try's answer (the asked name itself), and the client walks
        // its search path on its own.
        match first_reply {
            Some(reply) => reply,
            None => next.run(q).await,
        }
    }
}

/// The answer under the asked name: a CNAME from it to the name that answered, first.
fn cnamer(bytes: &[u8], asked: &Name, max_size: u16) -> Vec<u8> {
    let Ok(mut m) = Message::from_vec(bytes) else {
        return bytes.to_vec();
    };
    if let Some(first) = m.answers.iter().find(|r| r.name.to_lowercase() != asked.to_lowercase()) {
        let cname = Record::from_rdata(asked.clone(), first.ttl, RData::CNAME(CNAME(first.name.clone())));
        m.answers.insert(0, cname);
    }
    if let Some(q) = m.queries.first_mut() {
        q.set_name(asked.clone());
    }
    kubernetai_guest::message::encode(m, max_size)
}

/// Reads `autopath`.
pub fn setup(d: &Directive, zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    Ok(Arc::new(parse(d, zones)?))
}

impl Setup for Options {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        let search = match (&self.source, block.kubernetai) {
            (Err(list), _) => Search::Fixed(list.clone()),
            (Ok(_), Some(p)) => Search::Kubernetai(p.clone(), block.host_search.to_vec()),
            (Ok(_), None) => return Err("autopath @kubernetai without kubernetai".into()),
        };
        Ok(Arc::new(Autopath::new(self.zones.clone(), search, block.server)))
    }
}

impl Plugin for Autopath {
    fn name(&self) -> &'static str {
        "autopath"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(Autopath::serve(self, next, q))
    }
}
