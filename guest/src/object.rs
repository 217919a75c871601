//! Kubernetes objects cut down to the fields DNS reads, decoded from the JSON the API server
//! sends. Decoding validates what answers depend on (names, IPs, ports), so a malformed object is
//! refused here with a reason and never reaches the snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::atom::{Text, atom};

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not a valid object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("metadata.name is missing")]
    NoName,
    #[error("{field}: {value:?} is not an IP address")]
    BadIp { field: &'static str, value: String },
    #[error("spec.externalName is missing for an ExternalName service")]
    NoExternalName,
    #[error("ports[{0}].port {1} is out of range")]
    BadPort(usize, i64),
}

/// The identity every object has: its namespace (empty for cluster-scoped) and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Interned: a namespace's objects share one copy.
    pub namespace: Text,
    pub name: Text,
}

/// A namespace and a name however they are held, so a table keyed by [`Key`] can be probed with
/// borrowed strings: a query looks objects up without building a key of its own.
pub trait KeyPair {
    fn pair(&self) -> (&str, &str);
}

impl KeyPair for Key {
    fn pair(&self) -> (&str, &str) {
        (&*self.namespace, &*self.name)
    }
}

impl KeyPair for (&str, &str) {
    fn pair(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn KeyPair + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyPair + 'a) {
        self
    }
}

// A Key and its borrowed form must hash and compare alike: both as the pair of strings.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        KeyPair::pair(self).hash(h);
    }
}

impl std::hash::Hash for dyn KeyPair + '_ {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.pair().hash(h);
    }
}

impl PartialEq for dyn KeyPair + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.pair() == other.pair()
    }
}

impl Eq for dyn KeyPair + '_ {}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() { f.write_str(&self.name) } else { write!(f, "{}/{}", self.namespace, self.name) }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawMeta {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    deletion_timestamp: Option<String>,
}

impl RawMeta {
    fn key(&self) -> Result<Key, ObjectError> {
        if self.name.is_empty() {
            return Err(ObjectError::NoName);
        }
        Ok(Key { namespace: atom(&self.namespace.to_ascii_lowercase()), name: self.name.to_ascii_lowercase().into() })
    }
}

/// The usual shape of an object: metadata, and the spec and status each kind defines.
#[derive(Deserialize)]
struct Parts<Spec = IgnoredAny, Status = IgnoredAny> {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: Status,
}

/// Reads only the key of any object, for deletes.
pub fn key_of(json: &str) -> Result<Key, ObjectError> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        metadata: RawMeta,
    }
    serde_json::from_str::<Only>(json)?.metadata.key()
}

/// A service or endpoint port. `port` is -1 when the object names none, as CoreDNS keeps it:
/// such an entry still yields address records but never an SRV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Interned, as `protocol`: a cluster names its ports with a few words.
    pub name: Text,
    pub port: i32,
    pub protocol: Text,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPort {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    protocol: Option<String>,
}

fn ports(raw: Vec<RawPort>) -> Result<Vec<Port>, ObjectError> {
    if raw.is_empty() {
        return Ok(vec![Port { name: atom(""), port: -1, protocol: atom("") }]);
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let port = match p.port {
                None => -1,
                Some(n) if (0..=65535).contains(&n) => n as i32,
                Some(n) => return Err(ObjectError::BadPort(i, n)),
            };
            Ok(Port {
                name: atom(p.name.as_deref().unwrap_or_default()),
                port,
                protocol: atom(p.protocol.as_deref().unwrap_or("TCP")),
            })
        })
        .collect()
}

fn ip(field: &'static str, value: &str) -> Result<IpAddr, ObjectError> {
    value.parse().map_err(|_| ObjectError::BadIp { field, value: value.to_string() })
}

/// What a service answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// Its cluster IPs (one per family for dual-stack).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered from ready endpoints.
    Headless,
    /// A CNAME to this name.
    ExternalName(String),
}

/// A v1 Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub key: Key,
    pub labels: BTreeMap<String, String>,
    pub kind: ServiceKind,
    pub ports: Vec<Port>,
    /// `spec.externalIPs`, then the load balancer's ingress addresses and host names, as
    /// CoreDNS's object keeps them: what `k8s_external` answers.
    pub external: Vec<ExternalHost>,
}

/// An address or host name a service is reached at from outside its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalHost {
    Ip(IpAddr),
    /// A load balancer's DNS name (lowercase, without the final dot): answered as a CNAME.
    Name(String),
}

