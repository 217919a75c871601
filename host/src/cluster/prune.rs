//! Cutting a Kubernetes object down to what DNS reads, before anything holds it: a pod of a real
//! cluster (~2 KB of spec, status, conditions, owner references, managedFields) becomes its
//! name, namespace, phase and addresses. Keep-lists rather than drop-lists, so fields a future
//! Kubernetes adds cost nothing.
//!
//! The object is read once, with every kept field borrowed from the text as raw JSON and every
//! other field skipped without being built: no tree of the whole object is made, so pruning a
//! 250 MB cluster leaves no garbage between the objects kept (which would stay resident as
//! fragmentation) and takes a fraction of the time. An object whose kept fields do not have the
//! shape Kubernetes gives them is passed on whole: the module decodes it and rejects it with the
//! reason, exactly as it would have unpruned.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::contract::wit::Kind;

/// What a stanza's options read of an endpoint beyond its addresses, hostname and readiness:
/// its pod's name (`endpoint_pod_names`) and its topology zone (`zonal`). A hundred thousand
/// endpoints carry both; a stanza that reads neither keeps neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    pub pod_names: bool,
    pub zones: bool,
}

impl Reads {
    /// Everything: for callers that serve any stanza.
    pub const ALL: Reads = Reads { pod_names: true, zones: true };

    pub fn of(stanza: &crate::contract::wit::Stanza) -> Reads {
        Reads { pod_names: stanza.endpoint_pod_names, zones: stanza.zonal }
    }

    /// The two flags as bits, for a const generic (a watch's decoder has no other way to learn
    /// them), and back.
    pub const fn bits(self) -> u8 {
        (self.pod_names as u8) | ((self.zones as u8) << 1)
    }

    pub const fn from_bits(bits: u8) -> Reads {
        Reads { pod_names: bits & 1 != 0, zones: bits & 2 != 0 }
    }
}

/// An object's identity and its pruned JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    pub namespace: String,
    pub name: String,
    pub json: String,
    /// `metadata.resourceVersion`, kept out of `json`.
    pub resource_version: Option<String>,
}

type Raw<'a> = Option<&'a RawValue>;

/// The top level of any object, every field this module may keep borrowed as raw JSON (written
/// back as an object of those fields when the text it came from was not kept).
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    kind: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    metadata: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    spec: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    status: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    address_type: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    ports: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    endpoints: Raw<'a>,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    name: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    namespace: Raw<'a>,
    /// The `labels`/`namespace_labels` selectors and a slice's service read them; a pod's never.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    labels: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    deletion_timestamp: Raw<'a>,
    /// Where a watch resumes from; never passed on.
    #[serde(borrow, default, skip_serializing)]
    resource_version: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
struct PodStatus<'a> {
    #[serde(borrow, default, rename = "podIP", skip_serializing_if = "Option::is_none")]
    pod_ip: Raw<'a>,
    #[serde(borrow, default, rename = "podIPs", skip_serializing_if = "Option::is_none")]
    pod_ips: Option<Vec<PodIp<'a>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    phase: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
struct PodIp<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    ip: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
struct Port<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    name: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    port: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    protocol: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpec<'a> {
    #[serde(borrow, default, rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Raw<'a>,
    #[serde(borrow, default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    cluster_ip: Raw<'a>,
    #[serde(borrow, default, rename = "clusterIPs", skip_serializing_if = "Option::is_none")]
    cluster_ips: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    external_name: Raw<'a>,
    #[serde(borrow, default, rename = "externalIPs", skip_serializing_if = "Option::is_none")]
    external_ips: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<Port<'a>>>,
}

#[derive(Deserialize, Serialize)]
struct TargetRef<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    name: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
struct Conditions<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    ready: Raw<'a>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    addresses: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    hostname: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    target_ref: Option<TargetRef<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    zone: Raw<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    conditions: Option<Conditions<'a>>,
}

