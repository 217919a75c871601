//! Cheap non-cryptographic randomness for load spreading, message ids and probe names: a
//! per-thread xorshift generator seeded from the standard library's hasher keys.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new({
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        h.finish() | 1
    });
}

/// A random 64-bit number.
pub fn next() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// A random number in `0..n` (n > 0).
pub fn below(n: u64) -> u64 {
    next() % n.max(1)
}
