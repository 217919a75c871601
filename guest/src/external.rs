//! CoreDNS's `k8s_external`: a zone whose names are the block's services as seen from outside
//! their cluster. `<service>.<namespace>.<zone>` answers the service's external IPs and load
//! balancer ingress (addresses as A/AAAA, host names as CNAMEs the host completes), with
//! `headless` a headless service's ready endpoints (and `<endpoint>.<service>.<namespace>`),
//! `_<port>._<proto>.<service>.<namespace>` SRV records, PTRs of those addresses, and the zone's
//! own SOA and NS under `<apex>.<zone>`. A service is taken from the first stanza, in Corefile
//! order, that holds it and exposes its namespace — the rule a block with several clusters
//! needs, which CoreDNS (one kubernetes plugin per block) never had to state.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::config::{BlockFacts, ConfigError, ExternalZone, Stanza};
use crate::message::{address, encode, reply, srv_weight};
use crate::outcome::Outcome;
use crate::name;
use crate::object::{ExternalHost, Port, Service};
use crate::resolve::{endpoint_hostname, namespace_exposed, ready_endpoints};
use crate::snapshot::Snapshot;

/// The SOA's refresh, retry and expire, as CoreDNS's plugin writes them.
const SOA_TIMERS: (i32, i32, i32) = (7200, 1800, 86400);

/// One thing a name resolves to: where, on which port, named how (relative to the zone).
struct Target {
    host: ExternalHost,
    port: u16,
    /// The port's name and protocol, for the SRV names of a transfer.
    port_name: crate::atom::Text,
    protocol: crate::atom::Text,
    /// `service.namespace` or `endpoint.service.namespace`: the SRV target's name.
    name: String,
}

/// What a name of the zone is.
enum Found {
    /// Targets (possibly none for this type: NODATA).
    Targets(Vec<Target>),
    /// A namespace, or `<apex>`: exists, holds nothing of its own.
    Empty,
    NameError,
}

impl ExternalZone {
    /// Checks what `configure-external` was given.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.zones.is_empty() {
            return Err(ConfigError::NoExternalZones);
        }
        if self.apex.is_empty() || self.apex.contains('.') {
            return Err(ConfigError::ExternalApex(self.apex.clone()));
        }
        Ok(())
    }
}

