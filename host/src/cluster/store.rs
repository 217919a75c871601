//! The host's copy of one stanza's cluster objects, as the module was fed them: what brings a
//! fresh module instance (after a trap, for a swap or a shadow) up to date, and what a manifest
//! file read again is compared with. Each object is held once, also while its kind is relisted:
//! a relist moves the kind's objects aside and takes each back as it is listed again, so what is
//! left aside when it is done is what went away.

use crate::cluster::objects::{Key, Table, relist_events};
use crate::contract::wit;

/// The objects of one stanza, in the contract's terms.
#[derive(Default)]
pub struct Store {
    live: Table,
    /// Objects of the kinds being relisted that the relist has not listed yet.
    unlisted: Table,
    synced: bool,
}

impl Store {
    /// Keeps what `event` changed; `key` is the object's, read where the object was.
    pub fn record(&mut self, event: wit::Event, key: Option<Key>) {
        match (event, key) {
            (wit::Event::Apply(o), Some(key)) => {
                self.unlisted.remove(o.kind, &key.namespace, &key.name);
                self.live.insert_named(o.kind, &key.namespace, key.name, o.json);
            }
            (wit::Event::Delete(o), Some(key)) => {
                self.unlisted.remove(o.kind, &key.namespace, &key.name);
                self.live.remove(o.kind, &key.namespace, &key.name);
            }
            // An object without a key was not read as an object: the module refuses it too.
            (wit::Event::Apply(_) | wit::Event::Delete(_), None) => {}
            // A relist begun again before it was done: what it listed is unlisted again too.
            (wit::Event::RelistStart(kind), _) => self.live.move_kind(kind, &mut self.unlisted),
            (wit::Event::RelistDone(kind), _) => self.unlisted.clear_kind(kind),
            (wit::Event::Synced(s), _) => self.synced = s,
        }
    }

    /// Hands `feed` this state as an empty instance needs it (one relist per kind, then sync) in
    /// batches of at most `batch` events built as they go, so a replay never holds a second copy
    /// of the whole cluster.
    pub fn replay<E>(&self, batch: usize, mut feed: impl FnMut(&[wit::Event]) -> Result<(), E>) -> Result<(), E> {
        let mut events = Vec::with_capacity(batch);
        for event in relist_events(&[&self.live, &self.unlisted], self.synced) {
            events.push(event);
            if events.len() == batch {
                feed(&events)?;
                events.clear();
            }
        }
        feed(&events)
    }

    /// Whether the stanza has had its first complete view of its cluster.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The objects as they are now, but for a relist in progress.
    pub fn live(&self) -> &Table {
        &self.live
    }
}