/// What is kept of an object, ready to be written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kept<'a> {
    metadata: Meta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<Spec<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_type: Raw<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<Port<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<Vec<Endpoint<'a>>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Status<'a> {
    Pod(PodStatus<'a>),
    Service(ServiceStatus<'a>),
}

/// A service's load balancer ingress (its addresses and names), which `k8s_external` serves.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    load_balancer: Raw<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Spec<'a> {
    Service(ServiceSpec<'a>),
    /// A ServiceImport's spec, kept whole: such objects are rare and small.
    Whole(&'a RawValue),
}

/// A field read as `T`, absent when missing or JSON null.
fn field<'a, T: Deserialize<'a>>(raw: Raw<'a>) -> Result<Option<T>, serde_json::Error> {
    raw.map(|r| serde_json::from_str(r.get())).transpose()
}

fn kept<'a>(kind: Kind, item: &Item<'a>, mut metadata: Meta<'a>, reads: Reads) -> Result<Kept<'a>, serde_json::Error> {
    let mut kept =
        Kept { metadata: Meta::default(), spec: None, status: None, address_type: None, ports: None, endpoints: None };
    match kind {
        Kind::Namespace => {}
        Kind::Pod => {
            metadata.labels = None;
            let mut status: Option<PodStatus> = field(item.status)?;
            // `podIPs` that only repeat `podIP` (every single-stack pod) say nothing more.
            if let Some(s) = &mut status
                && let (Some(ip), Some([only])) = (s.pod_ip, s.pod_ips.as_deref())
                && only.ip.map(RawValue::get) == Some(ip.get())
            {
                s.pod_ips = None;
            }
            kept.status = status.map(Status::Pod);
        }
        Kind::Service => {
            kept.spec = field(item.spec)?.map(Spec::Service);
            kept.status = field::<ServiceStatus>(item.status)?
                .filter(|s| s.load_balancer.is_some_and(|lb| lb.get() != "{}"))
                .map(Status::Service);
        }
        Kind::EndpointSlice => {
            kept.address_type = item.address_type;
            kept.ports = field(item.ports)?;
            kept.endpoints = field::<Vec<Endpoint>>(item.endpoints)?.map(|mut endpoints| {
                for e in &mut endpoints {
                    e.target_ref = e.target_ref.take().filter(|_| reads.pod_names);
                    e.zone = e.zone.take().filter(|_| reads.zones);
                }
                endpoints
            });
        }
        Kind::ServiceImport => kept.spec = item.spec.map(Spec::Whole),
        // Its name says what it exports; nothing else of it is read.
        Kind::ServiceExport => metadata.labels = None,
    }
    kept.metadata = metadata;
    Ok(kept)
}

/// A string field's text, or empty when it is missing or not a string.
fn text(raw: Raw<'_>) -> String {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok()).unwrap_or_default()
}

/// An object read once, its fields borrowed from the text, ready to be pruned.
pub struct Object<'a> {
    /// The whole object's text, when it was read from text of its own.
    text: Option<&'a str>,
    item: Item<'a>,
}

/// Reads `text` as an object, or None when it is no JSON object at all.
pub fn read(text: &str) -> Option<Object<'_>> {
    // A derived struct would also take an array, field by field.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    Some(Object { text: Some(text), item: serde_json::from_str(text).ok()? })
}

/// An object read in place as an element of a larger document (a List's `items`): the document
/// is scanned once, not once to find the element and again to read it. Only a JSON object is
/// taken.
impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Item<'de>, A::Error> {
                Item::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        Ok(Object { text: None, item: d.deserialize_map(Fields)? })
    }
}

impl<'a> Object<'a> {
    /// The object's `kind`: None when missing, Some("") when not a string.
    pub fn kind(&self) -> Option<String> {
        self.item.kind.map(|k| text(Some(k)))
    }

    /// The object's identity and what DNS reads of it, as `kind`, for a stanza that `reads`.
    pub fn prune(self, kind: Kind, reads: Reads) -> Pruned {
        // Metadata read once: identity and resourceVersion from it, the rest kept.
        let meta = field::<Meta>(self.item.metadata);
        let (namespace, name, resource_version) = match &meta {
            Ok(Some(m)) => (text(m.namespace), text(m.name), m.resource_version.map(|v| text(Some(v)))),
            _ => Default::default(),
        };
        let kept = meta.and_then(|m| kept(kind, &self.item, m.unwrap_or_default(), reads));
        let json = match kept.and_then(|k| serde_json::to_string(&k)) {
            // A raw newline can only be layout kept from an indented file (`kubectl -o json`
            // indents): such text is written again without it.
            Ok(pruned) if pruned.contains('\n') => {
                serde_json::from_str::<serde_json::Value>(&pruned).map_or(pruned, |v| v.to_string())
            }
            Ok(pruned) => pruned,
            // Not the shape Kubernetes writes: the module says why, from the whole object (or
            // every field it reads, when the object was read in place).
            Err(_) => match self.text {
                Some(text) => text.to_string(),
                None => serde_json::to_string(&self.item).unwrap_or_default(),
            },
        };
        Pruned { namespace, name, json, resource_version }
    }
}

