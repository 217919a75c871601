//! A clusterset zone computed from the member clusters' own objects: the Multi-Cluster Services
//! DNS specification (KEP-1645, schema 1.0.0) served with no MCS controller and no broker. Every
//! stanza of a block that names the same zone in `clusterset ZONE CLUSTERID [all]` is a member;
//! a member exports a Service when a ServiceExport of the same namespace and name exists in its
//! cluster (or every Service, with `all`). Namespace sameness makes the same namespace and name
//! in several members one multi-cluster service:
//!
//! - with a cluster IP (no ClusterSetIP exists without a controller): the cluster IPs of the
//!   first member, in Corefile order, that exports it and has a ready endpoint; SRV per named
//!   port pointing at `<svc>.<ns>.svc.<zone>`; no per-cluster name (section 2.3.4);
//! - headless: every ready endpoint of every exporting member, `<host>.<clusterid>.<svc>…` for
//!   each (its hostname, its pod's name under `endpoint_pod_names`, else its dashed address),
//!   SRV per endpoint and named port pointing at those names; `<clusterid>.<svc>…` exists with
//!   nothing of its own (RFC 8020: names below it), so it is NODATA.
//!
//! The apex has the cluster zones' SOA and NS (`ns.dns.<zone>`, the server's addresses) and
//! `dns-version` says "1.0.0". PTRs stay with the cluster zones, which already answer every
//! address served here (the specification asks no second PTR of an address). A member that
//! has not synced contributes nothing; while no member has, a name error is SERVFAIL, as an
//! unsynced stanza answers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::config::{BlockFacts, ConfigError, Stanza};
use crate::message::{address, encode, reply, srv_weight};
use crate::name;
use crate::object::{Port, Service, ServiceKind};
use crate::outcome::Outcome;
use crate::resolve::{endpoint_hostname, namespace_exposed, ready_endpoints};
use crate::snapshot::Snapshot;

/// The version of the Multi-Cluster Services DNS schema served (`dns-version` TXT).
pub const MCS_SCHEMA_VERSION: &str = "1.0.0";
/// The `dns-version` record's TTL, as the cluster zones' (and the specification's example).
const SCHEMA_TTL: u32 = 28800;
/// The SOA TTL never exceeds this, as the cluster zones'.
const SOA_MAX_TTL: u32 = 300;

/// One stanza's membership of a clusterset (`clusterset ZONE CLUSTERID [all]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The stanza's index in the block.
    pub stanza: usize,
    /// Lowercase, fully qualified.
    pub zone: String,
    /// A DNS label, unique among the zone's members (lowercase).
    pub cluster_id: String,
    /// `all`: every Service is exported, whether or not a ServiceExport names it.
    pub export_all: bool,
}

/// Checks a block's members against its stanzas: indexes that exist, one DNS label per cluster
/// id, no id twice in a zone.
pub fn validate(members: &[Member], stanzas: usize) -> Result<(), ConfigError> {
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for m in members {
        if m.stanza >= stanzas {
            return Err(ConfigError::ClustersetStanza(m.stanza));
        }
        if !m.zone.ends_with('.') || m.zone != m.zone.to_ascii_lowercase() {
            return Err(ConfigError::ClustersetZone(m.zone.clone()));
        }
        if !is_cluster_id(&m.cluster_id) {
            return Err(ConfigError::ClustersetId(m.cluster_id.clone()));
        }
        if !seen.insert((&m.zone, &m.cluster_id)) {
            return Err(ConfigError::ClustersetDuplicate { zone: m.zone.clone(), id: m.cluster_id.clone() });
        }
    }
    Ok(())
}

/// An RFC 1123 label, lowercase: what a cluster id must be to sit inside a name.
pub fn is_cluster_id(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// What the clusterset zones are answered from: the members, the server's addresses and the
/// block's stanzas in Corefile order.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub members: &'a [Member],
    pub server: &'a BlockFacts,
    pub stanzas: &'a [(Stanza, Snapshot)],
}

