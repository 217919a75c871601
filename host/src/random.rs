//! Randomness for message ids, load spreading and probe names: the `rand` crate's thread-local
//! generator (ChaCha12, seeded and reseeded from the operating system), so a forwarded query's id
//! cannot be predicted from the ids seen before it, as CoreDNS draws them from a cryptographic
//! source too.

use rand::RngExt;

/// A random 64-bit number.
pub fn next() -> u64 {
    rand::rng().random()
}

/// A random number in `0..n` (n > 0).
pub fn below(n: u64) -> u64 {
    rand::rng().random_range(0..n.max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_spread_over_the_range() {
        let mut seen = [0u32; 8];
        for _ in 0..8000 {
            seen[super::below(8) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_ne!(super::next(), super::next());
    }
}
