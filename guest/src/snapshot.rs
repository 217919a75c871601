//! One stanza's view of its cluster: the decoded objects, the indexes queries need, and the
//! watch-event protocol that keeps them exact. A relist updates the objects in place and, on
//! `RelistDone`, removes those it did not list: a name never vanishes while its kind is
//! relisted, and a relist holds no second copy of the cluster (a bit per object, not a table).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::object::{
    self, EndpointSlice, Key, Namespace, ObjectError, Pod, Service, ServiceExport, ServiceImport, ServiceKind,
};
use crate::pods::{PodAt, Pods};
use crate::slab::{Ids, Keyed, Slab, unindex};

/// The kinds of object a stanza watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Namespace,
    Service,
    EndpointSlice,
    Pod,
    ServiceImport,
    ServiceExport,
}

/// One watch event (see the WIT `event` variant).
#[derive(Clone, Debug)]
pub enum Event {
    Apply(Kind, String),
    Delete(Kind, String),
    RelistStart(Kind),
    RelistDone(Kind),
    Synced(bool),
}

/// An object skipped as malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub kind: Kind,
    pub name: String,
    pub reason: String,
}

/// Objects of one kind, and which of them the relist in progress has listed (by slot).
#[derive(Debug)]
struct Kept<T> {
    live: Slab<T>,
    listed: Option<Vec<u64>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept { live: Slab::default(), listed: None }
    }
}

impl<T: Keyed> Kept<T> {
    /// Puts `value` in (see [`Slab::insert`]), listed if a relist is in progress.
    fn insert(&mut self, value: T) -> (u32, Option<T>) {
        let (id, old) = self.live.insert(value);
        if let Some(listed) = self.listed.as_mut() {
            let word = id as usize / 64;
            if listed.len() <= word {
                listed.resize(word + 1, 0);
            }
            listed[word] |= 1 << (id % 64);
        }
        (id, old)
    }

    fn remove(&mut self, key: &Key) -> Option<(u32, T)> {
        self.live.remove(key)
    }

    fn start_relist(&mut self) {
        self.listed = Some(Vec::new());
    }

    /// Ends a relist: takes out every object it did not list, returned with its slot; None if
    /// no relist was in progress.
    fn finish_relist(&mut self) -> Option<Vec<(u32, T)>> {
        let listed = self.listed.take()?;
        let is_listed = |id: u32| listed.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0);
        let gone: Vec<Key> = self.live.iter().filter(|(id, _)| !is_listed(*id)).map(|(_, v)| v.key().clone()).collect();
        Some(gone.iter().filter_map(|key| self.live.remove(key)).collect())
    }
}

impl Keyed for Namespace {
    fn key(&self) -> &Key {
        &self.key
    }
}

impl Keyed for ServiceImport {
    fn key(&self) -> &Key {
        &self.key
    }
}

impl Keyed for ServiceExport {
    fn key(&self) -> &Key {
        &self.key
    }
}

impl Keyed for Service {
    fn key(&self) -> &Key {
        &self.key
    }
}

impl Keyed for EndpointSlice {
    fn key(&self) -> &Key {
        &self.key
    }
}

/// The snapshot of one stanza's cluster.
#[derive(Debug, Default)]
pub struct Snapshot {
    namespaces: Kept<Namespace>,
    services: Kept<Service>,
    slices: Kept<EndpointSlice>,
    pods: Pods,
    imports: Kept<ServiceImport>,
    /// The Services this cluster exports to its clusterset (`clusterset`, without `all`).
    exports: Kept<ServiceExport>,
    /// service key → slots of its endpoint slices (derived from `slices.live`).
    slices_by_service: HashMap<Key, Ids>,
    /// ServiceImport key → slots of its multicluster endpoint slices (derived from `slices.live`).
    slices_by_import: HashMap<Key, Ids>,
    /// cluster IP → slots of services holding it (derived from `services.live`), for PTR.
    services_by_ip: HashMap<IpAddr, Ids>,
    /// endpoint address → slots of slices holding it (derived from `slices.live`), for PTR.
    slices_by_ip: HashMap<IpAddr, Ids>,
    synced: bool,
    /// Seconds since the epoch of the last change: the zone's SOA serial.
    modified: u64,
    /// Whether the stanza selects by labels (`labels`, `namespace_labels`): without a selector
    /// nothing reads an object's labels, and they are not kept (a few hundred bytes an object).
    keep_labels: bool,
    keep_namespace_labels: bool,
    /// Likewise an endpoint's pod name (read by `endpoint_pod_names` only) and its zone (read by
    /// `zonal` only): a large cluster has a hundred thousand endpoints.
    keep_pod_names: bool,
    keep_zones: bool,
}