/// A member cluster as one query sees it.
#[derive(Clone, Copy)]
struct Cluster<'a> {
    id: &'a str,
    export_all: bool,
    stanza: &'a Stanza,
    snap: &'a Snapshot,
}

/// One query's view of one clusterset zone.
struct Zone<'a> {
    /// Lowercase, and as the client spelled it (answers keep the query's case).
    zone: &'a str,
    zone_cased: String,
    /// The synced members, in Corefile order.
    clusters: Vec<Cluster<'a>>,
    /// Whether any member, synced or not, passes name errors on for the name.
    stanzas: Vec<&'a Stanza>,
    ttl: u32,
    serial: u64,
    server: &'a BlockFacts,
}

/// An address a name holds, the name it lives under (relative to the zone: the SRV target),
/// and the ports it is reached on.
struct Target<'a> {
    ip: IpAddr,
    name: String,
    ports: &'a [Port],
}

/// What a name of the zone is.
enum Found<'a> {
    /// Its addresses (possibly none of the family asked: NODATA).
    Targets(Vec<Target<'a>>),
    /// Exists, holds nothing of its own (names below it).
    Empty,
    NameError,
}

/// A multi-cluster service: how its first exporter serves it, and every exporter.
enum Exported<'a> {
    ClusterIp(Vec<(Cluster<'a>, &'a Service)>),
    Headless(Vec<(Cluster<'a>, &'a Service)>),
}

impl<'a> Sources<'a> {
    /// The zone `qname` falls in (the longest), as a query sees it.
    fn zone(&self, qname: &str, asked: &str) -> Option<Zone<'a>> {
        let zone = self.members.iter().map(|m| m.zone.as_str()).filter(|z| name::is_subdomain(qname, z)).max_by_key(|z| z.len())?;
        let mut clusters = Vec::new();
        let mut stanzas = Vec::new();
        let mut serial = 0;
        let mut ttl = None;
        for m in self.members.iter().filter(|m| m.zone == zone) {
            let Some((stanza, snap)) = self.stanzas.get(m.stanza) else { continue };
            stanzas.push(stanza);
            ttl.get_or_insert(stanza.ttl);
            if snap.synced() {
                serial = serial.max(snap.modified());
                clusters.push(Cluster { id: &m.cluster_id, export_all: m.export_all, stanza, snap });
            }
        }
        let zone_cased = asked.get(asked.len().checked_sub(zone.len())?..)?.to_string();
        Some(Zone { zone, zone_cased, clusters, stanzas, ttl: ttl.unwrap_or(5), serial, server: self.server })
    }
}

