//! Whole wire answers, remembered until the snapshot next changes. Between two watch events the
//! answer to a query is a function of the query's bytes after its id (flags, question, EDNS) and
//! the size the client takes: no TTL counts down and nothing depends on the client's address.
//! So a hot name is answered by copying its last answer and writing the new id in, instead of
//! parsing, resolving and encoding again. Every `apply` empties the cache, so no answer outlives
//! the state it was computed from.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::outcome::Outcome;

/// Answers kept per generation. When the young generation fills, it becomes the old one and the
/// old one is dropped: an answer asked again meanwhile is moved up, so hot names stay while
/// memory stays bounded (two generations of short answers: a few MiB at most).
const GENERATION: usize = 16384;

/// Behind a lock only so a plugin can be shared between threads (the native backend); in the
/// module there is one thread and the lock is never contended.
#[derive(Debug, Default)]
pub struct Answers(Mutex<Kept>);

#[derive(Debug, Default)]
struct Kept {
    /// The query's bytes after the id, then the max size → the outcome, whose answer carries a
    /// stale id.
    young: HashMap<Box<[u8]>, Outcome>,
    old: HashMap<Box<[u8]>, Outcome>,
    /// Where a probe's key is written, so a lookup allocates nothing.
    key: Vec<u8>,
}

impl Answers {
    fn key_of<'k>(key: &'k mut Vec<u8>, packet: &[u8], max_size: u16) -> Option<&'k [u8]> {
        key.clear();
        key.extend_from_slice(packet.get(2..)?);
        key.extend_from_slice(&max_size.to_be_bytes());
        Some(key)
    }

    /// The outcome remembered for `packet` at `max_size`: an answer appended to `out` with
    /// `packet`'s id (`Some(None)`), or another outcome; None when nothing is remembered.
    pub fn get_into(&self, packet: &[u8], max_size: u16, out: &mut Vec<u8>) -> Option<Option<Outcome>> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Kept { young, old, key } = &mut *kept;
        let key = Self::key_of(key, packet, max_size)?;
        if !young.contains_key(key) {
            let (k, v) = old.remove_entry(key)?;
            young.insert(k, v);
        }
        match young.get(key)? {
            Outcome::Answer(bytes) => {
                let (id, rest) = (packet.get(..2)?, bytes.get(2..)?);
                out.extend_from_slice(id);
                out.extend_from_slice(rest);
                Some(None)
            }
            other => Some(Some(other.clone())),
        }
    }

    /// Remembers `outcome` for `packet` at `max_size`, if it is one that may be reused.
    pub fn put(&self, packet: &[u8], max_size: u16, outcome: &Outcome) {
        if !matches!(outcome, Outcome::Answer(_) | Outcome::Next) || packet.len() < 2 {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Kept { young, old, key } = &mut *kept;
        if young.len() >= GENERATION {
            *old = std::mem::take(young);
        }
        if let Some(key) = Self::key_of(key, packet, max_size) {
            young.insert(Box::from(key), outcome.clone());
        }
    }

    /// Forgets every answer: the snapshot changed.
    pub fn clear(&self) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.young.clear();
        kept.old.clear();
    }
}