impl Snapshot {
    /// An empty snapshot for a stanza whose options are `stanza`'s.
    pub fn for_stanza(stanza: &crate::config::Stanza) -> Self {
        Snapshot {
            keep_labels: stanza.labels.is_some(),
            keep_namespace_labels: stanza.namespace_labels.is_some(),
            keep_pod_names: stanza.endpoint_pod_names,
            keep_zones: stanza.zonal,
            ..Snapshot::default()
        }
    }

    /// Applies `events` in order; returns the objects skipped as malformed.
    pub fn apply(&mut self, now: u64, events: Vec<Event>) -> Vec<Rejected> {
        let mut rejected = Vec::new();
        let mut changed = false;
        for event in events {
            match event {
                Event::Apply(kind, json) => match self.put(kind, &json) {
                    Ok(()) => changed = true,
                    Err(e) => rejected.push(Rejected {
                        kind,
                        name: object::key_of(&json).map(|k| k.to_string()).unwrap_or_default(),
                        reason: e.to_string(),
                    }),
                },
                Event::Delete(kind, json) => match object::key_of(&json) {
                    Ok(key) => changed |= self.remove(kind, key),
                    Err(e) => rejected.push(Rejected { kind, name: String::new(), reason: e.to_string() }),
                },
                Event::RelistStart(kind) => self.start_relist(kind),
                Event::RelistDone(kind) => changed |= self.finish_relist(kind),
                Event::Synced(s) => self.synced = s,
            }
        }
        if changed {
            self.modified = now;
        }
        rejected
    }

    fn put(&mut self, kind: Kind, json: &str) -> Result<(), ObjectError> {
        match kind {
            Kind::Namespace => {
                let mut ns = Namespace::decode(json)?;
                if !self.keep_namespace_labels {
                    ns.labels.clear();
                }
                self.namespaces.insert(ns);
            }
            Kind::Service => {
                let mut svc = Service::decode(json)?;
                if !self.keep_labels {
                    svc.labels.clear();
                }
                let (id, old) = self.services.insert(svc);
                if let Some(old) = old {
                    unindex_service(&mut self.services_by_ip, &old, id);
                }
                index_service(&mut self.services_by_ip, &self.services.live, id);
            }
            Kind::EndpointSlice => {
                let mut slice = EndpointSlice::decode(json)?;
                if !self.keep_labels {
                    slice.labels.clear();
                }
                for e in &mut slice.endpoints {
                    e.pod_name = e.pod_name.take().filter(|_| self.keep_pod_names);
                    e.zone = e.zone.take().filter(|_| self.keep_zones);
                }
                let (id, old) = self.slices.insert(slice);
                if let Some(old) = old {
                    self.unindex_slice(&old, id);
                }
                self.index_slice(id);
            }
            Kind::Pod => {
                let pod = Pod::decode(json)?;
                if pod.finished {
                    // As if listed with CoreDNS's field selector: a pod that finished is gone.
                    self.remove(Kind::Pod, pod.key);
                    return Ok(());
                }
                self.pods.upsert(&pod.key.namespace, &pod.key.name, pod.ip, pod.terminating);
            }
            Kind::ServiceImport => {
                let import = ServiceImport::decode(json)?;
                self.imports.insert(import);
            }
            Kind::ServiceExport => {
                self.exports.insert(ServiceExport::decode(json)?);
            }
        }
        Ok(())
    }

