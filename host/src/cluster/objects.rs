//! The host's copy of a stanza's cluster objects, in the contract's terms: a table by kind (in
//! relist order), namespace and name, holding each object's pruned JSON; the events that hand
//! the whole table to an empty module instance, and those that turn one table into another.

use std::collections::HashMap;

use crate::contract::wit::{Event, Kind, Object};

/// An object's identity within its kind. The namespace is shared by the keys of one
/// namespace's objects, so a whole cluster's keys in flight cost one allocation per name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub namespace: std::sync::Arc<str>,
    pub name: Box<str>,
}

/// One change of a stanza's objects, as every source emits it: the contract's event and, for an
/// object applied or deleted, its key, read once where the object itself was read (nothing
/// downstream parses the JSON again to learn it).
#[derive(Debug)]
pub struct Change {
    pub event: Event,
    pub key: Option<Key>,
}

impl Change {
    pub fn apply(kind: Kind, namespace: &str, name: &str, json: String) -> Change {
        Change {
            event: Event::Apply(Object { kind, json }),
            key: Some(Key { namespace: namespace.into(), name: name.into() }),
        }
    }

    /// A delete carries only the object's identity, which is all a delete needs.
    pub fn delete(kind: Kind, namespace: &str, name: &str) -> Change {
        let json = serde_json::json!({"metadata": {"namespace": namespace, "name": name}}).to_string();
        Change {
            event: Event::Delete(Object { kind, json }),
            key: Some(Key { namespace: namespace.into(), name: name.into() }),
        }
    }

    /// A change with no object: a relist's start or end, or the sync state.
    pub fn marker(event: Event) -> Change {
        Change { event, key: None }
    }
}

/// namespace → name → pruned JSON, for one kind. Nested so that a namespace's name is held once
/// for all its objects, not once per object: a pod costs its name and its JSON.
pub type KindTable = HashMap<Box<str>, HashMap<Box<str>, Box<str>>>;

/// Every object of a stanza by kind (in [`KINDS`] order), namespace and name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    kinds: [KindTable; KINDS.len()],
}

impl Table {
    pub fn insert(&mut self, kind: Kind, namespace: &str, name: &str, json: String) {
        self.insert_named(kind, namespace, name.into(), json);
    }

    /// As `insert`, the name moved in rather than copied.
    pub fn insert_named(&mut self, kind: Kind, namespace: &str, name: Box<str>, json: String) {
        let by_name = match self.kinds[rank(kind) as usize].get_mut(namespace) {
            Some(by_name) => by_name,
            None => self.kinds[rank(kind) as usize].entry(namespace.into()).or_default(),
        };
        by_name.insert(name, json.into_boxed_str());
    }

    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) {
        let of_kind = &mut self.kinds[rank(kind) as usize];
        if let Some(by_name) = of_kind.get_mut(namespace) {
            by_name.remove(name);
            if by_name.is_empty() {
                of_kind.remove(namespace);
            }
        }
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&str> {
        self.kinds[rank(kind) as usize].get(namespace)?.get(name).map(|j| &**j)
    }

    /// Moves every object of `kind` out of this table into `into` (replacing any of the same
    /// key there): nothing is copied.
    pub fn move_kind(&mut self, kind: Kind, into: &mut Table) {
        let r = rank(kind) as usize;
        let moved = std::mem::take(&mut self.kinds[r]);
        if into.kinds[r].is_empty() {
            into.kinds[r] = moved;
            return;
        }
        for (ns, by_name) in moved {
            into.kinds[r].entry(ns).or_default().extend(by_name);
        }
    }

    /// Drops every object of `kind`.
    pub fn clear_kind(&mut self, kind: Kind) {
        self.kinds[rank(kind) as usize] = KindTable::default();
    }

    pub fn len(&self) -> usize {
        self.kinds.iter().flat_map(|k| k.values()).map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(HashMap::is_empty)
    }

    /// Every object of `kind` as (namespace, name, JSON).
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (&str, &str, &str)> {
        self.kinds[rank(kind) as usize]
            .iter()
            .flat_map(|(ns, by_name)| by_name.iter().map(move |(name, json)| (&**ns, &**name, &**json)))
    }

    /// Every object of `kind`, taken: its JSON.
    fn take_kind(&mut self, kind: Kind) -> impl Iterator<Item = (std::sync::Arc<str>, Box<str>, Box<str>)> {
        std::mem::take(&mut self.kinds[rank(kind) as usize]).into_iter().flat_map(|(ns, by_name)| {
            let ns: std::sync::Arc<str> = ns.into();
            by_name.into_iter().map(move |(name, json)| (ns.clone(), name, json))
        })
    }
}