/// The answer to a query for a name of a clusterset zone, or None when it is not one.
pub(crate) fn answer(from: Sources<'_>, req: &Message, asked: &str, qname: &str, qtype: RecordType, max_size: u16) -> Option<Outcome> {
    let z = from.zone(qname, asked)?;
    let owner = Name::from_ascii(asked).ok()?;
    let labels = name::labels_below(qname, z.zone).unwrap_or_default();
    let respond = |rcode, answers: Vec<Record>, authority: Vec<Record>, extra: Vec<Record>| {
        let mut m = reply(req, rcode, true);
        (m.answers, m.authorities, m.additionals) = (answers, authority, extra);
        Some(Outcome::Answer(encode(m, max_size)))
    };
    let nodata = || respond(ResponseCode::NoError, vec![], vec![z.soa()], vec![]);
    // Transfers come through `transfer`, when the host's transfer plugin allows the peer.
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Some(Outcome::Answer(encode(reply(req, ResponseCode::Refused, false), max_size)));
    }
    match labels.as_slice() {
        [] => {
            return match qtype {
                RecordType::SOA => respond(ResponseCode::NoError, vec![z.soa()], vec![], vec![]),
                RecordType::NS => {
                    let (ns, extra) = z.ns(&owner);
                    respond(ResponseCode::NoError, ns, vec![], extra)
                }
                _ => nodata(),
            };
        }
        ["dns-version"] => {
            if qtype != RecordType::TXT {
                return nodata();
            }
            let txt = TXT::new(vec![MCS_SCHEMA_VERSION.to_string()]);
            return respond(ResponseCode::NoError, vec![Record::from_rdata(owner, SCHEMA_TTL, RData::TXT(txt))], vec![], vec![]);
        }
        ["dns"] => return nodata(),
        ["ns", "dns"] => {
            let addrs = z.addresses_of(&owner, qtype, z.server.local_ips.iter().copied());
            return if addrs.is_empty() { nodata() } else { respond(ResponseCode::NoError, addrs, vec![], vec![]) };
        }
        _ => {}
    }
    let targets = match z.lookup(&labels) {
        Found::NameError if z.stanzas.iter().any(|s| s.falls_through(qname)) => return Some(Outcome::Next),
        Found::NameError if z.clusters.is_empty() => return respond(ResponseCode::ServFail, vec![], vec![z.soa()], vec![]),
        Found::NameError => return respond(ResponseCode::NXDomain, vec![], vec![z.soa()], vec![]),
        Found::Empty => return nodata(),
        Found::Targets(t) => t,
    };
    let (answers, extra) = match qtype {
        RecordType::A | RecordType::AAAA => (z.addresses_of(&owner, qtype, targets.iter().map(|t| t.ip)), vec![]),
        RecordType::SRV => z.srv(&owner, &targets),
        _ => (vec![], vec![]),
    };
    if answers.is_empty() {
        return nodata();
    }
    respond(ResponseCode::NoError, answers, vec![], extra)
}

/// Every record of the clusterset zone `zone` as AXFR sends it: SOA, NS and its addresses, each
/// exported service's addresses (a headless one's per endpoint too) and SRV records, SOA. None
/// when `zone` is no clusterset zone of the block.
pub(crate) fn transfer(from: Sources<'_>, zone: &str) -> Option<Vec<Record>> {
    if !from.members.iter().any(|m| m.zone == zone) {
        return None;
    }
    let z = from.zone(zone, zone)?;
    let apex = Name::from_ascii(zone).ok()?;
    let soa = z.soa();
    let mut records = vec![soa.clone()];
    let (ns, extra) = z.ns(&apex);
    records.extend(ns);
    records.extend(extra);
    let mut services: BTreeSet<(&str, &str)> = BTreeSet::new();
    for c in &z.clusters {
        for svc in c.snap.services() {
            services.insert((&svc.key.namespace, &svc.key.name));
        }
    }
    for (namespace, service) in services {
        let Found::Targets(targets) = z.lookup(&[service, namespace, "svc"]) else { continue };
        let base = z.in_zone(&format!("{service}.{namespace}.svc"))?;
        let mut added: BTreeSet<(String, IpAddr)> = BTreeSet::new();
        for t in &targets {
            for owner in [base.clone(), z.in_zone(&t.name)?] {
                if added.insert((owner.to_ascii(), t.ip)) {
                    records.push(address(owner, z.ttl, t.ip));
                }
            }
        }
        // Each named port's SRV name, once however many endpoints carry it.
        let mut ports: BTreeSet<(String, String)> = BTreeSet::new();
        for p in targets.iter().flat_map(|t| t.ports).filter(|p| !p.name.is_empty()) {
            ports.insert((format!("_{}", p.name.to_ascii_lowercase()), format!("_{}", p.protocol.to_ascii_lowercase())));
        }
        for (port, protocol) in &ports {
            let Found::Targets(on_port) = z.lookup(&[port, protocol, service, namespace, "svc"]) else { continue };
            let owner = z.in_zone(&format!("{port}.{protocol}.{service}.{namespace}.svc"))?;
            records.extend(z.srv(&owner, &on_port).0);
        }
    }
    records.push(soa);
    Some(records)
}