impl Service {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Spec {
            #[serde(rename = "type")]
            kind: Option<String>,
            #[serde(rename = "clusterIP")]
            cluster_ip: Option<String>,
            #[serde(rename = "clusterIPs")]
            cluster_ips: Vec<String>,
            external_name: Option<String>,
            #[serde(rename = "externalIPs")]
            external_ips: Vec<String>,
            ports: Vec<RawPort>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Status {
            load_balancer: LoadBalancer,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct LoadBalancer {
            ingress: Vec<Ingress>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Ingress {
            ip: Option<String>,
            hostname: Option<String>,
        }
        let raw: Parts<Spec, Status> = serde_json::from_str(json)?;
        let key = raw.metadata.key()?;
        let spec = raw.spec;
        // An address that does not parse is left out: the service still answers in its cluster.
        let mut external: Vec<ExternalHost> =
            spec.external_ips.iter().filter_map(|t| t.parse().ok()).map(ExternalHost::Ip).collect();
        for ingress in raw.status.load_balancer.ingress {
            match (ingress.ip.filter(|i| !i.is_empty()), ingress.hostname.filter(|h| !h.is_empty())) {
                (Some(text), _) => external.extend(text.parse().ok().map(ExternalHost::Ip)),
                (None, Some(host)) => {
                    external.push(ExternalHost::Name(host.trim_end_matches('.').to_ascii_lowercase()))
                }
                (None, None) => {}
            }
        }
        let kind = if spec.kind.as_deref() == Some("ExternalName") {
            let target = spec.external_name.filter(|n| !n.is_empty()).ok_or(ObjectError::NoExternalName)?;
            ServiceKind::ExternalName(target.to_ascii_lowercase())
        } else {
            let ips =
                if spec.cluster_ips.is_empty() { spec.cluster_ip.into_iter().collect() } else { spec.cluster_ips };
            if ips.first().is_some_and(|ip| ip == "None") {
                ServiceKind::Headless
            } else {
                // A service still waiting for its IP has none: it answers nothing.
                let ips =
                    ips.iter().filter(|s| !s.is_empty()).map(|s| ip("spec.clusterIPs", s)).collect::<Result<_, _>>()?;
                ServiceKind::ClusterIp(ips)
            }
        };
        Ok(Service {
            key,
            labels: raw.metadata.labels,
            kind,
            ports: ports(spec.ports)?,
            external,
        })
    }

    pub fn is_headless(&self) -> bool {
        self.kind == ServiceKind::Headless
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addresses: Vec<IpAddr>,
    pub hostname: Option<String>,
    /// The name of the pod behind it (`targetRef.name`, when shorter than 64 characters).
    pub pod_name: Option<String>,
    /// Its topology zone, lowercase, interned: a cluster has a few.
    pub zone: Option<Text>,
    /// `conditions.ready`, with an absent value read as ready, as the API documents.
    pub ready: bool,
}

/// A discovery.k8s.io/v1 EndpointSlice, with the service it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSlice {
    pub key: Key,
    pub labels: BTreeMap<String, String>,
    /// The `kubernetes.io/service-name` label: the service's key.
    pub service: Key,
    /// The `multicluster.kubernetes.io/service-name` label: the ServiceImport's key, if any.
    pub service_import: Option<Key>,
    /// The `multicluster.kubernetes.io/source-cluster` label, lowercase, interned.
    pub cluster: Text,
    pub ports: Vec<Port>,
    pub endpoints: Vec<Endpoint>,
}

/// The label tying an EndpointSlice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label tying an EndpointSlice to a ServiceImport (Multi-Cluster Services API).
pub const MC_SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label naming the cluster a multicluster EndpointSlice comes from.
pub const MC_SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";

impl EndpointSlice {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Conditions {
            ready: Option<bool>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct TargetRef {
            name: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RawEndpoint {
            #[serde(default)]
            addresses: Vec<String>,
            #[serde(default)]
            hostname: Option<String>,
            #[serde(default)]
            target_ref: Option<TargetRef>,
            #[serde(default)]
            zone: Option<String>,
            #[serde(default)]
            conditions: Conditions,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            metadata: RawMeta,
            #[serde(default)]
            address_type: Option<String>,
            #[serde(default)]
            endpoints: Option<Vec<RawEndpoint>>,
            #[serde(default)]
            ports: Option<Vec<RawPort>>,
        }
        let raw: Raw = serde_json::from_str(json)?;
        let key = raw.metadata.key()?;
        let label = |l: &str| raw.metadata.labels.get(l).map(|v| v.to_ascii_lowercase());
        let service =
            Key { namespace: key.namespace.clone(), name: label(SERVICE_NAME_LABEL).unwrap_or_default().into() };
        let service_import =
            label(MC_SERVICE_NAME_LABEL).map(|name| Key { namespace: key.namespace.clone(), name: name.into() });
        let cluster = atom(&label(MC_SOURCE_CLUSTER_LABEL).unwrap_or_default());
        // FQDN slices carry names, not addresses; cluster DNS has never served them.
        let fqdn = raw.address_type.as_deref() == Some("FQDN");
        let endpoints = if fqdn {
            Vec::new()
        } else {
            raw.endpoints
                .unwrap_or_default()
                .into_iter()
                .map(|e| {
                    let addresses =
                        e.addresses.iter().map(|a| ip("endpoints[].addresses", a)).collect::<Result<_, _>>()?;
                    Ok(Endpoint {
                        addresses,
                        hostname: e.hostname.filter(|h| !h.is_empty()).map(|h| h.to_ascii_lowercase()),
                        pod_name: e
                            .target_ref
                            .map(|t| t.name)
                            .filter(|n| !n.is_empty() && n.len() < 64)
                            .map(|n| n.to_ascii_lowercase()),
                        zone: e.zone.map(|z| atom(&z.to_ascii_lowercase())),
                        ready: e.conditions.ready.unwrap_or(true),
                    })
                })
                .collect::<Result<_, ObjectError>>()?
        };
        Ok(EndpointSlice {
            key,
            labels: raw.metadata.labels,
            service,
            service_import,
            cluster,
            ports: ports(raw.ports.unwrap_or_default())?,
            endpoints,
        })
    }
}

/// A multicluster.x-k8s.io/v1alpha1 ServiceImport: a service exported by a cluster set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImport {
    pub key: Key,
    /// `spec.type: Headless`: answered from the multicluster endpoint slices.
    pub headless: bool,
    /// `spec.ips`: the ClusterSetIPs.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<Port>,
}

impl ServiceImport {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Spec {
            #[serde(rename = "type")]
            kind: Option<String>,
            ips: Vec<String>,
            ports: Vec<RawPort>,
        }
        let raw: Parts<Spec> = serde_json::from_str(json)?;
        let key = raw.metadata.key()?;
        let ips = raw.spec.ips.iter().map(|s| ip("spec.ips", s)).collect::<Result<_, _>>()?;
        // Unlike a Service, an import without ports answers nothing (CoreDNS keeps no -1 port for it).
        let ports = if raw.spec.ports.is_empty() { Vec::new() } else { ports(raw.spec.ports)? };
        Ok(ServiceImport { key, headless: raw.spec.kind.as_deref() == Some("Headless"), ips, ports })
    }
}

/// A multicluster.x-k8s.io/v1alpha1 ServiceExport: its name says which Service of its namespace
/// the cluster exports to its clusterset; nothing else of it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceExport {
    pub key: Key,
}