/// Kinds in the order a relist sends them: namespaces first, since services depend on them.
/// The one list of the kinds the host knows: ranks, names and watches are read from it.
pub const KINDS: [Kind; 6] =
    [Kind::Namespace, Kind::Service, Kind::EndpointSlice, Kind::Pod, Kind::ServiceImport, Kind::ServiceExport];

/// A kind's place in [`KINDS`]: the first part of a table key.
pub fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Namespace => 0,
        Kind::Service => 1,
        Kind::EndpointSlice => 2,
        Kind::Pod => 3,
        Kind::ServiceImport => 4,
        Kind::ServiceExport => 5,
    }
}

/// A kind's name as Kubernetes spells it, for logs and metric labels.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "Namespace",
        Kind::Service => "Service",
        Kind::EndpointSlice => "EndpointSlice",
        Kind::Pod => "Pod",
        Kind::ServiceImport => "ServiceImport",
        Kind::ServiceExport => "ServiceExport",
    }
}

/// One relist per kind with every object of `tables` (which hold no key twice), then the sync
/// state, made as they are taken (each object's JSON copied only then).
pub fn relist_events<'a>(tables: &'a [&'a Table], synced: bool) -> impl Iterator<Item = Event> + 'a {
    KINDS
        .into_iter()
        .flat_map(move |kind| {
            let objects = tables
                .iter()
                .flat_map(move |t| t.of_kind(kind))
                .map(move |(_, _, json)| Event::Apply(Object { kind, json: json.into() }));
            std::iter::once(Event::RelistStart(kind)).chain(objects).chain(std::iter::once(Event::RelistDone(kind)))
        })
        .chain(std::iter::once(Event::Synced(synced)))
}

/// The same events, taking the objects instead of copying them (a manifest file's first read).
pub fn into_relist_events(mut table: Table, synced: bool) -> Vec<Change> {
    let mut events = Vec::with_capacity(table.len() + 2 * KINDS.len() + 1);
    for kind in KINDS {
        events.push(Change::marker(Event::RelistStart(kind)));
        events.extend(table.take_kind(kind).map(|(namespace, name, json)| Change {
            event: Event::Apply(Object { kind, json: json.into() }),
            key: Some(Key { namespace, name }),
        }));
        events.push(Change::marker(Event::RelistDone(kind)));
    }
    events.push(Change::marker(Event::Synced(synced)));
    events
}

/// The changes that turn `held` into `next`, taking `next`'s objects.
pub fn changes(held: &Table, mut next: Table) -> Vec<Change> {
    let mut events = Vec::new();
    for kind in KINDS {
        for (namespace, name, _) in held.of_kind(kind) {
            if next.get(kind, namespace, name).is_none() {
                events.push(Change::delete(kind, namespace, name));
            }
        }
        let of_kind = std::mem::take(&mut next.kinds[rank(kind) as usize]);
        for (namespace, by_name) in of_kind {
            let namespace: std::sync::Arc<str> = namespace.into();
            for (name, json) in by_name {
                if held.get(kind, &namespace, &name) != Some(&*json) {
                    events.push(Change {
                        event: Event::Apply(Object { kind, json: json.into() }),
                        key: Some(Key { namespace: namespace.clone(), name }),
                    });
                }
            }
        }
    }
    events
}
