//! The records a stanza answers with, per query type, as CoreDNS's kubernetes plugin builds them
//! (its `backend_lookup.go`): addresses of services, endpoints and pods, SRV with their
//! targets, PTR, CNAME for ExternalName services, and the `dns-version` TXT.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{CNAME, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::handler::{Ctx, SCHEMA_VERSION, Sections};
use crate::message::{address, srv_weight};
use crate::name;
use crate::resolve::{self, Found, Host, NameError};

/// TTL of the `dns-version` record, as CoreDNS sets it.
const SCHEMA_TTL: u32 = 28800;
/// Longest CNAME chain followed inside a zone before giving up, as CoreDNS.
const MAX_CNAME_CHAIN: usize = 10;

impl Ctx<'_> {
    /// What a name resolves to for `qtype`, before records are built (CoreDNS's `Services`).
    pub(crate) fn services(&self, qname: &str, qtype: RecordType) -> resolve::Lookup {
        if matches!(qtype, RecordType::A | RecordType::AAAA) && self.is_default_ns(qname) {
            return Ok(self
                .ns_addresses()
                .into_iter()
                .filter(|(_, ip)| ip.is_ipv4() == (qtype == RecordType::A))
                .map(|(_, ip)| Found { host: Host::Ip(ip), port: -1, domain: String::new() })
                .collect());
        }
        if resolve::is_reverse(qname) && qtype == RecordType::PTR {
            return self.reverse(qname);
        }
        let found = resolve::records(self.stanza, self.snap, qname, self.zone)?;
        if qtype == RecordType::SRV {
            return Ok(found.into_iter().filter(|f| matches!(f.host, Host::Ip(_))).collect());
        }
        Ok(found)
    }

    pub(crate) fn is_default_ns(&self, qname: &str) -> bool {
        qname.strip_prefix("ns.dns.").is_some_and(|rest| rest == self.zone || (self.zone == "." && rest.is_empty()))
    }

    pub(crate) fn addresses(
        &self,
        qname: &str,
        owner: &Name,
        qtype: RecordType,
        chain: &mut Vec<String>,
    ) -> Result<Vec<Record>, NameError> {
        // The apex holds no addresses of its own.
        let found = if qname == self.zone { Vec::new() } else { self.services(qname, qtype)? };
        let mut out = Vec::new();
        let mut seen: Vec<IpAddr> = Vec::new();
        for f in found {
            match f.host {
                Host::Ip(ip) if ip.is_ipv4() == (qtype == RecordType::A) => {
                    if seen.contains(&ip) {
                        continue;
                    }
                    seen.push(ip);
                    out.push(address(owner.clone(), self.ttl(), ip));
                }
                Host::Ip(_) => {}
                Host::Name(target) => {
                    let target_fqdn = format!("{target}.");
                    if target_fqdn == qname || chain.len() > MAX_CNAME_CHAIN || chain.contains(&target_fqdn) {
                        continue;
                    }
                    let Ok(target_name) = Name::from_ascii(&target_fqdn) else {
                        continue;
                    };
                    let cname = Record::from_rdata(owner.clone(), self.ttl(), RData::CNAME(CNAME(target_name.clone())));
                    if name::is_subdomain(&target_fqdn, self.zone) {
                        chain.push(target_fqdn.clone());
                        if let Ok(next) = self.addresses(&target_fqdn, &target_name, qtype, chain)
                            && !next.is_empty()
                        {
                            out.push(cname);
                            out.extend(next);
                        }
                        continue;
                    }
                    // A target outside the zone: the host resolves it through the server's chain.
                    self.chase.borrow_mut().get_or_insert(target_fqdn);
                    out.push(cname);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn txt(&self, qname: &str) -> Result<Vec<Record>, NameError> {
        if name::labels_below(qname, self.zone).is_some_and(|l| l == ["dns-version"]) {
            let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
            return Ok(vec![Record::from_rdata(self.owner.clone(), SCHEMA_TTL, RData::TXT(txt))]);
        }
        // Kubernetes names hold no text: an existing name is NODATA, anything else a name error
        // (the apex and bare namespaces included, as CoreDNS answers them).
        let found = resolve::records(self.stanza, self.snap, qname, self.zone);
        match found {
            Ok(f) if !f.is_empty() => Ok(vec![]),
            Ok(_) if self.is_zonal_name(qname) => Ok(vec![]),
            Ok(_) => Err(NameError::NoItems),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn is_zonal_name(&self, qname: &str) -> bool {
        self.stanza.zonal
            && name::labels_below(qname, self.zone)
                .and_then(|l| crate::schema_name::parse(&l, self.stanza.is_multicluster(self.zone), true).ok())
                .is_some_and(|r| r.topology_zone.is_some())
    }

    pub(crate) fn cname(&self, qname: &str) -> Result<Vec<Record>, NameError> {
        let found = self.services(qname, RecordType::CNAME)?;
        Ok(match found.into_iter().next() {
            Some(Found { host: Host::Name(target), .. }) => Name::from_ascii(format!("{target}."))
                .map(|t| vec![Record::from_rdata(self.owner.clone(), self.ttl(), RData::CNAME(CNAME(t)))])
                .unwrap_or_default(),
            _ => vec![],
        })
    }

    pub(crate) fn ptr(&self, qname: &str) -> Result<Vec<Record>, NameError> {
        let found = self.services(qname, RecordType::PTR)?;
        let mut out: Vec<Record> = Vec::new();
        for f in found {
            if let Host::Name(target) = f.host {
                let Ok(t) = Name::from_ascii(format!("{target}.")) else {
                    continue;
                };
                if !out.iter().any(|r| matches!(&r.data, RData::PTR(p) if p.0 == t)) {
                    out.push(Record::from_rdata(self.owner.clone(), self.ttl(), RData::PTR(PTR(t))));
                }
            }
        }
        Ok(out)
    }

    /// PTR targets for an address: the first service holding it as a cluster IP, otherwise every
    /// ready endpoint holding it, named under the stanza's first forward zone. A name that is not
    /// a whole address is judged as any other name.
    pub(crate) fn reverse(&self, qname: &str) -> resolve::Lookup {
        let Some(ip) = crate::name::reverse_address(qname) else {
            return resolve::records(self.stanza, self.snap, qname, self.zone);
        };
        let Some(primary) = self.stanza.zones.iter().find(|z| !resolve::is_reverse(z)) else {
            return Err(NameError::NoItems);
        };
        let primary = primary.trim_end_matches('.');
        // As CoreDNS: only the `namespaces` option filters reverse answers.
        let exposed =
            |ns: &str| self.stanza.namespaces.is_empty() || resolve::namespace_exposed(self.stanza, self.snap, ns);
        let ptr = |name: String| Found { host: Host::Name(name), port: -1, domain: String::new() };
        let service = self.snap.services_with_ip(&ip).find(|svc| exposed(&svc.key.namespace));
        if let Some(svc) = service {
            return Ok(vec![ptr(format!("{}.{}.svc.{primary}", svc.key.name, svc.key.namespace))]);
        }
        let mut found = Vec::new();
        if !self.stanza.noendpoints {
            for slice in self.snap.slices_with_ip(&ip).filter(|s| exposed(&s.key.namespace)) {
                for e in slice.endpoints.iter().filter(|e| e.ready && e.addresses.contains(&ip)) {
                    let host = resolve::endpoint_hostname(e, &ip, self.stanza.endpoint_pod_names);
                    found.push(ptr(format!("{host}.{}.{}.svc.{primary}", slice.service.name, slice.service.namespace)));
                }
            }
        }
        if found.is_empty() { Err(NameError::NoItems) } else { Ok(found) }
    }

    pub(crate) fn srv(&self, qname: &str) -> Result<Sections, NameError> {
        let found = self.services(qname, RecordType::SRV)?;
        let weight = srv_weight(found.len());
        let (mut answers, mut extra) = (Vec::new(), Vec::new());
        let mut seen_srv: Vec<(Name, u16)> = Vec::new();
        let mut seen_addr: Vec<(Name, IpAddr)> = Vec::new();
        for f in found {
            let (Host::Ip(ip), Ok(port)) = (&f.host, u16::try_from(f.port)) else {
                continue;
            };
            let Some(target) = self.in_zone(&f.domain) else {
                continue;
            };
            if !seen_srv.contains(&(target.clone(), port)) {
                seen_srv.push((target.clone(), port));
                let srv = SRV::new(0, weight, port, target.clone());
                answers.push(Record::from_rdata(self.owner.clone(), self.ttl(), RData::SRV(srv)));
            }
            if !seen_addr.contains(&(target.clone(), *ip)) {
                seen_addr.push((target.clone(), *ip));
                extra.push(address(target, self.ttl(), *ip));
            }
        }
        Ok((answers, extra))
    }
}
