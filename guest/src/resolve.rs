//! What a parsed name resolves to in one stanza's snapshot: the answering hosts (an IP, or a
//! name for ExternalName services) with their ports and the schema name each lives under, or the
//! name error that makes the answer NXDOMAIN. Record building is the handler's job; this module
//! only decides which objects answer.

use std::net::IpAddr;

use crate::config::{PodMode, Stanza};
use crate::name;
use crate::object::{Endpoint, EndpointSlice, Port, ServiceKind};
use crate::schema_name::{self, Branch, SchemaName};
use crate::snapshot::Snapshot;

/// What an answering object points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// A domain name (ExternalName services), lowercase, without the trailing dot.
    Name(String),
}

/// One answering host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub host: Host,
    /// -1 when the object names no port: address records only, no SRV.
    pub port: i32,
    /// The schema name of the host relative to the zone ("web.ns.svc", "db-0.web.ns.svc").
    pub domain: String,
}

/// Why a name does not exist. Every case is answered NXDOMAIN (or passed on by `fallthrough`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Nothing of that name.
    NoItems,
    /// The namespace is not exposed (absent, or filtered out by `namespaces` / `namespace_labels`).
    NamespaceNotExposed,
    /// The name has no meaning in the schema.
    Invalid,
}

pub type Lookup = Result<Vec<Found>, NameError>;

/// Everything `qname` (lowercase, fully qualified, inside `zone`) resolves to.
pub fn records(stanza: &Stanza, snap: &Snapshot, qname: &str, zone: &str) -> Lookup {
    let labels = name::labels_below(qname, zone).ok_or(NameError::Invalid)?;
    let multicluster = stanza.is_multicluster(zone);
    let r = schema_name::parse(&labels, multicluster, stanza.zonal).map_err(|_| NameError::Invalid)?;
    let Some(branch) = r.branch else {
        return Ok(Vec::new());
    };
    if is_reverse(qname) {
        return Err(NameError::NoItems);
    }
    if !namespace_exposed(stanza, snap, r.namespace) {
        return Err(NameError::NamespaceNotExposed);
    }
    match branch {
        Branch::Pod => pods(stanza, snap, &r),
        // A multicluster zone answers from ServiceImports, not Services.
        Branch::Svc if multicluster => service_imports(stanza, snap, &r),
        Branch::Svc => services(stanza, snap, &r),
    }
}

/// Whether a name lies in a reverse-lookup tree.
pub fn is_reverse(qname: &str) -> bool {
    name::is_subdomain(qname, "in-addr.arpa.") || name::is_subdomain(qname, "ip6.arpa.")
}

/// A namespace is exposed when the `namespaces` option allows it and it exists with labels
/// matching `namespace_labels`, as CoreDNS decides it.
pub fn namespace_exposed(stanza: &Stanza, snap: &Snapshot, namespace: &str) -> bool {
    stanza.namespace_configured(namespace)
        && snap
            .namespace(namespace)
            .is_some_and(|ns| stanza.namespace_labels.as_ref().is_none_or(|s| s.matches(&ns.labels)))
}

fn pods(stanza: &Stanza, snap: &Snapshot, r: &SchemaName) -> Lookup {
    if stanza.pods == PodMode::Disabled {
        return Err(NameError::NoItems);
    }
    if r.service.is_empty() {
        return Ok(Vec::new());
    }
    let podname = r.service;
    let text = if podname.matches('-').count() == 3 && !podname.contains("--") {
        podname.replace('-', ".")
    } else {
        podname.replace('-', ":")
    };
    let ip: IpAddr = text.parse().map_err(|_| NameError::NoItems)?;
    let found = || Found { host: Host::Ip(ip), port: -1, domain: format!("{podname}.{}.pod", r.namespace) };
    match stanza.pods {
        PodMode::Insecure => Ok(vec![found()]),
        _ => {
            let exists = snap.pods_with_ip(&ip).any(|p| !p.terminating && p.namespace == r.namespace);
            if exists { Ok(vec![found()]) } else { Err(NameError::NoItems) }
        }
    }
}

/// The ready endpoints of a service, with the ports of the slice each came from.
pub(crate) fn ready_endpoints<'s>(
    stanza: &Stanza,
    slices: impl Iterator<Item = &'s EndpointSlice>,
) -> Vec<(&'s Endpoint, &'s EndpointSlice)> {
    if stanza.noendpoints {
        return Vec::new();
    }
    slices
        .filter(|s| stanza.labels.as_ref().is_none_or(|sel| sel.matches(&s.labels)))
        .flat_map(|s| s.endpoints.iter().filter(|e| e.ready).map(move |e| (e, s)))
        .collect()
}

/// The name an endpoint answers under: its hostname, its pod's name with `endpoint_pod_names`,
/// or its address with dashes.
pub fn endpoint_hostname(endpoint: &Endpoint, ip: &IpAddr, pod_names: bool) -> String {
    if let Some(h) = &endpoint.hostname {
        return h.clone();
    }
    if pod_names && let Some(p) = &endpoint.pod_name {
        return p.clone();
    }
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let dashed = v6.to_string().replace(':', "-");
            if dashed.ends_with('-') { dashed + "0" } else { dashed }
        }
    }
}

fn port_matches(r: &SchemaName, p: &Port) -> bool {
    (r.port.is_empty() || r.port.eq_ignore_ascii_case(&p.name))
        && (r.protocol.is_empty() || r.protocol.eq_ignore_ascii_case(&p.protocol))
}