impl<'a> Zone<'a> {
    fn in_zone(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(name::join(relative, &self.zone_cased)).ok()
    }

    fn soa(&self) -> Record {
        let zone = Name::from_ascii(&self.zone_cased).unwrap_or_else(|_| Name::root());
        let mname = self.in_zone("ns.dns").unwrap_or_else(Name::root);
        let rname = self.in_zone("hostmaster").unwrap_or_else(Name::root);
        // The serial wraps in 2106, as the cluster zones'.
        let soa = SOA::new(mname, rname, self.serial as u32, 7200, 1800, 86400, self.ttl);
        Record::from_rdata(zone, self.ttl.min(SOA_MAX_TTL), RData::SOA(soa))
    }

    /// The apex's NS record, `ns.dns.<zone>`, and its addresses (the server's own).
    fn ns(&self, owner: &Name) -> (Vec<Record>, Vec<Record>) {
        let Some(target) = self.in_zone("ns.dns") else { return (vec![], vec![]) };
        let extra = self.server.local_ips.iter().map(|ip| address(target.clone(), self.ttl, *ip)).collect();
        (vec![Record::from_rdata(owner.clone(), self.ttl, RData::NS(NS(target)))], extra)
    }

    /// `owner`'s A or AAAA records for the addresses of that family, each once.
    fn addresses_of(&self, owner: &Name, qtype: RecordType, ips: impl Iterator<Item = IpAddr>) -> Vec<Record> {
        let want_v4 = match qtype {
            RecordType::A => true,
            RecordType::AAAA => false,
            _ => return vec![],
        };
        let mut seen = BTreeSet::new();
        ips.filter(|ip| ip.is_ipv4() == want_v4 && seen.insert(*ip)).map(|ip| address(owner.clone(), self.ttl, ip)).collect()
    }

    /// SRV records of the targets' named ports, with the targets' addresses as additionals.
    fn srv(&self, owner: &Name, targets: &[Target<'_>]) -> (Vec<Record>, Vec<Record>) {
        let mut wanted: Vec<(Name, u16, IpAddr)> = Vec::new();
        for t in targets {
            let Some(target) = self.in_zone(&t.name) else { continue };
            for p in t.ports.iter().filter(|p| !p.name.is_empty()) {
                let Ok(port) = u16::try_from(p.port) else { continue };
                wanted.push((target.clone(), port, t.ip));
            }
        }
        let mut seen: BTreeSet<(String, u16)> = BTreeSet::new();
        let srv: Vec<(Name, u16)> =
            wanted.iter().filter(|(n, port, _)| seen.insert((n.to_ascii(), *port))).map(|(n, port, _)| (n.clone(), *port)).collect();
        let weight = srv_weight(srv.len());
        let answers =
            srv.into_iter().map(|(target, port)| Record::from_rdata(owner.clone(), self.ttl, RData::SRV(SRV::new(0, weight, port, target)))).collect();
        let mut added: BTreeSet<(String, IpAddr)> = BTreeSet::new();
        let extra = wanted
            .into_iter()
            .filter(|(n, _, ip)| added.insert((n.to_ascii(), *ip)))
            .map(|(n, _, ip)| address(n, self.ttl, ip))
            .collect();
        (answers, extra)
    }

    /// The members exporting `namespace/service`, by the kind of the first: members whose
    /// service is of another kind are left out, as the first exporter decides what it is.
    fn exported(&self, namespace: &str, service: &str) -> Option<Exported<'a>> {
        let mut exporters = self.clusters.iter().filter_map(|c| {
            let svc = c.snap.service(namespace, service)?;
            let exports = c.export_all || c.snap.exported(namespace, service);
            let selected = c.stanza.labels.as_ref().is_none_or(|sel| sel.matches(&svc.labels));
            (exports && selected && namespace_exposed(c.stanza, c.snap, namespace)).then_some((*c, svc))
        });
        let first = exporters.next()?;
        let headless = match first.1.kind {
            ServiceKind::ClusterIp(_) => false,
            ServiceKind::Headless => true,
            // An ExternalName is no multi-cluster service: it has nothing to route to.
            ServiceKind::ExternalName(_) => return None,
        };
        let same = |(_, svc): &(Cluster<'a>, &'a Service)| matches!(svc.kind, ServiceKind::Headless) == headless;
        let all: Vec<_> = std::iter::once(first).chain(exporters.filter(same)).collect();
        Some(if headless { Exported::Headless(all) } else { Exported::ClusterIp(all) })
    }

