//! The configuration of one `kubernetai` stanza as the guest uses it: the WIT `stanza` record
//! with its selectors parsed, and the zone and fallthrough matching every query starts from.

use std::net::IpAddr;

use crate::name;
use crate::selector::{Selector, SelectorError};

/// How `a-b-c-d.namespace.pod.zone` names are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodMode {
    #[default]
    Disabled,
    Insecure,
    Verified,
}

/// One stanza's options, as the host validated them (see the WIT `stanza` record).
#[derive(Clone, Debug)]
pub struct Stanza {
    /// Lowercase, fully qualified, in Corefile order.
    pub zones: Vec<String>,
    pub namespaces: Vec<String>,
    pub namespace_labels: Option<Selector>,
    pub labels: Option<Selector>,
    pub pods: PodMode,
    pub endpoint_pod_names: bool,
    pub ttl: u32,
    pub noendpoints: bool,
    /// `None`: no fallthrough. `Some(zones)`: a name error under one of these zones passes on.
    pub fallthrough: Option<Vec<String>>,
    pub ignore_empty_service: bool,
    pub multicluster: Vec<String>,
    pub zonal: bool,
}

/// CoreDNS's default `ttl`.
pub const DEFAULT_TTL: u32 = 5;

impl Stanza {
    /// A stanza for `zones` with every option at its CoreDNS default.
    pub fn new(zones: &[&str]) -> Self {
        Stanza {
            zones: zones.iter().map(|z| name::normalize_zone(z)).collect(),
            namespaces: Vec::new(),
            namespace_labels: None,
            labels: None,
            pods: PodMode::Disabled,
            endpoint_pod_names: false,
            ttl: DEFAULT_TTL,
            noendpoints: false,
            fallthrough: None,
            ignore_empty_service: false,
            multicluster: Vec::new(),
            zonal: false,
        }
    }

    /// The zone of this stanza that `qname` (lowercase, fully qualified) falls in: the longest.
    pub fn zone_of<'a>(&'a self, qname: &str) -> Option<&'a str> {
        name::longest_zone(qname, &self.zones)
    }

    /// Whether a name error for `qname` passes the query on instead of answering NXDOMAIN.
    pub fn falls_through(&self, qname: &str) -> bool {
        self.fallthrough.as_ref().is_some_and(|zones| name::longest_zone(qname, zones).is_some())
    }

    /// Whether `zone` is answered from ServiceImports.
    pub fn is_multicluster(&self, zone: &str) -> bool {
        name::longest_zone(zone, &self.multicluster).is_some()
    }

    /// Whether `namespace` passes the `namespaces` option (the object must exist as well).
    pub fn namespace_configured(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// Parses the `labels` or `namespace_labels` selector of stanza number `stanza`, if given.
pub fn selector(stanza: usize, which: &'static str, text: Option<&str>) -> Result<Option<Selector>, ConfigError> {
    text.map(|t| Selector::parse(t).map_err(|source| ConfigError::Selector { stanza, which, source })).transpose()
}

/// Facts about the whole server block.
#[derive(Clone, Debug, Default)]
pub struct BlockFacts {
    /// Non-loopback addresses the server answers on, for `ns.dns.<zone>`.
    pub local_ips: Vec<IpAddr>,
}

/// A block's `k8s_external` (see `external`).
#[derive(Clone, Debug)]
pub struct ExternalZone {
    /// Lowercase, fully qualified.
    pub zones: Vec<String>,
    /// The label of the zone's own names (`ns1.<apex>.<zone>`, `hostmaster.<apex>.<zone>`).
    pub apex: String,
    pub ttl: u32,
    pub headless: bool,
    pub fallthrough: Option<Vec<String>>,
}

impl ExternalZone {
    /// Whether a name error for `qname` passes the query on.
    pub fn falls_through(&self, qname: &str) -> bool {
        self.fallthrough.as_ref().is_some_and(|zones| name::longest_zone(qname, zones).is_some())
    }
}

/// A configuration the guest cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("stanza {stanza}: {which} selector: {source}")]
    Selector { stanza: usize, which: &'static str, source: SelectorError },
    #[error("stanza {stanza}: no zones")]
    NoZones { stanza: usize },
    #[error("server: bad local address {0:?}")]
    LocalIp(String),
    #[error("k8s_external: no zones")]
    NoExternalZones,
    #[error("k8s_external: apex {0:?} is not one DNS label")]
    ExternalApex(String),
    #[error("clusterset: no stanza {0}")]
    ClustersetStanza(usize),
    #[error("clusterset: zone {0:?} is not lowercase and fully qualified")]
    ClustersetZone(String),
    #[error("clusterset: cluster id {0:?} is not one lowercase DNS label")]
    ClustersetId(String),
    #[error("clusterset {zone}: cluster id {id:?} given twice")]
    ClustersetDuplicate { zone: String, id: String },
}
