//! Zone transfers: every record of a stanza's zone (or of the `k8s_external` zone, `external`), in the order CoreDNS's kubernetes plugin
//! streams them (SOA, NS and their addresses, each service by name, SOA), cut into messages a
//! TCP frame can carry. Which peers may transfer is the host's decision.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::handler::{Ctx, Plugin};
use crate::message::{address, srv_weight};
use crate::object::{Endpoint, Port, ServiceKind};
use crate::resolve::{self, endpoint_hostname};

/// Records per message: with name compression even long service names stay far below 64 KiB.
const RECORDS_PER_MESSAGE: usize = 200;

impl Plugin {
    /// The messages of a transfer of the zone `query` asks for, or None when no stanza is
    /// authoritative for it (or the query is no transfer).
    pub fn transfer(&self, query: &[u8]) -> Option<Vec<Vec<u8>>> {
        let req = Message::from_vec(query).ok()?;
        let question = req.queries.first()?;
        let qtype = question.query_type();
        if !matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return None;
        }
        let mut asked = question.name().to_ascii().to_ascii_lowercase();
        if !asked.ends_with('.') {
            asked.push('.');
        }
        if let Some(records) = self.external_sources().and_then(|from| crate::external::transfer(from, &asked)) {
            return Some(messages(&req, records));
        }
        if let Some(records) = self.clusterset_sources().and_then(|from| crate::clusterset::transfer(from, &asked)) {
            return Some(messages(&req, records));
        }
        // A transfer is of a whole zone: the name must be one of the stanza's zones.
        let (stanza, snap) = self.stanzas.iter().find(|(s, _)| s.zones.contains(&asked))?;
        let zone = stanza.zones.iter().find(|z| **z == asked)?;
        let ctx = Ctx {
            stanza,
            snap,
            server: &self.server,
            zone,
            zone_cased: zone,
            owner: Name::from_ascii(zone).ok()?,
            chase: std::cell::RefCell::new(None),
        };
        let soa = ctx.soa();
        // An IXFR from a serial as new as ours or newer has nothing to catch up on.
        let current = matches!(&soa.data, RData::SOA(s) if ixfr_serial(&req).is_some_and(|serial| serial >= s.serial));
        let mut records = vec![soa.clone()];
        if !current {
            let (ns, ns_addresses) = ctx.ns();
            records.extend(ns);
            records.extend(ns_addresses);
            if stanza.is_multicluster(zone) {
                service_imports(&ctx, &mut records);
            } else {
                services(&ctx, &mut records);
            }
            records.push(soa);
        }
        Some(messages(&req, records))
    }
}

