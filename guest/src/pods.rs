//! A stanza's pods as `pods verified` needs them: whether a pod with an address lives in a
//! namespace. A large cluster has a hundred thousand pods and a few hundred namespaces, so a pod
//! is kept as its name, an interned namespace id, its address and a flag, and the address index
//! holds the one pod of an address inline (a second pod at one address is rare: host-network
//! pods). A relist updates the one table in place and, when it is done, drops the pods it did
//! not list: no second table, so a relist costs no second copy of the pods.

use std::collections::HashMap;
use std::net::IpAddr;

/// A pod as the address index finds it.
#[derive(Clone, Copy, Debug)]
pub struct PodAt<'a> {
    pub namespace: &'a str,
    /// A deletion timestamp is set: CoreDNS stops answering for it at once.
    pub terminating: bool,
}

/// Namespace names by small id. Ids are never reused: a cluster's namespaces are few.
#[derive(Debug, Default)]
struct Namespaces {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Namespaces {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// What is kept of one pod, besides its key.
#[derive(Clone, Copy, Debug)]
struct Entry {
    ip: Option<IpAddr>,
    terminating: bool,
    /// Listed by the relist in progress (meaningless when none is).
    listed: bool,
}

/// A pod's key: its namespace by id, its name.
type Key = (u32, Box<str>);

/// The pods at one address: (namespace id, terminating), inline for the usual one.
#[derive(Debug)]
enum Holders {
    One(u32, bool),
    Many(Box<[(u32, bool)]>),
}

/// The pods of one stanza.
#[derive(Debug, Default)]
pub struct Pods {
    namespaces: Namespaces,
    live: HashMap<Key, Entry>,
    relisting: bool,
    by_ip: HashMap<IpAddr, Holders>,
}

impl Pods {
    /// Adds or replaces the pod `namespace`/`name`.
    pub fn upsert(&mut self, namespace: &str, name: &str, ip: Option<IpAddr>, terminating: bool) {
        let ns = self.namespaces.intern(namespace);
        let entry = Entry { ip, terminating, listed: true };
        if let Some(old) = self.live.insert((ns, Box::from(name)), entry) {
            unindex(&mut self.by_ip, ns, &old);
        }
        index(&mut self.by_ip, ns, &entry);
    }

    /// Removes the pod `namespace`/`name`; whether it was there.
    pub fn remove(&mut self, namespace: &str, name: &str) -> bool {
        let Some(ns) = self.namespaces.ids.get(namespace).copied() else { return false };
        let key: Key = (ns, name.into());
        match self.live.remove(&key) {
            Some(old) => {
                unindex(&mut self.by_ip, ns, &old);
                true
            }
            None => false,
        }
    }

    /// From now until [`Pods::finish_relist`], the pods upserted are the cluster's.
    pub fn start_relist(&mut self) {
        self.relisting = true;
        for entry in self.live.values_mut() {
            entry.listed = false;
        }
    }

    /// Drops the pods the relist did not list; false if no relist was in progress.
    pub fn finish_relist(&mut self) -> bool {
        if !std::mem::take(&mut self.relisting) {
            return false;
        }
        let by_ip = &mut self.by_ip;
        self.live.retain(|(ns, _), entry| {
            if !entry.listed {
                unindex(by_ip, *ns, entry);
            }
            entry.listed
        });
        true
    }

    /// Every pod whose address (`status.podIP`) is `ip`.
    pub fn with_ip(&self, ip: &IpAddr) -> impl Iterator<Item = PodAt<'_>> {
        let (one, many): (Option<(u32, bool)>, &[(u32, bool)]) = match self.by_ip.get(ip) {
            None => (None, &[]),
            Some(Holders::One(ns, t)) => (Some((*ns, *t)), &[]),
            Some(Holders::Many(all)) => (None, all),
        };
        one.into_iter()
            .chain(many.iter().copied())
            .map(|(ns, terminating)| PodAt { namespace: self.namespaces.name(ns), terminating })
    }
}

fn index(by_ip: &mut HashMap<IpAddr, Holders>, ns: u32, pod: &Entry) {
    let Some(ip) = pod.ip else { return };
    match by_ip.get_mut(&ip) {
        None => {
            by_ip.insert(ip, Holders::One(ns, pod.terminating));
        }
        Some(holders) => {
            let mut all = holders_vec(holders);
            all.push((ns, pod.terminating));
            *holders = Holders::Many(all.into_boxed_slice());
        }
    }
}

fn unindex(by_ip: &mut HashMap<IpAddr, Holders>, ns: u32, pod: &Entry) {
    let Some(ip) = pod.ip else { return };
    let Some(holders) = by_ip.get_mut(&ip) else { return };
    let mut all = holders_vec(holders);
    if let Some(at) = all.iter().position(|h| *h == (ns, pod.terminating)) {
        all.swap_remove(at);
    }
    match all.as_slice() {
        [] => {
            by_ip.remove(&ip);
        }
        [(ns, t)] => *holders = Holders::One(*ns, *t),
        _ => *holders = Holders::Many(all.into_boxed_slice()),
    }
}

fn holders_vec(holders: &Holders) -> Vec<(u32, bool)> {
    match holders {
        Holders::One(ns, t) => vec![(*ns, *t)],
        Holders::Many(all) => all.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pods: &Pods, ip: &str) -> Vec<(String, bool)> {
        let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut found: Vec<(String, bool)> =
            pods.with_ip(&ip).map(|p| (p.namespace.to_string(), p.terminating)).collect();
        found.sort();
        found
    }

    #[test]
    fn pods_are_found_by_address_through_changes_and_relists() {
        let mut pods = Pods::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}")));
        pods.upsert("shop", "web-1", ip("10.0.0.1"), false);
        pods.upsert("infra", "node-agent", ip("10.0.0.1"), false);
        pods.upsert("shop", "web-2", ip("10.0.0.2"), false);
        assert_eq!(at(&pods, "10.0.0.1"), [("infra".into(), false), ("shop".into(), false)]);
        // Moved to another address, then terminating.
        pods.upsert("shop", "web-1", ip("10.0.0.3"), false);
        pods.upsert("shop", "web-2", ip("10.0.0.2"), true);
        assert_eq!(at(&pods, "10.0.0.1"), [("infra".into(), false)]);
        assert_eq!(at(&pods, "10.0.0.3"), [("shop".into(), false)]);
        assert_eq!(at(&pods, "10.0.0.2"), [("shop".into(), true)]);
        assert!(pods.remove("infra", "node-agent") && !pods.remove("infra", "node-agent"));
        assert!(!pods.remove("nowhere", "x"));
        assert_eq!(at(&pods, "10.0.0.1"), []);
        // A relist answers for what it listed at once, and for the rest until it is done.
        pods.start_relist();
        pods.upsert("shop", "web-9", ip("10.0.0.9"), false);
        assert_eq!(at(&pods, "10.0.0.3"), [("shop".into(), false)]);
        assert_eq!(at(&pods, "10.0.0.9"), [("shop".into(), false)]);
        assert!(pods.finish_relist() && !pods.finish_relist());
        assert_eq!(at(&pods, "10.0.0.3"), []);
        assert_eq!(at(&pods, "10.0.0.9"), [("shop".into(), false)]);
    }
}