/// The answer to a query for a name of the external zone, or None when it is not one.
pub(crate) fn answer(from: Sources<'_>, req: &Message, asked: &str, qname: &str, qtype: RecordType, max_size: u16) -> Option<Outcome> {
    let ext = from.zone;
    let zone = name::longest_zone(qname, &ext.zones)?;
    let zone_cased = &asked[asked.len() - zone.len()..];
    let owner = Name::from_ascii(asked).ok()?;
    let z = Zone { ext, zone_cased, from };
    let soa = z.soa();
    let respond = |rcode, answers: Vec<Record>, authority: Vec<Record>, extra: Vec<Record>| {
        let mut m = reply(req, rcode, true);
        (m.answers, m.authorities, m.additionals) = (answers, authority, extra);
        Some(Outcome::Answer(encode(m, max_size)))
    };
    let labels = name::labels_below(qname, zone).unwrap_or_default();
    // The zone's own names: the apex, and `<apex>.<zone>` below it.
    if labels.is_empty() {
        return match qtype {
            RecordType::SOA => respond(ResponseCode::NoError, vec![soa], vec![], vec![]),
            RecordType::NS => {
                let ns = z.in_zone(&format!("ns1.{}", ext.apex))?;
                let extra = z.ns_addresses().into_iter().map(|ip| address(ns.clone(), ext.ttl, ip)).collect();
                respond(ResponseCode::NoError, vec![Record::from_rdata(owner, ext.ttl, RData::NS(NS(ns)))], vec![], extra)
            }
            _ => respond(ResponseCode::NoError, vec![], vec![soa], vec![]),
        };
    }
    if labels.last() == Some(&ext.apex.as_str()) {
        return match labels.as_slice() {
            [_] => respond(ResponseCode::NoError, vec![], vec![soa], vec![]),
            ["ns1", _] => {
                let want_v4 = qtype == RecordType::A;
                let addrs: Vec<Record> = if matches!(qtype, RecordType::A | RecordType::AAAA) {
                    z.ns_addresses().into_iter().filter(|ip| ip.is_ipv4() == want_v4).map(|ip| address(owner.clone(), ext.ttl, ip)).collect()
                } else {
                    vec![]
                };
                let authority = if addrs.is_empty() { vec![soa] } else { vec![] };
                respond(ResponseCode::NoError, addrs, authority, vec![])
            }
            _ => respond(ResponseCode::NXDomain, vec![], vec![soa], vec![]),
        };
    }
    let found = if qtype == RecordType::PTR && let Some(ip) = name::reverse_address(qname) {
        return match z.reverse(ip) {
            names if names.is_empty() => {
                if ext.falls_through(qname) {
                    return Some(Outcome::Next);
                }
                respond(ResponseCode::NXDomain, vec![], vec![soa], vec![])
            }
            names => {
                let answers = names.into_iter().map(|n| Record::from_rdata(owner.clone(), ext.ttl, RData::PTR(PTR(n)))).collect();
                respond(ResponseCode::NoError, answers, vec![], vec![])
            }
        };
    } else {
        z.lookup(&labels)
    };
    let targets = match found {
        Found::NameError if ext.falls_through(qname) => return Some(Outcome::Next),
        Found::NameError => return respond(ResponseCode::NXDomain, vec![], vec![soa], vec![]),
        Found::Empty => return respond(ResponseCode::NoError, vec![], vec![soa], vec![]),
        Found::Targets(t) => t,
    };
    let (mut answers, mut extra, mut chase) = (Vec::new(), Vec::new(), None);
    match qtype {
        RecordType::A | RecordType::AAAA => {
            let want_v4 = qtype == RecordType::A;
            let mut seen: Vec<&ExternalHost> = Vec::new();
            for t in &targets {
                if seen.contains(&&t.host) {
                    continue;
                }
                seen.push(&t.host);
                match &t.host {
                    ExternalHost::Ip(ip) if ip.is_ipv4() == want_v4 => answers.push(address(owner.clone(), ext.ttl, *ip)),
                    ExternalHost::Ip(_) => {}
                    ExternalHost::Name(host) => {
                        let Ok(target) = Name::from_ascii(format!("{host}.")) else { continue };
                        answers.push(Record::from_rdata(owner.clone(), ext.ttl, RData::CNAME(CNAME(target))));
                        chase.get_or_insert(format!("{host}."));
                    }
                }
            }
        }
        RecordType::SRV => {
            let weight = srv_weight(targets.len());
            let mut seen: Vec<(Name, u16)> = Vec::new();
            for t in &targets {
                let target = match &t.host {
                    ExternalHost::Name(host) => Name::from_ascii(format!("{host}.")).ok(),
                    ExternalHost::Ip(_) => z.in_zone(&t.name),
                };
                let Some(target) = target else { continue };
                if seen.contains(&(target.clone(), t.port)) {
                    continue;
                }
                seen.push((target.clone(), t.port));
                answers.push(Record::from_rdata(owner.clone(), ext.ttl, RData::SRV(SRV::new(0, weight, t.port, target.clone()))));
                if let ExternalHost::Ip(ip) = t.host
                    && !extra.iter().any(|r: &Record| r.name == target && ip_of(r) == Some(ip))
                {
                    extra.push(address(target, ext.ttl, ip));
                }
            }
        }
        _ => {}
    }
    if let Some(target) = chase {
        let mut m = reply(req, ResponseCode::NoError, true);
        m.answers = answers;
        return Some(Outcome::Chase { response: encode(m, u16::MAX), target, qtype: u16::from(qtype) });
    }
    let authority = if answers.is_empty() { vec![soa] } else { vec![] };
    respond(ResponseCode::NoError, answers, authority, extra)
}

