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

/// namespace → name → pruned JSON (as [`compact`] keeps it), for one kind. Nested so that a
/// namespace's name is held once for all its objects, not once per object: a pod costs its name
/// and its JSON.
pub type KindTable = HashMap<Box<str>, HashMap<Box<str>, Box<str>>>;

/// Marks JSON kept without the identity its key holds.
const STRIPPED: char = '\u{1}';

/// The start of a pruned object's JSON that its key already says: the pruner writes `metadata`
/// first, `name` then `namespace` first in it (a namespace object has none).
fn identity(namespace: &str, name: &str) -> Option<String> {
    let name = serde_json::to_string(name).ok()?;
    Some(if namespace.is_empty() {
        format!("{{\"metadata\":{{\"name\":{name}")
    } else {
        format!("{{\"metadata\":{{\"name\":{name},\"namespace\":{}", serde_json::to_string(namespace).ok()?)
    })
}

/// `json` as the table keeps it: without the identity its key holds (a pod's pruned JSON is
/// half identity), when it starts with exactly that; otherwise as it is.
fn compact(namespace: &str, name: &str, json: String) -> Box<str> {
    match identity(namespace, name) {
        Some(prefix) if json.starts_with(&prefix) && json[prefix.len()..].starts_with(['}', ',']) => {
            let mut kept = String::with_capacity(json.len() - prefix.len() + STRIPPED.len_utf8());
            kept.push(STRIPPED);
            kept.push_str(&json[prefix.len()..]);
            kept.into_boxed_str()
        }
        _ => json.into_boxed_str(),
    }
}

/// The JSON [`compact`] kept, whole again.
fn expand(namespace: &str, name: &str, kept: &str) -> String {
    match kept.strip_prefix(STRIPPED) {
        Some(rest) => identity(namespace, name).map(|prefix| prefix + rest).unwrap_or_default(),
        None => kept.to_string(),
    }
}

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
        let json = compact(namespace, &name, json);
        by_name.insert(name, json);
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

    /// The object's JSON, whole.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<String> {
        self.kinds[rank(kind) as usize].get(namespace)?.get(name).map(|j| expand(namespace, name, j))
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

    /// Every object of `kind` as (namespace, name, JSON), each JSON made whole as it is taken.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (&str, &str, String)> {
        self.kinds[rank(kind) as usize]
            .iter()
            .flat_map(|(ns, by_name)| by_name.iter().map(move |(name, json)| (&**ns, &**name, expand(ns, name, json))))
    }

    /// Every key of `kind`.
    fn keys_of(&self, kind: Kind) -> impl Iterator<Item = (&str, &str)> {
        self.kinds[rank(kind) as usize].iter().flat_map(|(ns, by_name)| by_name.keys().map(move |name| (&**ns, &**name)))
    }

    /// Every object of `kind`, taken: its JSON, whole.
    fn take_kind(&mut self, kind: Kind) -> impl Iterator<Item = (std::sync::Arc<str>, Box<str>, String)> {
        std::mem::take(&mut self.kinds[rank(kind) as usize]).into_iter().flat_map(|(ns, by_name)| {
            let ns: std::sync::Arc<str> = ns.into();
            by_name.into_iter().map(move |(name, json)| {
                let whole = expand(&ns, &name, &json);
                (ns.clone(), name, whole)
            })
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
                .map(move |(_, _, json)| Event::Apply(Object { kind, json }));
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
            event: Event::Apply(Object { kind, json }),
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
        for (namespace, name) in held.keys_of(kind) {
            if next.kinds[rank(kind) as usize].get(namespace).is_none_or(|by_name| !by_name.contains_key(name)) {
                events.push(Change::delete(kind, namespace, name));
            }
        }
        let r = rank(kind) as usize;
        for (namespace, by_name) in std::mem::take(&mut next.kinds[r]) {
            let held_here = held.kinds[r].get(&namespace);
            let namespace: std::sync::Arc<str> = namespace.into();
            for (name, kept) in by_name {
                // Both tables keep JSON alike: compared as kept, made whole only when changed.
                if held_here.and_then(|h| h.get(&name)) != Some(&kept) {
                    let json = expand(&namespace, &name, &kept);
                    events.push(Change {
                        event: Event::Apply(Object { kind, json }),
                        key: Some(Key { namespace: namespace.clone(), name }),
                    });
                }
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_keeps_json_without_the_identity_its_key_holds_and_gives_it_back_whole() {
        let pod = r#"{"metadata":{"name":"web-1","namespace":"shop"},"status":{"podIP":"10.0.0.1"}}"#;
        let ns = r#"{"metadata":{"name":"shop","labels":{"a":"b"}}}"#;
        // Not the pruner's shape (namespace first): kept as it came.
        let odd = r#"{"metadata":{"namespace":"shop","name":"odd"}}"#;
        let mut t = Table::default();
        t.insert(Kind::Pod, "shop", "web-1", pod.into());
        t.insert(Kind::Namespace, "", "shop", ns.into());
        t.insert(Kind::Service, "shop", "odd", odd.into());
        let kept = |kind: Kind, namespace: &str, name: &str| {
            t.kinds[rank(kind) as usize].get(namespace).and_then(|b| b.get(name)).map(|j| j.to_string())
        };
        assert_eq!(kept(Kind::Pod, "shop", "web-1").as_deref(), Some("\u{1}},\"status\":{\"podIP\":\"10.0.0.1\"}}"));
        assert_eq!(kept(Kind::Service, "shop", "odd").as_deref(), Some(odd));
        assert_eq!(t.get(Kind::Pod, "shop", "web-1").as_deref(), Some(pod));
        assert_eq!(t.get(Kind::Namespace, "", "shop").as_deref(), Some(ns));
        let events: Vec<String> = relist_events(&[&t], true)
            .filter_map(|e| match e {
                Event::Apply(o) => Some(o.json),
                _ => None,
            })
            .collect();
        assert_eq!(events, [ns, odd, pod], "whole, in relist order");

        // A change is told whole; what did not change is not told.
        let mut next = Table::default();
        next.insert(Kind::Pod, "shop", "web-1", pod.replace("10.0.0.1", "10.0.0.2"));
        next.insert(Kind::Namespace, "", "shop", ns.into());
        let told: Vec<String> = changes(&t, next)
            .into_iter()
            .map(|c| match c.event {
                Event::Apply(o) => o.json,
                Event::Delete(o) => format!("delete {}", o.json),
                _ => String::new(),
            })
            .collect();
        assert_eq!(told, [r#"delete {"metadata":{"name":"odd","namespace":"shop"}}"#.to_string(), pod.replace("10.0.0.1", "10.0.0.2")]);
    }
}