/// Prunes the object `json` of `kind` for a stanza that `reads`, or None when `json` is no JSON
/// object at all.
pub fn prune(kind: Kind, json: &str, reads: Reads) -> Option<Pruned> {
    Some(read(json)?.prune(kind, reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_read_in_place_prunes_as_one_read_from_its_own_text() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"a"},"spec":{"x":[1]},"status":{"podIP":"10.0.0.1","phase":"Running"}}"#;
        // Not the shape Kubernetes writes: passed on for the module to say why.
        let bad = r#"{"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"ports":"not a list"}}"#;
        let list = format!("[{pod},{bad}]");
        let objects: Vec<Object> = serde_json::from_str(&list).unwrap_or_else(|e| panic!("{e}"));
        let [in_place_pod, in_place_bad] = <[Object; 2]>::try_from(objects).unwrap_or_else(|_| panic!("two"));
        assert_eq!(in_place_pod.prune(Kind::Pod, Reads::ALL), prune(Kind::Pod, pod, Reads::ALL).unwrap_or_else(|| panic!("pod")));
        assert_eq!(in_place_bad.prune(Kind::Service, Reads::ALL), prune(Kind::Service, bad, Reads::ALL).unwrap_or_else(|| panic!("bad")));
        assert!(serde_json::from_str::<Vec<Object>>("[[1, 2]]").is_err(), "an array is no object");
    }

    #[test]
    fn keeps_what_dns_reads() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"a","labels":{"x":"y"},
            "managedFields":[{"manager":"m"}],"ownerReferences":[{"name":"rs"}],"deletionTimestamp":null},
            "spec":{"containers":[{"name":"c"}]},"status":{"phase":"Running","podIP":"10.0.0.1",
            "podIPs":[{"ip":"10.0.0.1"}],"conditions":[{"type":"Ready"}],"hostIP":"192.0.2.1"}}"#;
        let p = prune(Kind::Pod, pod, Reads::ALL).expect("an object");
        assert_eq!((p.namespace.as_str(), p.name.as_str()), ("a", "p"));
        assert_eq!(
            p.json,
            r#"{"metadata":{"name":"p","namespace":"a"},"status":{"podIP":"10.0.0.1","phase":"Running"}}"#
        );
        let dual = r#"{"metadata":{"name":"p","namespace":"a"},"status":{"podIP":"10.0.0.1",
            "podIPs": [ {"ip": "10.0.0.1"},
                        {"ip": "fd00::1"} ]}}"#;
        assert_eq!(
            prune(Kind::Pod, dual, Reads::ALL).expect("an object").json,
            r#"{"metadata":{"name":"p","namespace":"a"},"status":{"podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}]}}"#
        );

        let slice = r#"{"kind":"EndpointSlice","addressType":"IPv4","metadata":{"name":"s-1","namespace":"a",
            "labels":{"kubernetes.io/service-name":"s"},"annotations":{"k":"v"}},"ports":[{"name":"http","port":80,
            "protocol":"TCP","appProtocol":"http"}],"endpoints":[{"addresses":["10.0.0.1"],"nodeName":"n",
            "conditions":{"ready":true,"serving":true},"targetRef":{"kind":"Pod","name":"p","uid":"u"},"zone":"z"}]}"#;
        assert_eq!(
            prune(Kind::EndpointSlice, slice, Reads::ALL).expect("an object").json,
            concat!(
                r#"{"metadata":{"name":"s-1","namespace":"a","labels":{"kubernetes.io/service-name":"s"}},"#,
                r#""addressType":"IPv4","ports":[{"name":"http","port":80,"protocol":"TCP"}],"#,
                r#""endpoints":[{"addresses":["10.0.0.1"],"targetRef":{"name":"p"},"zone":"z","conditions":{"ready":true}}]}"#
            )
        );
        // A stanza without `endpoint_pod_names` and `zonal` keeps neither.
        let plain = Reads { pod_names: false, zones: false };
        assert_eq!(
            prune(Kind::EndpointSlice, slice, plain).expect("an object").json,
            concat!(
                r#"{"metadata":{"name":"s-1","namespace":"a","labels":{"kubernetes.io/service-name":"s"}},"#,
                r#""addressType":"IPv4","ports":[{"name":"http","port":80,"protocol":"TCP"}],"#,
                r#""endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true}}]}"#
            )
        );
        assert_eq!(Reads::from_bits(Reads::ALL.bits()), Reads::ALL);
        assert_eq!(Reads::from_bits(plain.bits()), plain);

        let service = r#"{"metadata":{"name":"s","namespace":"a","uid":"u"},"spec":{"type":"ClusterIP",
            "clusterIP":"10.96.0.1","clusterIPs":["10.96.0.1"],"selector":{"app":"s"},"sessionAffinity":"None",
            "ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]},"status":{"loadBalancer":{}}}"#;
        assert_eq!(
            prune(Kind::Service, service, Reads::ALL).expect("an object").json,
            r#"{"metadata":{"name":"s","namespace":"a"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.1","clusterIPs":["10.96.0.1"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#
        );
    }

    #[test]
    fn an_indented_file_is_kept_without_its_layout() {
        let indented =
            "{\n  \"metadata\": {\n    \"name\": \"n\",\n    \"labels\": {\n      \"a\": \"b\"\n    }\n  }\n}";
        assert_eq!(
            prune(Kind::Namespace, indented, Reads::ALL).expect("an object").json,
            r#"{"metadata":{"labels":{"a":"b"},"name":"n"}}"#
        );
    }

    #[test]
    fn an_object_of_another_shape_passes_whole_and_text_is_refused() {
        let odd = r#"{"metadata":{"name":"s","namespace":"a"},"spec":{"ports":"eighty"}}"#;
        assert_eq!(prune(Kind::Service, odd, Reads::ALL).expect("an object").json, odd);
        assert!(prune(Kind::Service, "[1,2]", Reads::ALL).is_none());
        assert!(prune(Kind::Service, "not json", Reads::ALL).is_none());
    }
}
