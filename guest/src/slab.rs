//! Objects of one kind in numbered slots, found by key, and sets of slot numbers for the indexes
//! that point at them: an index entry is a 4-byte id instead of a copy of a namespace and a name
//! (two strings). A replaced object keeps its slot, so the indexes only change where the object
//! did.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::object::{Key, KeyPair};

/// Something kept in a slab, by its key.
pub trait Keyed {
    fn key(&self) -> &Key;
}

#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    ids: HashMap<Key, u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), ids: HashMap::new() }
    }
}

impl<T: Keyed> Slab<T> {
    /// The object at `namespace`/`name`, found without building a key.
    pub fn find(&self, namespace: &str, name: &str) -> Option<&T> {
        self.ids.get(&(namespace, name) as &dyn KeyPair).and_then(|id| self.at(*id))
    }

    pub fn at(&self, id: u32) -> Option<&T> {
        self.slots.get(id as usize)?.as_ref()
    }

    /// Puts `value` under its key: it keeps the slot of the object it replaces, returned with it.
    pub fn insert(&mut self, value: T) -> (u32, Option<T>) {
        if let Some(id) = self.ids.get(value.key()).copied()
            && let Some(slot) = self.slots.get_mut(id as usize)
        {
            return (id, slot.replace(value));
        }
        let key = value.key().clone();
        let id = match self.free.pop() {
            Some(id) if (id as usize) < self.slots.len() => {
                self.slots[id as usize] = Some(value);
                id
            }
            _ => {
                self.slots.push(Some(value));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.ids.insert(key, id);
        (id, None)
    }

    /// Takes the object at `key` out, with the slot it had.
    pub fn remove(&mut self, key: &Key) -> Option<(u32, T)> {
        let id = self.ids.remove(key)?;
        let old = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        Some((id, old))
    }

    /// Every object with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| Some((u32::try_from(i).ok()?, s.as_ref()?)))
    }

    /// Every object, in key order (for the rare walks over a whole kind).
    pub fn sorted(&self) -> std::vec::IntoIter<&T> {
        let mut all: Vec<&T> = self.slots.iter().flatten().collect();
        all.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        all.into_iter()
    }

    /// The order of the objects at `a` and `b` by key (a missing one first).
    fn order(&self, a: u32, b: u32) -> Ordering {
        self.at(a).map(Keyed::key).cmp(&self.at(b).map(Keyed::key))
    }
}

/// The slots an index entry points at, in the key order of their objects. Nearly every entry
/// holds one (an address has one endpoint), which is kept inline: a hundred thousand endpoint
/// addresses cost no allocation each.
#[derive(Debug, Default)]
pub enum Ids {
    #[default]
    None,
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    /// Adds `id`, whose object is in `slab`, keeping key order.
    pub fn insert<T: Keyed>(&mut self, id: u32, slab: &Slab<T>) {
        match self {
            Ids::None => *self = Ids::One(id),
            Ids::One(one) if *one == id => {}
            Ids::One(one) => {
                let first = *one;
                let pair = if slab.order(first, id) == Ordering::Less { vec![first, id] } else { vec![id, first] };
                *self = Ids::Many(pair);
            }
            Ids::Many(ids) => {
                if let Err(at) =
                    ids.binary_search_by(|other| if *other == id { Ordering::Equal } else { slab.order(*other, id) })
                {
                    ids.insert(at, id);
                }
            }
        }
    }

    pub fn remove(&mut self, id: u32) {
        match self {
            Ids::One(one) if *one == id => *self = Ids::None,
            Ids::Many(ids) => {
                ids.retain(|other| *other != id);
                if let [only] = ids.as_slice() {
                    *self = Ids::One(*only);
                }
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Ids::None)
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Ids::None => &[],
            Ids::One(one) => std::slice::from_ref(one),
            Ids::Many(ids) => ids,
        }
    }

    /// The objects of `slab` these ids point at, in key order.
    pub fn resolve<'a, T: Keyed>(&'a self, slab: &'a Slab<T>) -> impl Iterator<Item = &'a T> {
        self.as_slice().iter().filter_map(|id| slab.at(*id))
    }
}

/// Removes `id` from the set at `key` of `index`, and the set when it empties.
pub fn unindex<K: std::hash::Hash + Eq>(index: &mut HashMap<K, Ids>, key: &K, id: u32) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Thing(Key, u8);

    impl Keyed for Thing {
        fn key(&self) -> &Key {
            &self.0
        }
    }

    fn thing(name: &str, v: u8) -> Thing {
        Thing(Key { namespace: "a".into(), name: name.into() }, v)
    }

    #[test]
    fn slots_are_kept_on_replace_and_reused_after_removal_and_ids_stay_in_key_order() {
        let mut slab = Slab::default();
        let (c, _) = slab.insert(thing("c", 1));
        let (a, _) = slab.insert(thing("a", 1));
        let (same, old) = slab.insert(thing("c", 2));
        assert_eq!((same, old), (c, Some(thing("c", 1))));
        assert_eq!(slab.find("a", "c"), Some(&thing("c", 2)));
        let mut ids = Ids::default();
        ids.insert(c, &slab);
        ids.insert(a, &slab);
        ids.insert(a, &slab);
        let names: Vec<&str> = ids.resolve(&slab).map(|t| &*t.0.name).collect();
        assert_eq!(names, ["a", "c"], "in key order, once each");
        ids.remove(c);
        assert!(matches!(ids, Ids::One(id) if id == a), "one left, inline again");
        ids.remove(a);
        assert!(ids.is_empty());
        assert_eq!(slab.remove(&thing("a", 0).0).map(|(id, _)| id), Some(a));
        assert_eq!(slab.find("a", "a"), None);
        let (b, _) = slab.insert(thing("b", 1));
        assert_eq!(b, a, "the free slot is used again");
        assert_eq!(slab.sorted().map(|t| &*t.0.name).collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(slab.iter().count(), 2);
    }
}
