//! The host's copy of a stanza's cluster objects, in the contract's terms: a table ordered by
//! kind (in relist order), namespace and name, holding each object's pruned JSON, and the events
//! that hand the whole table to an empty module instance.

use std::collections::BTreeMap;

use crate::module::wit::{Event, Kind, Object};

/// (kind rank, namespace, name) → the object's kind and pruned JSON.
pub type Table = BTreeMap<(u8, String, String), (Kind, String)>;

/// Kinds in the order a relist sends them: namespaces first, since services depend on them.
pub const KINDS: [Kind; 5] = [Kind::Namespace, Kind::Service, Kind::EndpointSlice, Kind::Pod, Kind::ServiceImport];

/// A kind's place in [`KINDS`]: the first part of a table key.
pub fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Namespace => 0,
        Kind::Service => 1,
        Kind::EndpointSlice => 2,
        Kind::Pod => 3,
        Kind::ServiceImport => 4,
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
    }
}

/// One relist per kind with every object of `table`, then the sync state.
pub fn relist_events(table: &Table, synced: bool) -> Vec<Event> {
    let mut events = Vec::with_capacity(table.len() + 2 * KINDS.len() + 1);
    for kind in KINDS {
        let r = rank(kind);
        events.push(Event::RelistStart(kind));
        let kind_range = (r, String::new(), String::new())..(r + 1, String::new(), String::new());
        events.extend(
            table.range(kind_range).map(|(_, (k, json))| Event::Apply(Object { kind: *k, json: json.clone() })),
        );
        events.push(Event::RelistDone(kind));
    }
    events.push(Event::Synced(synced));
    events
}