    /// What the labels below the zone name: `svc`, `<ns>.svc`, `<svc>.<ns>.svc`,
    /// `_<port>._<proto>.<svc>.<ns>.svc`, `<clusterid>.<svc>.<ns>.svc`,
    /// `<host>.<clusterid>.<svc>.<ns>.svc`.
    fn lookup(&self, labels: &[&str]) -> Found<'a> {
        let Some((&"svc", rest)) = labels.split_last() else { return Found::NameError };
        let Some((&namespace, rest)) = rest.split_last() else { return Found::Empty };
        let Some((&service, rest)) = rest.split_last() else {
            let any = self.clusters.iter().any(|c| {
                c.snap.services().any(|s| &*s.key.namespace == namespace && self.exported(namespace, &s.key.name).is_some())
            });
            return if any { Found::Empty } else { Found::NameError };
        };
        let Some(exported) = self.exported(namespace, service) else { return Found::NameError };
        let base = format!("{service}.{namespace}.svc");
        let strip = |l: &str| l.strip_prefix('_').map(str::to_string);
        let (port, protocol, cluster, host) = match rest {
            [] => (None, None, None, None),
            [port, protocol] if port.starts_with('_') && protocol.starts_with('_') => (strip(port), strip(protocol), None, None),
            [protocol] if protocol.starts_with('_') => (None, strip(protocol), None, None),
            [cluster] => (None, None, Some(*cluster), None),
            [host, cluster] => (None, None, Some(*cluster), Some(*host)),
            _ => return Found::NameError,
        };
        let wants = |p: &Port| {
            port.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(&p.name))
                && protocol.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(&p.protocol))
        };
        let mut targets = Vec::new();
        match exported {
            // No name below a cluster-IP service picks one cluster (section 2.3.4).
            Exported::ClusterIp(_) if cluster.is_some() => return Found::NameError,
            Exported::ClusterIp(exporters) => {
                let answering = exporters.iter().find(|(c, svc)| {
                    ready_endpoints(c.stanza, c.snap.slices_of(&svc.key)).iter().any(|(e, _)| !e.addresses.is_empty())
                });
                let Some((_, svc)) = answering else { return Found::NameError };
                let ServiceKind::ClusterIp(ips) = &svc.kind else { return Found::NameError };
                targets.extend(ips.iter().map(|ip| Target { ip: *ip, name: base.clone(), ports: &svc.ports }));
            }
            Exported::Headless(exporters) => {
                for (c, svc) in &exporters {
                    if cluster.is_some_and(|want| want != c.id) {
                        continue;
                    }
                    for (e, slice) in ready_endpoints(c.stanza, c.snap.slices_of(&svc.key)) {
                        for ip in &e.addresses {
                            let label = endpoint_hostname(e, ip, c.stanza.endpoint_pod_names).to_ascii_lowercase();
                            if host.is_some_and(|want| want != label) {
                                continue;
                            }
                            targets.push(Target { ip: *ip, name: format!("{label}.{}.{base}", c.id), ports: &slice.ports });
                        }
                    }
                }
                if targets.is_empty() {
                    return Found::NameError;
                }
                // `<clusterid>.<svc>…` has names below it and none of its own.
                if host.is_none() && cluster.is_some() {
                    return Found::Empty;
                }
            }
        }
        if port.is_some() || protocol.is_some() {
            if !targets.iter().any(|t| t.ports.iter().any(|p| !p.name.is_empty() && wants(p))) {
                return Found::NameError;
            }
            // `_<proto>.<svc>…` alone: a name with SRV names below it.
            if port.is_none() {
                return Found::Empty;
            }
            for t in &mut targets {
                let ports = t.ports;
                t.ports = match ports.iter().position(|p| !p.name.is_empty() && wants(p)) {
                    Some(i) => &ports[i..=i],
                    None => &[],
                };
            }
            targets.retain(|t| !t.ports.is_empty());
        }
        Found::Targets(targets)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{MessageType, OpCode, Query as Question};

    use super::*;
    use crate::handler::{Plugin, Query, Transport};
    use crate::snapshot::{Event, Kind};

    const NS: &str = r#"{"metadata":{"name":"shop"}}"#;
    const DB: &str = r#"{"metadata":{"name":"db","namespace":"shop"},"spec":{"clusterIP":"None","ports":[{"name":"pg","port":5432}]}}"#;
    const EXPORT: &str = r#"{"metadata":{"name":"db","namespace":"shop"}}"#;

    /// A slice of `db` with `n` ready endpoints at 10.`net`.0.1…
    fn slice(net: u8, n: u8) -> String {
        let endpoints: Vec<String> = (1..=n)
            .map(|i| format!(r#"{{"addresses":["10.{net}.0.{i}"],"hostname":"db-{i}","conditions":{{"ready":true}}}}"#))
            .collect();
        format!(
            r#"{{"metadata":{{"name":"db-{net}","namespace":"shop","labels":{{"kubernetes.io/service-name":"db"}}}},"addressType":"IPv4","ports":[{{"name":"pg","port":5432,"protocol":"TCP"}}],"endpoints":[{}]}}"#,
            endpoints.join(",")
        )
    }

    fn member(stanza: usize, id: &str, export_all: bool) -> Member {
        Member { stanza, zone: "clusterset.local.".into(), cluster_id: id.into(), export_all }
    }

    /// Two members: `a` (by ServiceExport) and `b` (`all`), each with a `db` of `n` endpoints;
    /// `synced` says which have synced.
    fn plugin(n: u8, synced: [bool; 2], fallthrough: bool) -> Plugin {
        let mut a = Stanza::new(&["a.local."]);
        a.fallthrough = fallthrough.then(|| vec!["clusterset.local.".to_string()]);
        let mut p = Plugin::new(BlockFacts::default(), vec![a, Stanza::new(&["b.local."])]).expect("configured");
        p.serve_clusterset(vec![member(0, "a", false), member(1, "b", true)]).expect("clusterset");
        for (i, net) in [(0, 1), (1, 2)] {
            let mut events =
                vec![Event::Apply(Kind::Namespace, NS.into()), Event::Apply(Kind::Service, DB.into()), Event::Apply(Kind::EndpointSlice, slice(net, n))];
            if i == 0 {
                events.push(Event::Apply(Kind::ServiceExport, EXPORT.into()));
            }
            events.push(Event::Synced(synced[i]));
            p.apply(i, 1, events).expect("stanza");
        }
        p
    }

    fn ask(p: &Plugin, name: &str, qtype: RecordType, max_size: u16) -> Outcome {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(Name::from_ascii(name).expect("name"), qtype));
        let packet = m.to_vec().expect("query");
        p.handle(&Query { packet: &packet, client: "10.0.0.1", transport: Transport::Udp, max_size })
    }

    fn answer(p: &Plugin, name: &str, qtype: RecordType, max_size: u16) -> Message {
        match ask(p, name, qtype, max_size) {
            Outcome::Answer(bytes) => Message::from_vec(&bytes).expect("a response"),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn addresses(m: &Message) -> Vec<String> {
        let mut out: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        out.sort();
        out
    }

    #[test]
    fn an_unsynced_member_contributes_nothing_and_none_synced_is_servfail() {
        let p = plugin(1, [true, false], false);
        assert_eq!(addresses(&answer(&p, "db.shop.svc.clusterset.local.", RecordType::A, 512)), ["10.1.0.1"]);
        assert_eq!(
            answer(&p, "db-1.b.db.shop.svc.clusterset.local.", RecordType::A, 512).metadata.response_code,
            ResponseCode::NXDomain
        );
        let none = plugin(1, [false, false], false);
        assert_eq!(
            answer(&none, "db.shop.svc.clusterset.local.", RecordType::A, 512).metadata.response_code,
            ResponseCode::ServFail
        );
        let both = plugin(1, [true, true], false);
        assert_eq!(addresses(&answer(&both, "db.shop.svc.clusterset.local.", RecordType::A, 512)), ["10.1.0.1", "10.2.0.1"]);
    }

    #[test]
    fn a_member_that_falls_through_passes_name_errors_on() {
        let p = plugin(1, [true, true], true);
        assert_eq!(ask(&p, "nope.shop.svc.clusterset.local.", RecordType::A, 512), Outcome::Next);
        assert!(matches!(ask(&p, "db.shop.svc.clusterset.local.", RecordType::A, 512), Outcome::Answer(_)));
    }

    #[test]
    fn a_large_headless_answer_is_cut_to_the_clients_size_with_tc() {
        let p = plugin(40, [true, true], false);
        let cut = answer(&p, "db.shop.svc.clusterset.local.", RecordType::A, 512);
        assert!(cut.metadata.truncation && !cut.answers.is_empty() && cut.answers.len() < 80, "{}", cut.answers.len());
        let whole = answer(&p, "db.shop.svc.clusterset.local.", RecordType::A, 65535);
        assert!(!whole.metadata.truncation);
        assert_eq!(whole.answers.len(), 80);
    }

    #[test]
    fn the_zone_transfers_every_exported_record_between_two_soas() {
        let p = plugin(2, [true, true], false);
        let mut m = Message::new(9, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(Name::from_ascii("clusterset.local.").expect("name"), RecordType::AXFR));
        let messages = p.transfer(&m.to_vec().expect("query")).expect("a clusterset zone");
        let records: Vec<Record> =
            messages.iter().flat_map(|b| Message::from_vec(b).expect("a message").answers).collect();
        let text: Vec<String> = records.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
        assert_eq!(records.first().map(Record::record_type), Some(RecordType::SOA));
        assert_eq!(records.last().map(Record::record_type), Some(RecordType::SOA));
        for want in [
            "db.shop.svc.clusterset.local. A 10.1.0.2",
            "db-2.b.db.shop.svc.clusterset.local. A 10.2.0.2",
            "_pg._tcp.db.shop.svc.clusterset.local. SRV 0 25 5432 db-1.a.db.shop.svc.clusterset.local.",
            "clusterset.local. NS ns.dns.clusterset.local.",
        ] {
            assert!(text.iter().any(|t| t == want), "{want} in {text:#?}");
        }
    }

    #[test]
    fn memberships_are_checked() {
        assert!(validate(&[member(0, "a", false), member(1, "b", false)], 2).is_ok());
        assert!(matches!(validate(&[member(2, "a", false)], 2), Err(ConfigError::ClustersetStanza(2))));
        assert!(matches!(validate(&[member(0, "A_b", false)], 1), Err(ConfigError::ClustersetId(_))));
        assert!(matches!(validate(&[member(0, "a", false), member(1, "a", true)], 2), Err(ConfigError::ClustersetDuplicate { .. })));
        let other_zone = Member { zone: "other.local.".into(), ..member(1, "a", false) };
        assert!(validate(&[member(0, "a", false), other_zone], 2).is_ok(), "ids are unique per zone");
    }
}