impl ServiceExport {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        Ok(ServiceExport { key: key_of(json)? })
    }
}

/// A v1 Pod, as much as DNS needs of one: where it is and whether it is going away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub key: Key,
    /// `status.podIP` (the first of `podIPs`): the one address CoreDNS indexes a pod by.
    pub ip: Option<IpAddr>,
    /// A deletion timestamp is set: CoreDNS stops answering for it at once.
    pub terminating: bool,
    /// Its phase is Succeeded, Failed or Unknown: CoreDNS never lists such a pod (a finished
    /// Job's pod keeps its address in the API but must not answer for it).
    pub finished: bool,
}

impl Pod {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        #[derive(Deserialize)]
        struct PodIp {
            ip: String,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Status {
            #[serde(rename = "podIP")]
            pod_ip: Option<String>,
            #[serde(rename = "podIPs")]
            pod_ips: Vec<PodIp>,
            phase: Option<String>,
        }
        let raw: Parts<IgnoredAny, Status> = serde_json::from_str(json)?;
        let key = raw.metadata.key()?;
        let mut texts: Vec<String> = raw.status.pod_ips.into_iter().map(|p| p.ip).collect();
        if texts.is_empty() {
            texts.extend(raw.status.pod_ip.filter(|s| !s.is_empty()));
        }
        let ips = texts.iter().map(|s| ip("status.podIPs", s)).collect::<Result<Vec<_>, _>>()?;
        let finished = matches!(raw.status.phase.as_deref(), Some("Succeeded" | "Failed" | "Unknown"));
        Ok(Pod { key, ip: ips.first().copied(), terminating: raw.metadata.deletion_timestamp.is_some(), finished })
    }
}