    fn remove(&mut self, kind: Kind, key: Key) -> bool {
        match kind {
            Kind::Namespace => {
                let key = Key { namespace: crate::atom::atom(""), name: key.name };
                self.namespaces.remove(&key).is_some()
            }
            Kind::Service => match self.services.remove(&key) {
                Some((id, old)) => {
                    unindex_service(&mut self.services_by_ip, &old, id);
                    true
                }
                None => false,
            },
            Kind::EndpointSlice => match self.slices.remove(&key) {
                Some((id, old)) => {
                    self.unindex_slice(&old, id);
                    true
                }
                None => false,
            },
            Kind::Pod => self.pods.remove(&key.namespace, &key.name),
            Kind::ServiceImport => self.imports.remove(&key).is_some(),
            Kind::ServiceExport => self.exports.remove(&key).is_some(),
        }
    }

    fn start_relist(&mut self, kind: Kind) {
        match kind {
            Kind::Namespace => self.namespaces.start_relist(),
            Kind::Service => self.services.start_relist(),
            Kind::EndpointSlice => self.slices.start_relist(),
            Kind::Pod => self.pods.start_relist(),
            Kind::ServiceImport => self.imports.start_relist(),
            Kind::ServiceExport => self.exports.start_relist(),
        }
    }

    fn finish_relist(&mut self, kind: Kind) -> bool {
        match kind {
            Kind::Namespace => self.namespaces.finish_relist().is_some(),
            Kind::Service => match self.services.finish_relist() {
                Some(gone) => {
                    for (id, old) in gone {
                        unindex_service(&mut self.services_by_ip, &old, id);
                    }
                    true
                }
                None => false,
            },
            Kind::EndpointSlice => match self.slices.finish_relist() {
                Some(gone) => {
                    for (id, old) in gone {
                        self.unindex_slice(&old, id);
                    }
                    true
                }
                None => false,
            },
            Kind::Pod => self.pods.finish_relist(),
            Kind::ServiceImport => self.imports.finish_relist().is_some(),
            Kind::ServiceExport => self.exports.finish_relist().is_some(),
        }
    }

    fn index_slice(&mut self, id: u32) {
        let slices = &self.slices.live;
        let Some(s) = slices.at(id) else { return };
        for ip in s.endpoints.iter().flat_map(|e| &e.addresses) {
            self.slices_by_ip.entry(*ip).or_default().insert(id, slices);
        }
        self.slices_by_service.entry(s.service.clone()).or_default().insert(id, slices);
        if let Some(import) = &s.service_import {
            self.slices_by_import.entry(import.clone()).or_default().insert(id, slices);
        }
    }
    fn unindex_slice(&mut self, s: &EndpointSlice, id: u32) {
        for ip in s.endpoints.iter().flat_map(|e| &e.addresses) {
            unindex(&mut self.slices_by_ip, ip, id);
        }
        unindex(&mut self.slices_by_service, &s.service, id);
        if let Some(import) = &s.service_import {
            unindex(&mut self.slices_by_import, import, id);
        }
    }

    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.live.find("", name)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.live.find(namespace, name)
    }

    /// Every endpoint slice of the service `key`, in name order.
    pub fn slices_of(&self, key: &Key) -> impl Iterator<Item = &EndpointSlice> {
        self.slices_by_service.get(key).into_iter().flat_map(|ids| ids.resolve(&self.slices.live))
    }

    pub fn service_import(&self, namespace: &str, name: &str) -> Option<&ServiceImport> {
        self.imports.live.find(namespace, name)
    }

    /// Every multicluster endpoint slice of the ServiceImport `key`, in name order.
    pub fn slices_of_import(&self, key: &Key) -> impl Iterator<Item = &EndpointSlice> {
        self.slices_by_import.get(key).into_iter().flat_map(|ids| ids.resolve(&self.slices.live))
    }

    /// Every pod whose address (`status.podIP`) is `ip`.
    pub fn pods_with_ip(&self, ip: &IpAddr) -> impl Iterator<Item = PodAt<'_>> {
        self.pods.with_ip(ip)
    }

    /// Every service holding `ip` as a cluster IP, in key order.
    pub fn services_with_ip(&self, ip: &IpAddr) -> impl Iterator<Item = &Service> {
        self.services_by_ip.get(ip).into_iter().flat_map(|ids| ids.resolve(&self.services.live))
    }

    /// Every endpoint slice with an endpoint at `ip`, in key order.
    pub fn slices_with_ip(&self, ip: &IpAddr) -> impl Iterator<Item = &EndpointSlice> {
        self.slices_by_ip.get(ip).into_iter().flat_map(|ids| ids.resolve(&self.slices.live))
    }

    /// Every service, in key order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.live.sorted()
    }

    /// Every ServiceImport, in key order.
    pub fn service_imports(&self) -> impl Iterator<Item = &ServiceImport> {
        self.imports.live.sorted()
    }

    /// Whether a ServiceExport names the Service `namespace/name`.
    pub fn exported(&self, namespace: &str, name: &str) -> bool {
        self.exports.live.find(namespace, name).is_some()
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn modified(&self) -> u64 {
        self.modified
    }
}

