//! Whole wire answers, remembered until the snapshot next changes. Between two watch events the
//! answer to a query is a function of the query's bytes after its id (flags, question, EDNS) and
//! the size the client takes: no TTL counts down and nothing depends on the client's address.
//! So a hot name is answered by copying its last answer and writing the new id in, instead of
//! parsing, resolving and encoding again. Every `apply` empties the cache, so no answer outlives
//! the state it was computed from.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
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
    young: HashMap<Owned, Outcome, Seeded>,
    old: HashMap<Owned, Outcome, Seeded>,
    /// Where a probe's key is written, so a lookup allocates nothing.
    key: Vec<u8>,
}

/// A key's bytes however they are held: owned in the table, or the probe's buffer, so a lookup
/// builds no key of its own. Keys are compared 8 bytes at a time: the `memcmp` of the wasm C
/// library goes byte by byte, and cost more than everything else of a cached answer together.
trait Wire {
    fn bytes(&self) -> &[u8];
}

#[derive(Debug)]
struct Owned(Box<[u8]>);

impl Wire for Owned {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Wire for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl<'a> Borrow<dyn Wire + 'a> for Owned {
    fn borrow(&self) -> &(dyn Wire + 'a) {
        self
    }
}

// An owned key and a probe hash and compare alike: as their bytes.
impl Hash for Owned {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(&self.0);
    }
}

impl Hash for dyn Wire + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.bytes());
    }
}

impl PartialEq for Owned {
    fn eq(&self, other: &Self) -> bool {
        same(&self.0, &other.0)
    }
}

impl Eq for Owned {}

impl PartialEq for dyn Wire + '_ {
    fn eq(&self, other: &Self) -> bool {
        same(self.bytes(), other.bytes())
    }
}

impl Eq for dyn Wire + '_ {}

fn same(a: &[u8], b: &[u8]) -> bool {
    let ((a8, a1), (b8, b1)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a.len() == b.len()
        && a8.iter().zip(b8).all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a1.iter().zip(b1).all(|(x, y)| x == y)
}

/// The keys' hash: 8 bytes folded in per multiply, from a seed drawn once from the standard
/// library's random source (wasi:random in the module), so an outsider cannot aim queries at one
/// bucket. The standard SipHash cost ~1,300 wasm instructions for a typical key.
#[derive(Clone, Debug)]
struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        Seeded(RandomState::new().hash_one(0x6b75_6265_726e_6574_u64))
    }
}

impl BuildHasher for Seeded {
    type Hasher = Folded;

    fn build_hasher(&self) -> Folded {
        Folded(self.0)
    }
}

struct Folded(u64);

impl Hasher for Folded {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let (words, rest) = bytes.as_chunks::<8>();
        let mut h = self.0 ^ (bytes.len() as u64).wrapping_mul(K);
        for w in words {
            h = (h ^ u64::from_le_bytes(*w)).wrapping_mul(K).rotate_left(31);
        }
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        self.0 = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        // The table takes its control bits from the top: every input bit must reach them.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

impl Answers {
    fn key_of<'k>(key: &'k mut Vec<u8>, packet: &[u8], max_size: u16) -> Option<&'k dyn Wire> {
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
        if let Some(found) = young.get(key) {
            return Self::give(found, packet, out);
        }
        let (k, v) = old.remove_entry(key)?;
        let given = Self::give(&v, packet, out);
        young.insert(k, v);
        given
    }

    /// `found`, an answer written into `out` with `packet`'s id.
    fn give(found: &Outcome, packet: &[u8], out: &mut Vec<u8>) -> Option<Option<Outcome>> {
        match found {
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
    pub fn put(&self, packet: &[u8], max_size: u16, outcome: Outcome) {
        if !matches!(outcome, Outcome::Answer(_) | Outcome::Next) || packet.len() < 2 {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Kept { young, old, key } = &mut *kept;
        if young.len() >= GENERATION {
            // The old generation's table, emptied, takes the new one: a full generation's
            // table is never grown again (a growing table rehashed a few percent of all time).
            std::mem::swap(young, old);
            young.clear();
        }
        if let Some(key) = Self::key_of(key, packet, max_size) {
            // Kept at its length: an encoder's buffer has room to spare, thousands of times over.
            let outcome = match outcome {
                Outcome::Answer(mut bytes) => {
                    bytes.shrink_to_fit();
                    Outcome::Answer(bytes)
                }
                other => other,
            };
            young.insert(Owned(Box::from(key.bytes())), outcome);
        }
    }

    /// Forgets every answer: the snapshot changed.
    pub fn clear(&self) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.young.clear();
        kept.old.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_every_byte_and_a_probe_finds_its_owned_key() {
        let key: Vec<u8> = (0..21).collect();
        assert!(same(&key, &key.clone()));
        for at in [0, 7, 8, 16, 20] {
            let mut other = key.clone();
            other[at] ^= 1;
            assert!(!same(&key, &other), "byte {at} differs");
        }
        assert!(!same(&key, &key[..20]), "a shorter key");
        let mut table: HashMap<Owned, u8, Seeded> = HashMap::default();
        table.insert(Owned(key.clone().into_boxed_slice()), 1);
        let probe: &dyn Wire = &key;
        assert_eq!(table.get(probe), Some(&1));
        let miss: Vec<u8> = (1..22).collect();
        assert_eq!(table.get(&miss as &dyn Wire), None);
    }
}