fn services(stanza: &Stanza, snap: &Snapshot, r: &SchemaName) -> Lookup {
    if r.service.is_empty() {
        return Ok(Vec::new());
    }
    let svc = snap.service(r.namespace, r.service).ok_or(NameError::NoItems)?;
    if stanza.labels.as_ref().is_some_and(|sel| !sel.matches(&svc.labels)) {
        return Err(NameError::NoItems);
    }
    // A cluster IP answers for itself: its endpoints matter only to `ignore empty_service` and
    // to endpoint names, so most queries never look them up.
    let needs_endpoints = match svc.kind {
        ServiceKind::Headless => true,
        ServiceKind::ClusterIp(_) => stanza.ignore_empty_service || !r.endpoint.is_empty(),
        ServiceKind::ExternalName(_) => false,
    };
    let endpoints = if needs_endpoints { ready_endpoints(stanza, snap.slices_of(&svc.key)) } else { Vec::new() };
    if stanza.ignore_empty_service
        && matches!(svc.kind, ServiceKind::ClusterIp(_))
        && endpoints.iter().all(|(e, _)| e.addresses.is_empty())
    {
        return Err(NameError::NoItems);
    }
    if r.topology_zone.is_some() && !svc.is_headless() {
        return Err(NameError::NoItems);
    }
    let base = format!("{}.{}.svc", svc.key.name, svc.key.namespace);
    match &svc.kind {
        ServiceKind::ExternalName(target) => {
            if !r.endpoint.is_empty() || !r.port.is_empty() || !r.protocol.is_empty() {
                return Err(NameError::NoItems);
            }
            Ok(vec![Found { host: Host::Name(target.trim_end_matches('.').to_string()), port: -1, domain: base }])
        }
        ServiceKind::Headless => endpoint_records(stanza, r, &endpoints, &base, false),
        ServiceKind::ClusterIp(_) if !r.endpoint.is_empty() => endpoint_records(stanza, r, &endpoints, &base, false),
        ServiceKind::ClusterIp(ips) => {
            let mut found = Vec::new();
            let mut any_port = false;
            for p in svc.ports.iter().filter(|p| port_matches(r, p)) {
                any_port = true;
                found.extend(ips.iter().map(|ip| Found { host: Host::Ip(*ip), port: p.port, domain: base.clone() }));
            }
            if any_port { Ok(found) } else { Err(NameError::NoItems) }
        }
    }
}

/// Endpoint answers; in multicluster zones names carry the source cluster
/// (`endpoint.cluster.service.namespace.svc`), and an endpoint name must match the cluster too.
fn endpoint_records(
    stanza: &Stanza,
    r: &SchemaName,
    endpoints: &[(&Endpoint, &EndpointSlice)],
    base: &str,
    multicluster: bool,
) -> Lookup {
    let collect = |topology: Option<&str>| {
        let mut found = Vec::new();
        for (e, slice) in endpoints {
            if topology.is_some_and(|t| e.zone.as_deref() != Some(t)) {
                continue;
            }
            if multicluster && !r.endpoint.is_empty() && !r.cluster.eq_ignore_ascii_case(&slice.cluster) {
                continue;
            }
            for ip in &e.addresses {
                let host = endpoint_hostname(e, ip, stanza.endpoint_pod_names);
                if !r.endpoint.is_empty() && !r.endpoint.eq_ignore_ascii_case(&host) {
                    continue;
                }
                let domain =
                    if multicluster { format!("{host}.{}.{base}", slice.cluster) } else { format!("{host}.{base}") };
                for p in slice.ports.iter().filter(|p| port_matches(r, p)) {
                    found.push(Found { host: Host::Ip(*ip), port: p.port, domain: domain.clone() });
                }
            }
        }
        found
    };
    let mut found = collect(r.topology_zone.as_deref());
    if found.is_empty() && r.prefer {
        found = collect(None);
    }
    // A zonal name of a headless service exists even when its zone holds nothing (NODATA).
    if found.is_empty() && r.topology_zone.is_none() { Err(NameError::NoItems) } else { Ok(found) }
}

/// Names in a `multicluster` zone, answered from ServiceImports and their multicluster slices.
fn service_imports(stanza: &Stanza, snap: &Snapshot, r: &SchemaName) -> Lookup {
    if r.service.is_empty() {
        return Ok(Vec::new());
    }
    let import = snap.service_import(r.namespace, r.service).ok_or(NameError::NoItems)?;
    let endpoints = ready_endpoints(stanza, snap.slices_of_import(&import.key));
    if stanza.ignore_empty_service && !import.headless && endpoints.iter().all(|(e, _)| e.addresses.is_empty()) {
        return Err(NameError::NoItems);
    }
    let base = format!("{}.{}.svc", import.key.name, import.key.namespace);
    if import.headless || !r.endpoint.is_empty() {
        return endpoint_records(stanza, r, &endpoints, &base, true);
    }
    let mut found = Vec::new();
    let mut any_port = false;
    for p in import.ports.iter().filter(|p| port_matches(r, p)) {
        any_port = true;
        found.extend(import.ips.iter().map(|ip| Found { host: Host::Ip(*ip), port: p.port, domain: base.clone() }));
    }
    if any_port { Ok(found) } else { Err(NameError::NoItems) }
}