/// Indexes a service's cluster IPs (the service at `id` of `services`).
fn index_service(by_ip: &mut HashMap<IpAddr, Ids>, services: &Slab<Service>, id: u32) {
    if let Some(Service { kind: ServiceKind::ClusterIp(ips), .. }) = services.at(id) {
        for ip in ips {
            by_ip.entry(*ip).or_default().insert(id, services);
        }
    }
}

fn unindex_service(by_ip: &mut HashMap<IpAddr, Ids>, s: &Service, id: u32) {
    if let ServiceKind::ClusterIp(ips) = &s.kind {
        for ip in ips {
            unindex(by_ip, ip, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str) -> String {
        format!(r#"{{"metadata":{{"name":"{name}","namespace":"{ns}"}},"spec":{{"clusterIP":"{ip}"}}}}"#)
    }
    fn slice(ns: &str, name: &str, service: &str, ip: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"kubernetes.io/service-name":"{service}"}}}},"endpoints":[{{"addresses":["{ip}"]}}]}}"#
        )
    }

    #[test]
    fn a_relist_updates_in_place_and_drops_what_it_did_not_list_when_done() {
        let mut s = Snapshot::default();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        s.apply(
            1,
            vec![
                Event::Apply(Kind::Service, svc("a", "old", "10.0.0.1")),
                Event::Apply(Kind::Service, svc("a", "kept", "10.0.0.3")),
            ],
        );
        s.apply(
            2,
            vec![
                Event::RelistStart(Kind::Service),
                Event::Apply(Kind::Service, svc("a", "new", "10.0.0.2")),
                Event::Apply(Kind::Service, svc("a", "kept", "10.0.0.3")),
            ],
        );
        assert!(s.service("a", "old").is_some(), "what the relist has not listed answers during it");
        assert!(s.service("a", "new").is_some(), "what it listed answers at once");
        s.apply(3, vec![Event::RelistDone(Kind::Service)]);
        assert!(s.service("a", "old").is_none());
        assert_eq!(s.services_with_ip(&ip("10.0.0.1")).count(), 0, "unindexed");
        assert!(s.service("a", "new").is_some() && s.service("a", "kept").is_some());
        assert_eq!(s.services_with_ip(&ip("10.0.0.3")).map(|x| &*x.key.name).collect::<Vec<_>>(), ["kept"]);
        assert_eq!(s.modified(), 3);
        // A second relist starts from nothing listed.
        s.apply(4, vec![Event::RelistStart(Kind::Service), Event::Apply(Kind::Service, svc("a", "new", "10.0.0.2"))]);
        s.apply(5, vec![Event::RelistDone(Kind::Service)]);
        assert!(s.service("a", "kept").is_none() && s.service("a", "new").is_some());
    }

    #[test]
    fn addresses_are_indexed_for_ptr_through_updates_deletes_and_relists() {
        let mut s = Snapshot::default();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let names = |s: &Snapshot, t: &str| {
            let svcs: Vec<String> = s.services_with_ip(&ip(t)).map(|x| x.key.name.to_string()).collect();
            let slices: Vec<String> = s.slices_with_ip(&ip(t)).map(|x| x.key.name.to_string()).collect();
            (svcs, slices)
        };
        s.apply(
            1,
            vec![
                Event::Apply(Kind::Service, svc("a", "web", "10.0.0.1")),
                Event::Apply(Kind::EndpointSlice, slice("a", "web-1", "web", "10.1.0.1")),
            ],
        );
        assert_eq!(names(&s, "10.0.0.1"), (vec!["web".to_string()], vec![]));
        assert_eq!(names(&s, "10.1.0.1"), (vec![], vec!["web-1".to_string()]));
        // A changed cluster IP and a moved endpoint leave nothing at the old addresses.
        s.apply(
            2,
            vec![
                Event::Apply(Kind::Service, svc("a", "web", "10.0.0.2")),
                Event::Apply(Kind::EndpointSlice, slice("a", "web-1", "web", "10.1.0.2")),
            ],
        );
        assert_eq!(names(&s, "10.0.0.1"), (vec![], vec![]));
        assert_eq!(names(&s, "10.0.0.2").0, ["web"]);
        assert_eq!(names(&s, "10.1.0.1").1, Vec::<String>::new());
        // A relist without the service drops it from the index when it completes.
        s.apply(3, vec![Event::RelistStart(Kind::Service)]);
        assert_eq!(names(&s, "10.0.0.2").0, ["web"], "kept while the relist runs");
        s.apply(4, vec![Event::RelistDone(Kind::Service)]);
        assert_eq!(names(&s, "10.0.0.2").0, Vec::<String>::new());
        s.apply(5, vec![Event::Delete(Kind::EndpointSlice, slice("a", "web-1", "web", "10.1.0.2"))]);
        assert_eq!(names(&s, "10.1.0.2").1, Vec::<String>::new());
    }

    #[test]
    fn slices_are_indexed_by_service_through_updates_and_deletes() {
        let mut s = Snapshot::default();
        let key = Key { namespace: "a".into(), name: "h".into() };
        s.apply(
            1,
            vec![
                Event::Apply(Kind::EndpointSlice, slice("a", "h-1", "h", "10.1.0.1")),
                Event::Apply(Kind::EndpointSlice, slice("a", "h-2", "h", "10.1.0.2")),
            ],
        );
        assert_eq!(s.slices_of(&key).count(), 2);
        s.apply(2, vec![Event::Apply(Kind::EndpointSlice, slice("a", "h-2", "other", "10.1.0.2"))]);
        assert_eq!(s.slices_of(&key).count(), 1);
        s.apply(3, vec![Event::Delete(Kind::EndpointSlice, slice("a", "h-1", "h", "10.1.0.1"))]);
        assert_eq!(s.slices_of(&key).count(), 0);
        s.apply(
            4,
            vec![
                Event::RelistStart(Kind::EndpointSlice),
                Event::Apply(Kind::EndpointSlice, slice("a", "h-3", "h", "10.1.0.3")),
                Event::RelistDone(Kind::EndpointSlice),
            ],
        );
        assert_eq!(s.slices_of(&key).map(|s| &*s.key.name).collect::<Vec<_>>(), ["h-3"]);
    }

    #[test]
    fn a_malformed_object_is_rejected_and_the_rest_kept() {
        let mut s = Snapshot::default();
        let rejected = s.apply(
            1,
            vec![
                Event::Apply(Kind::Service, svc("a", "good", "10.0.0.1")),
                Event::Apply(Kind::Service, svc("a", "bad", "not-an-ip")),
            ],
        );
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].name, "a/bad");
        assert!(s.service("a", "good").is_some());
    }
}