/// The serial an IXFR query holds in its authority section.
fn ixfr_serial(req: &Message) -> Option<u32> {
    if req.queries.first()?.query_type() != RecordType::IXFR {
        return None;
    }
    req.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

fn messages(req: &Message, records: Vec<Record>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in records.chunks(RECORDS_PER_MESSAGE) {
        let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m.metadata.response_code = ResponseCode::NoError;
        m.queries = req.queries.clone();
        m.answers = chunk.to_vec();
        if let Ok(bytes) = m.to_vec() {
            out.push(bytes);
        }
    }
    out
}

fn name(ctx: &Ctx, relative: &str) -> Option<Name> {
    ctx.in_zone(relative)
}

fn srv(ctx: &Ctx, owner: &str, weight: u16, port: i32, target: &Name) -> Option<Record> {
    let port = u16::try_from(port).ok()?;
    let srv = SRV::new(0, weight, port, target.clone());
    Some(Record::from_rdata(name(ctx, owner)?, ctx.ttl(), RData::SRV(srv)))
}

/// Address records for `base` and SRV records for each port, as a service with cluster IPs has.
fn with_ips(ctx: &Ctx, base: &str, ips: &[IpAddr], ports: &[Port], out: &mut Vec<Record>) {
    let Some(host) = name(ctx, base) else {
        return;
    };
    out.extend(ips.iter().map(|ip| address(host.clone(), ctx.ttl(), *ip)));
    for p in ports {
        // Peer finders read the bare service name's SRV records, so every port gets one there.
        out.extend(srv(ctx, base, 100, p.port, &host));
        // Unnamed ports have no SRV name of their own in the schema.
        if !p.name.is_empty() {
            let owner = format!("_{}._{}.{base}", p.name.to_lowercase(), p.protocol.to_lowercase());
            out.extend(srv(ctx, &owner, 100, p.port, &host));
        }
    }
}

/// Address records for the service name and each endpoint's own name, and SRV records per
/// named port, as a headless service has.
fn with_endpoints<'a>(
    ctx: &Ctx,
    base: &str,
    slices: impl Iterator<Item = (&'a [Endpoint], &'a [Port], Option<&'a str>)>,
    out: &mut Vec<Record>,
) {
    let Some(service) = name(ctx, base) else {
        return;
    };
    for (endpoints, ports, cluster) in slices {
        let ready: Vec<&Endpoint> = endpoints.iter().filter(|e| e.ready).collect();
        let weight = srv_weight(ready.iter().map(|e| e.addresses.len()).sum());
        for e in ready {
            for ip in &e.addresses {
                out.push(address(service.clone(), ctx.ttl(), *ip));
                let host = endpoint_hostname(e, ip, ctx.stanza.endpoint_pod_names);
                let relative = match cluster {
                    Some(c) => format!("{host}.{c}.{base}"),
                    None => format!("{host}.{base}"),
                };
                let Some(target) = name(ctx, &relative) else {
                    continue;
                };
                out.push(address(target.clone(), ctx.ttl(), *ip));
                for p in ports.iter().filter(|p| !p.name.is_empty()) {
                    let owner = format!("_{}._{}.{base}", p.name.to_lowercase(), p.protocol.to_lowercase());
                    out.extend(srv(ctx, &owner, weight, p.port, &target));
                }
            }
        }
    }
}

fn services(ctx: &Ctx, out: &mut Vec<Record>) {
    let mut services: Vec<_> =
        ctx.snap.services().filter(|s| resolve::namespace_exposed(ctx.stanza, ctx.snap, &s.key.namespace)).collect();
    services.sort_by(|a, b| (&a.key.name, &a.key.namespace).cmp(&(&b.key.name, &b.key.namespace)));
    for svc in services {
        let base = format!("{}.{}.svc", svc.key.name, svc.key.namespace);
        match &svc.kind {
            ServiceKind::ClusterIp(ips) => with_ips(ctx, &base, ips, &svc.ports, out),
            ServiceKind::Headless => {
                if ctx.stanza.noendpoints {
                    continue;
                }
                let slices = ctx.snap.slices_of(&svc.key).map(|s| (s.endpoints.as_slice(), s.ports.as_slice(), None));
                with_endpoints(ctx, &base, slices, out);
            }
            ServiceKind::ExternalName(target) => {
                let target = format!("{}.", target.trim_end_matches('.'));
                // An ExternalName holding an address is no name to point a CNAME at.
                if target.trim_end_matches('.').parse::<IpAddr>().is_ok() {
                    continue;
                }
                if let (Some(owner), Ok(t)) = (name(ctx, &base), Name::from_ascii(&target)) {
                    out.push(Record::from_rdata(owner, ctx.ttl(), RData::CNAME(CNAME(t))));
                }
            }
        }
    }
}

fn service_imports(ctx: &Ctx, out: &mut Vec<Record>) {
    let mut imports: Vec<_> = ctx
        .snap
        .service_imports()
        .filter(|s| resolve::namespace_exposed(ctx.stanza, ctx.snap, &s.key.namespace))
        .collect();
    imports.sort_by(|a, b| (&a.key.name, &a.key.namespace).cmp(&(&b.key.name, &b.key.namespace)));
    for import in imports {
        let base = format!("{}.{}.svc", import.key.name, import.key.namespace);
        if !import.headless {
            with_ips(ctx, &base, &import.ips, &import.ports, out);
        } else if !ctx.stanza.noendpoints {
            let slices = ctx
                .snap
                .slices_of_import(&import.key)
                .map(|s| (s.endpoints.as_slice(), s.ports.as_slice(), Some(&*s.cluster)));
            with_endpoints(ctx, &base, slices, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::*;
    use crate::config::{BlockFacts, Stanza};
    use crate::snapshot::{Event, Kind};

    fn plugin() -> Plugin {
        let mut p = Plugin::new(
            BlockFacts { local_ips: vec!["10.9.0.1".parse().unwrap()] },
            vec![Stanza::new(&["cluster.local."])],
        )
        .unwrap();
        let ns = r#"{"metadata":{"name":"ns"}}"#;
        let web = r#"{"metadata":{"namespace":"ns","name":"web"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1"],"ports":[{"name":"http","protocol":"TCP","port":80}]}}"#;
        let db = r#"{"metadata":{"namespace":"ns","name":"db"},"spec":{"clusterIP":"None","ports":[{"name":"pg","protocol":"TCP","port":5432}]}}"#;
        let db_slice = r#"{"metadata":{"namespace":"ns","name":"db-1","labels":{"kubernetes.io/service-name":"db"}},"ports":[{"name":"pg","protocol":"TCP","port":5432}],"endpoints":[{"addresses":["10.1.0.1"],"hostname":"db-0"}]}"#;
        let ext = r#"{"metadata":{"namespace":"ns","name":"ext"},"spec":{"type":"ExternalName","externalName":"example.org"}}"#;
        let events = vec![
            Event::Apply(Kind::Namespace, ns.into()),
            Event::Apply(Kind::Service, web.into()),
            Event::Apply(Kind::Service, db.into()),
            Event::Apply(Kind::EndpointSlice, db_slice.into()),
            Event::Apply(Kind::Service, ext.into()),
            Event::Synced(true),
        ];
        assert!(p.apply(0, 1_700_000_000, events).unwrap().is_empty());
        p
    }

    fn query(zone: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(zone).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn lines(messages: &[Vec<u8>]) -> Vec<String> {
        messages
            .iter()
            .flat_map(|m| Message::from_vec(m).unwrap().answers)
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
            .collect()
    }

    #[test]
    fn a_zone_transfers_as_coredns_streams_it() {
        let got = lines(&plugin().transfer(&query("cluster.local.", RecordType::AXFR)).unwrap());
        let soa = "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5";
        let want = [
            soa,
            "cluster.local. NS ns.dns.cluster.local.",
            "ns.dns.cluster.local. A 10.9.0.1",
            "db.ns.svc.cluster.local. A 10.1.0.1",
            "db-0.db.ns.svc.cluster.local. A 10.1.0.1",
            "_pg._tcp.db.ns.svc.cluster.local. SRV 0 100 5432 db-0.db.ns.svc.cluster.local.",
            "ext.ns.svc.cluster.local. CNAME example.org.",
            "web.ns.svc.cluster.local. A 10.0.0.1",
            "web.ns.svc.cluster.local. SRV 0 100 80 web.ns.svc.cluster.local.",
            "_http._tcp.web.ns.svc.cluster.local. SRV 0 100 80 web.ns.svc.cluster.local.",
            soa,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn only_whole_zones_transfer_and_a_current_ixfr_gets_the_soa() {
        let p = plugin();
        assert!(p.transfer(&query("ns.svc.cluster.local.", RecordType::AXFR)).is_none());
        assert!(p.transfer(&query("example.org.", RecordType::AXFR)).is_none());
        assert!(p.transfer(&query("cluster.local.", RecordType::A)).is_none());
        let mut ixfr = Message::from_vec(&query("cluster.local.", RecordType::IXFR)).unwrap();
        let soa = lines(&p.transfer(&query("cluster.local.", RecordType::AXFR)).unwrap()).remove(0);
        let full = Message::from_vec(&p.transfer(&query("cluster.local.", RecordType::AXFR)).unwrap()[0]).unwrap();
        ixfr.authorities.push(full.answers[0].clone());
        let got = lines(&p.transfer(&ixfr.to_vec().unwrap()).unwrap());
        assert_eq!(got, [soa]);
    }
}
