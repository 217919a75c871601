//! A stanza's zone apex, as CoreDNS's kubernetes plugin writes it (its `ns.go`): the NS records
//! naming the service in front of this server (or `ns.dns.ZONE`) with their addresses, and the
//! SOA every denial carries.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record};

use crate::handler::{Ctx, Sections};
use crate::message::address;
use crate::resolve;

/// The SOA TTL never exceeds this, whatever the stanza's `ttl`.
const SOA_MAX_TTL: u32 = 300;

impl Ctx<'_> {
    /// The names and addresses the zone's NS records point at: the services whose endpoints are
    /// this server's own addresses, or `ns.dns.<zone>` with those addresses.
    pub(crate) fn ns_addresses(&self) -> Vec<(String, IpAddr)> {
        let mut out = Vec::new();
        for local in &self.server.local_ips {
            for svc in self.snap.services() {
                for slice in self.snap.slices_of(&svc.key) {
                    for e in slice.endpoints.iter().filter(|e| e.addresses.contains(local)) {
                        let base = format!("{}.{}.svc", svc.key.name, svc.key.namespace);
                        match &svc.kind {
                            crate::object::ServiceKind::ClusterIp(ips) => {
                                out.extend(ips.iter().map(|ip| (base.clone(), *ip)))
                            }
                            _ => out.extend(e.addresses.iter().map(|ip| {
                                (
                                    format!(
                                        "{}.{base}",
                                        resolve::endpoint_hostname(e, ip, self.stanza.endpoint_pod_names)
                                    ),
                                    *ip,
                                )
                            })),
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            out = self.server.local_ips.iter().map(|ip| ("ns.dns".to_string(), *ip)).collect();
        }
        out
    }

    pub(crate) fn ns(&self) -> Sections {
        let (mut answers, mut extra): (Vec<Record>, Vec<Record>) = (Vec::new(), Vec::new());
        for (relative, ip) in self.ns_addresses() {
            let Some(target) = self.in_zone(&relative) else {
                continue;
            };
            extra.push(address(target.clone(), self.ttl(), ip));
            if !answers.iter().any(|r| matches!(&r.data, RData::NS(n) if n.0 == target)) {
                answers.push(Record::from_rdata(self.owner.clone(), self.ttl(), RData::NS(NS(target))));
            }
        }
        (answers, extra)
    }

    pub(crate) fn soa(&self) -> Record {
        let zone = Name::from_ascii(self.zone_cased).unwrap_or_else(|_| Name::root());
        let mname = self.in_zone("ns.dns").unwrap_or_else(Name::root);
        let rname = self.in_zone("hostmaster").unwrap_or_else(Name::root);
        // The serial is the time of the last change, in seconds: it wraps in 2106, as CoreDNS's.
        let serial = self.snap.modified() as u32;
        let soa = SOA::new(mname, rname, serial, 7200, 1800, 86400, self.ttl());
        Record::from_rdata(zone, self.ttl().min(SOA_MAX_TTL), RData::SOA(soa))
    }
}