/// A v1 Namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub key: Key,
    pub labels: BTreeMap<String, String>,
}

impl Namespace {
    pub fn decode(json: &str) -> Result<Self, ObjectError> {
        let raw: Parts = serde_json::from_str(json)?;
        let key = raw.metadata.key()?;
        Ok(Namespace { key: Key { namespace: atom(""), name: key.name }, labels: raw.metadata.labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_decode_by_kind() {
        let s = Service::decode(r#"{"metadata":{"name":"Web","namespace":"ns"},"spec":{"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1","fd00::1"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#).unwrap();
        assert_eq!(s.key.to_string(), "ns/web");
        assert_eq!(s.kind, ServiceKind::ClusterIp(vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]));
        let h = Service::decode(r#"{"metadata":{"name":"h","namespace":"ns"},"spec":{"clusterIP":"None"}}"#).unwrap();
        assert!(h.is_headless());
        assert_eq!(h.ports, vec![Port { name: atom(""), port: -1, protocol: atom("") }]);
        let e = Service::decode(
            r#"{"metadata":{"name":"e","namespace":"ns"},"spec":{"type":"ExternalName","externalName":"Example.com"}}"#,
        )
        .unwrap();
        assert_eq!(e.kind, ServiceKind::ExternalName("example.com".into()));
    }

    #[test]
    fn malformed_objects_are_refused_with_a_reason() {
        for (json, why) in [
            ("{", "not a valid object"),
            (r#"{"metadata":{"namespace":"ns"}}"#, "metadata.name"),
            (r#"{"metadata":{"name":"a","namespace":"n"},"spec":{"clusterIP":"10.0.0.999"}}"#, "not an IP"),
            (r#"{"metadata":{"name":"a","namespace":"n"},"spec":{"type":"ExternalName"}}"#, "externalName"),
            (
                r#"{"metadata":{"name":"a","namespace":"n"},"spec":{"clusterIP":"10.0.0.1","ports":[{"port":70000}]}}"#,
                "out of range",
            ),
        ] {
            let err = Service::decode(json).expect_err(json).to_string();
            assert!(err.contains(why), "{json}: {err}");
        }
        assert!(
            EndpointSlice::decode(r#"{"metadata":{"name":"a","namespace":"n"},"endpoints":[{"addresses":["x"]}]}"#)
                .is_err()
        );
    }

    #[test]
    fn fields_dns_does_not_read_are_ignored_whatever_their_shape() {
        let ns = Namespace::decode(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":"y"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}"#).unwrap();
        assert_eq!(&*ns.key.name, "a");
        let pod = Pod::decode(r#"{"metadata":{"name":"p","namespace":"a"},"spec":{"containers":[{"name":"c"}]},"status":{"podIP":"10.0.0.1","phase":"Running","conditions":[]}}"#).unwrap();
        assert_eq!(pod.ip, Some("10.0.0.1".parse::<IpAddr>().unwrap()));
        let svc = Service::decode(r#"{"metadata":{"name":"s","namespace":"a"},"spec":{"clusterIP":"10.0.0.2","sessionAffinity":"None"},"status":{"loadBalancer":{}}}"#).unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec!["10.0.0.2".parse().unwrap()]));
    }

    #[test]
    fn endpoint_slices_keep_readiness_and_names() {
        let s = EndpointSlice::decode(r#"{"metadata":{"name":"h-1","namespace":"ns","labels":{"kubernetes.io/service-name":"h"}},"addressType":"IPv4",
            "endpoints":[{"addresses":["10.1.0.1"],"hostname":"db-0","conditions":{"ready":true}},{"addresses":["10.1.0.2"],"conditions":{"ready":false},"targetRef":{"kind":"Pod","name":"p2"}},{"addresses":["10.1.0.3"]}],
            "ports":[{"name":"sql","port":5432,"protocol":"TCP"}]}"#).unwrap();
        assert_eq!(s.service.to_string(), "ns/h");
        assert_eq!(s.endpoints.iter().map(|e| e.ready).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(s.endpoints[0].hostname.as_deref(), Some("db-0"));
        assert_eq!(s.endpoints[1].pod_name.as_deref(), Some("p2"));
    }
}