/// Every record of the external zone `zone` as AXFR sends it: SOA, NS and its addresses, each
/// service's addresses (a headless one's per endpoint too) and SRV records of its named ports,
/// SOA. None when `zone` is not one of its zones.
pub(crate) fn transfer(from: Sources<'_>, zone: &str) -> Option<Vec<Record>> {
    let ext = from.zone;
    let zone = ext.zones.iter().find(|z| *z == zone)?;
    let z = Zone { ext, zone_cased: zone, from };
    let soa = z.soa();
    let mut records = vec![soa.clone()];
    let ns = z.in_zone(&format!("ns1.{}", ext.apex))?;
    records.push(Record::from_rdata(Name::from_ascii(zone).ok()?, ext.ttl, RData::NS(NS(ns.clone()))));
    records.extend(z.ns_addresses().into_iter().map(|ip| address(ns.clone(), ext.ttl, ip)));
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (_, snap) in from.stanzas {
        for svc in snap.services() {
            let key = (&*svc.key.namespace, &*svc.key.name);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let Found::Targets(targets) = z.lookup(&[key.1, key.0]) else { continue };
            let base = z.in_zone(&format!("{}.{}", key.1, key.0))?;
            let mut added: Vec<(Name, IpAddr)> = Vec::new();
            for t in &targets {
                let ExternalHost::Ip(ip) = t.host else { continue };
                for owner in [base.clone(), z.in_zone(&t.name)?] {
                    if !added.contains(&(owner.clone(), ip)) {
                        added.push((owner.clone(), ip));
                        records.push(address(owner, ext.ttl, ip));
                    }
                }
                // As the cluster zones: unnamed ports have no SRV record.
                if t.port_name.is_empty() {
                    continue;
                }
                let srv_name = z.in_zone(&format!("_{}._{}.{}", t.port_name.to_ascii_lowercase(), t.protocol.to_ascii_lowercase(), t.name))?;
                let target = z.in_zone(&t.name)?;
                records.push(Record::from_rdata(srv_name, ext.ttl, RData::SRV(SRV::new(0, srv_weight(1), t.port, target))));
            }
        }
    }
    records.push(soa);
    Some(records)
}

fn ip_of(r: &Record) -> Option<IpAddr> {
    match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// What the external zone is answered from: its options, the server's own addresses and the
/// block's stanzas in Corefile order.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub zone: &'a ExternalZone,
    pub server: &'a BlockFacts,
    pub stanzas: &'a [(Stanza, Snapshot)],
}

/// One query's view of the external zone.
struct Zone<'a> {
    ext: &'a ExternalZone,
    zone_cased: &'a str,
    from: Sources<'a>,
}

impl Zone<'_> {
    fn in_zone(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(name::join(relative, self.zone_cased)).ok()
    }

    fn soa(&self) -> Record {
        let zone = Name::from_ascii(self.zone_cased).unwrap_or_else(|_| Name::root());
        let mname = self.in_zone(&format!("ns1.{}", self.ext.apex)).unwrap_or_else(Name::root);
        let rname = self.in_zone(&format!("hostmaster.{}", self.ext.apex)).unwrap_or_else(Name::root);
        // The time of the last change of any stanza, as the cluster zones' serial.
        let serial = self.from.stanzas.iter().map(|(_, snap)| snap.modified()).max().unwrap_or(0) as u32;
        let (refresh, retry, expire) = SOA_TIMERS;
        let soa = SOA::new(mname, rname, serial, refresh, retry, expire, self.ext.ttl);
        Record::from_rdata(zone, self.ext.ttl, RData::SOA(soa))
    }

    /// The zone's name server addresses, as CoreDNS's: the external addresses of the service
    /// in front of this server (whose endpoints hold one of its addresses), else its addresses.
    fn ns_addresses(&self) -> Vec<IpAddr> {
        let local = &self.from.server.local_ips;
        let mut out = Vec::new();
        for (_, snap) in self.from.stanzas {
            for svc in snap.services() {
                let fronts =
                    snap.slices_of(&svc.key).any(|s| s.endpoints.iter().any(|e| e.addresses.iter().any(|a| local.contains(a))));
                if fronts {
                    for host in &svc.external {
                        if let ExternalHost::Ip(ip) = host
                            && !out.contains(ip)
                        {
                            out.push(*ip);
                        }
                    }
                }
            }
        }
        if out.is_empty() { local.clone() } else { out }
    }

    /// The first stanza holding `namespace/service` with its namespace exposed.
    fn service(&self, namespace: &str, service: &str) -> Option<(&Stanza, &Snapshot, &Service)> {
        self.from.stanzas.iter().find_map(|(stanza, snap)| {
            let svc = snap.service(namespace, service)?;
            namespace_exposed(stanza, snap, namespace).then_some((stanza, snap, svc))
        })
    }

    /// What the labels below the zone name, as CoreDNS's `External` reads them: `ns`,
    /// `svc.ns`, `endpoint.svc.ns`, `_port._proto.svc.ns`.
    fn lookup(&self, labels: &[&str]) -> Found {
        let Some((&namespace, rest)) = labels.split_last() else { return Found::NameError };
        let exposed = self.from.stanzas.iter().any(|(stanza, snap)| namespace_exposed(stanza, snap, namespace));
        if !exposed {
            return Found::NameError;
        }
        let Some((&service, rest)) = rest.split_last() else { return Found::Empty };
        let strip = |l: &str| l.strip_prefix('_').unwrap_or(l).to_string();
        let (endpoint, port, protocol) = match rest {
            [] => (None, None, None),
            [endpoint] => (Some(strip(endpoint)), None, None),
            [port, protocol] => (None, Some(strip(port)), Some(strip(protocol))),
            _ => return Found::NameError,
        };
        let Some((stanza, snap, svc)) = self.service(namespace, service) else { return Found::NameError };
        let matches = |p: &Port| {
            port.as_ref().is_none_or(|want| want.eq_ignore_ascii_case(&p.name))
                && protocol.as_ref().is_none_or(|want| want.eq_ignore_ascii_case(&p.protocol))
        };
        let base = format!("{service}.{namespace}");
        let mut targets = Vec::new();
        if self.ext.headless && svc.external.is_empty() && (svc.is_headless() || endpoint.is_some()) {
            for (e, slice) in ready_endpoints(stanza, snap.slices_of(&svc.key)) {
                for ip in &e.addresses {
                    let host = endpoint_hostname(e, ip, stanza.endpoint_pod_names);
                    if endpoint.as_ref().is_some_and(|want| !want.eq_ignore_ascii_case(&host)) {
                        continue;
                    }
                    for p in slice.ports.iter().filter(|p| matches(p)) {
                        let Ok(port) = u16::try_from(p.port) else { continue };
                        targets.push(Target {
                            host: ExternalHost::Ip(*ip),
                            port,
                            port_name: p.name.clone(),
                            protocol: p.protocol.clone(),
                            name: format!("{host}.{base}"),
                        });
                    }
                }
            }
        } else if endpoint.is_none() {
            for host in &svc.external {
                for p in svc.ports.iter().filter(|p| matches(p)) {
                    let Ok(port) = u16::try_from(p.port) else { continue };
                    targets.push(Target {
                        host: host.clone(),
                        port,
                        port_name: p.name.clone(),
                        protocol: p.protocol.clone(),
                        name: base.clone(),
                    });
                }
            }
        }
        if targets.is_empty() { Found::NameError } else { Found::Targets(targets) }
    }

    /// `service.namespace.<first zone>` for each service holding `ip` as an external address.
    fn reverse(&self, ip: IpAddr) -> Vec<Name> {
        let Some(first) = self.ext.zones.first() else { return vec![] };
        let mut out: Vec<Name> = Vec::new();
        for (stanza, snap) in self.from.stanzas {
            for svc in snap.services().filter(|s| s.external.contains(&ExternalHost::Ip(ip))) {
                if !namespace_exposed(stanza, snap, &svc.key.namespace) {
                    continue;
                }
                if let Ok(n) = Name::from_ascii(name::join(&format!("{}.{}", svc.key.name, svc.key.namespace), first))
                    && !out.contains(&n)
                {
                    out.push(n);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{MessageType, OpCode, Query as Question};

    use super::*;
    use crate::handler::{Plugin, Query, Transport};
    use crate::snapshot::{Event, Kind};
    use crate::{BlockFacts, Stanza};

    const WEB: &str = r#"{"metadata":{"name":"web","namespace":"shop"},"spec":{"clusterIP":"10.96.0.10","externalIPs":["192.0.2.10"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#;
    const LB: &str = r#"{"metadata":{"name":"lb","namespace":"shop"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.0.11","ports":[{"name":"https","port":443,"protocol":"TCP"}]},"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.7"},{"ip":"2001:db8::7"}]}}}"#;
    const ELB: &str = r#"{"metadata":{"name":"elb","namespace":"shop"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.0.12","ports":[{"port":80,"protocol":"TCP"}]},"status":{"loadBalancer":{"ingress":[{"hostname":"a1.elb.example.com"}]}}}"#;
    const INTERNAL: &str = r#"{"metadata":{"name":"internal","namespace":"shop"},"spec":{"clusterIP":"10.96.0.13","ports":[{"port":80}]}}"#;
    const DB: &str = r#"{"metadata":{"name":"db","namespace":"shop"},"spec":{"clusterIP":"None","ports":[{"name":"pg","port":5432}]}}"#;
    const DB_SLICE: &str = r#"{"metadata":{"name":"db-1","namespace":"shop","labels":{"kubernetes.io/service-name":"db"}},"addressType":"IPv4","ports":[{"name":"pg","port":5432,"protocol":"TCP"}],"endpoints":[{"addresses":["10.1.0.1"],"hostname":"db-0","conditions":{"ready":true}}]}"#;
    /// The second stanza's `web`: the first stanza's wins.
    const OTHER_WEB: &str = r#"{"metadata":{"name":"web","namespace":"shop"},"spec":{"clusterIP":"10.97.0.10","externalIPs":["203.0.113.10"],"ports":[{"name":"http","port":80}]}}"#;
    const ONLY_OTHER: &str = r#"{"metadata":{"name":"far","namespace":"shop"},"spec":{"clusterIP":"10.97.0.20","externalIPs":["203.0.113.20"],"ports":[{"port":80}]}}"#;

    fn plugin(headless: bool, fallthrough: bool) -> Plugin {
        let stanzas = vec![Stanza::new(&["cluster.local."]), Stanza::new(&["dc1.local."])];
        let mut p = Plugin::new(BlockFacts::default(), stanzas).expect("configured");
        p.serve_external(ExternalZone {
            zones: vec!["example.org.".into()],
            apex: "dns".into(),
            ttl: 5,
            headless,
            fallthrough: fallthrough.then(|| vec![".".to_string()]),
        })
        .expect("external");
        let ns = r#"{"metadata":{"name":"shop"}}"#;
        let mut first = vec![Event::Apply(Kind::Namespace, ns.into())];
        for s in [WEB, LB, ELB, INTERNAL, DB] {
            first.push(Event::Apply(Kind::Service, s.into()));
        }
        first.push(Event::Apply(Kind::EndpointSlice, DB_SLICE.into()));
        first.push(Event::Synced(true));
        p.apply(0, 1, first).expect("stanza 0");
        let second = vec![
            Event::Apply(Kind::Namespace, ns.into()),
            Event::Apply(Kind::Service, OTHER_WEB.into()),
            Event::Apply(Kind::Service, ONLY_OTHER.into()),
            Event::Synced(true),
        ];
        p.apply(1, 1, second).expect("stanza 1");
        p
    }

    fn ask(p: &Plugin, name: &str, qtype: RecordType) -> Outcome {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(Name::from_ascii(name).expect("name"), qtype));
        let packet = m.to_vec().expect("packet");
        p.handle(&Query { packet: &packet, client: "10.0.0.1", transport: Transport::Udp, max_size: 4096 })
    }

    /// rcode, then the answer's records as text, then the authority's types.
    fn answered(p: &Plugin, name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>, Vec<RecordType>) {
        let Outcome::Answer(bytes) = ask(p, name, qtype) else { panic!("{name} {qtype}: not an answer") };
        let m = Message::from_vec(&bytes).expect("a response");
        let answers = m.answers.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
        (m.metadata.response_code, answers, m.authorities.iter().map(Record::record_type).collect())
    }

    #[test]
    fn external_names_answer_as_coredns_k8s_external_does() {
        use RecordType::*;
        type Case = (&'static str, RecordType, ResponseCode, &'static [&'static str], &'static [RecordType]);
        let cases: &[Case] = &[
            ("web.shop.example.org.", A, ResponseCode::NoError, &["web.shop.example.org. A 192.0.2.10"], &[]),
            ("lb.shop.example.org.", A, ResponseCode::NoError, &["lb.shop.example.org. A 198.51.100.7"], &[]),
            ("lb.shop.example.org.", AAAA, ResponseCode::NoError, &["lb.shop.example.org. AAAA 2001:db8::7"], &[]),
            ("web.shop.example.org.", AAAA, ResponseCode::NoError, &[], &[SOA]),
            ("web.shop.example.org.", TXT, ResponseCode::NoError, &[], &[SOA]),
            (
                "_http._tcp.web.shop.example.org.",
                SRV,
                ResponseCode::NoError,
                &["_http._tcp.web.shop.example.org. SRV 0 100 80 web.shop.example.org."],
                &[],
            ),
            ("_ftp._tcp.web.shop.example.org.", SRV, ResponseCode::NXDomain, &[], &[SOA]),
            // No external address: not a name of this zone (its cluster zone has it).
            ("internal.shop.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
            ("nothing.shop.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
            ("shop.example.org.", A, ResponseCode::NoError, &[], &[SOA]),
            ("gone.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
            ("a.b.c.d.e.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
            // Headless without `headless`: nothing.
            ("db.shop.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
            // The first stanza holding the service answers; a service only the second holds too.
            ("far.shop.example.org.", A, ResponseCode::NoError, &["far.shop.example.org. A 203.0.113.20"], &[]),
            // The zone's own records.
            ("example.org.", NS, ResponseCode::NoError, &["example.org. NS ns1.dns.example.org."], &[]),
            ("dns.example.org.", A, ResponseCode::NoError, &[], &[SOA]),
            ("x.y.dns.example.org.", A, ResponseCode::NXDomain, &[], &[SOA]),
        ];
        let p = plugin(false, false);
        for (name, qtype, rcode, answers, authority) in cases {
            let (got_rcode, got_answers, got_authority) = answered(&p, name, *qtype);
            let got_answers: Vec<&str> = got_answers.iter().map(String::as_str).collect();
            assert_eq!((got_rcode, &got_answers[..], &got_authority[..]), (*rcode, *answers, *authority), "{name} {qtype}");
        }
        let (_, soa, _) = answered(&p, "example.org.", SOA);
        assert!(soa[0].starts_with("example.org. SOA ns1.dns.example.org. hostmaster.dns.example.org. 1 7200 1800 86400 5"), "{soa:?}");
    }

    #[test]
    fn headless_endpoints_host_names_and_fallthrough() {
        let p = plugin(true, true);
        assert_eq!(answered(&p, "db.shop.example.org.", RecordType::A).1, ["db.shop.example.org. A 10.1.0.1"]);
        assert_eq!(answered(&p, "db-0.db.shop.example.org.", RecordType::A).1, ["db-0.db.shop.example.org. A 10.1.0.1"]);
        assert_eq!(
            answered(&p, "_pg._tcp.db.shop.example.org.", RecordType::SRV).1,
            ["_pg._tcp.db.shop.example.org. SRV 0 100 5432 db-0.db.shop.example.org."]
        );
        // A load balancer's host name: a CNAME the host completes.
        match ask(&p, "elb.shop.example.org.", RecordType::A) {
            Outcome::Chase { target, .. } => assert_eq!(target, "a1.elb.example.com."),
            other => panic!("{other:?}"),
        }
        // Nothing here: the next plugin.
        assert!(matches!(ask(&p, "nothing.shop.example.org.", RecordType::A), Outcome::Next));
        // The cluster zones are untouched.
        assert_eq!(answered(&p, "web.shop.svc.cluster.local.", RecordType::A).1, ["web.shop.svc.cluster.local. A 10.96.0.10"]);
    }

    #[test]
    fn the_external_zone_transfers_with_the_soa_first_and_last() {
        let p = plugin(true, false);
        let records = transfer(p.external_sources().expect("k8s_external"), "example.org.").expect("the zone");
        let text: Vec<String> = records.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
        assert_eq!(records.first().map(Record::record_type), Some(RecordType::SOA));
        assert_eq!(records.last().map(Record::record_type), Some(RecordType::SOA));
        for want in [
            "web.shop.example.org. A 192.0.2.10",
            "_http._tcp.web.shop.example.org. SRV 0 100 80 web.shop.example.org.",
            "lb.shop.example.org. AAAA 2001:db8::7",
            "db-0.db.shop.example.org. A 10.1.0.1",
            "db.shop.example.org. A 10.1.0.1",
            "far.shop.example.org. A 203.0.113.20",
        ] {
            assert!(text.iter().any(|t| t == want), "{want} in {text:#?}");
        }
        // The second stanza's `web` is shadowed by the first's.
        assert!(!text.iter().any(|t| t.contains("203.0.113.10")), "{text:#?}");
        assert!(transfer(p.external_sources().expect("k8s_external"), "other.org.").is_none());
    }

    #[test]
    fn reverse_names_of_external_addresses() {
        let stanzas = vec![Stanza::new(&["cluster.local."])];
        let mut p = Plugin::new(BlockFacts::default(), stanzas).expect("configured");
        p.serve_external(ExternalZone {
            zones: vec!["example.org.".into(), "in-addr.arpa.".into()],
            apex: "dns".into(),
            ttl: 5,
            headless: false,
            fallthrough: None,
        })
        .expect("external");
        let events = vec![
            Event::Apply(Kind::Namespace, r#"{"metadata":{"name":"shop"}}"#.into()),
            Event::Apply(Kind::Service, WEB.into()),
            Event::Synced(true),
        ];
        p.apply(0, 1, events).expect("stanza");
        assert_eq!(answered(&p, "10.2.0.192.in-addr.arpa.", RecordType::PTR).1, ["10.2.0.192.in-addr.arpa. PTR web.shop.example.org."]);
        assert_eq!(answered(&p, "11.2.0.192.in-addr.arpa.", RecordType::PTR).0, ResponseCode::NXDomain);
    }
}
