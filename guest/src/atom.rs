//! Shared strings for the snapshot. What a cluster repeats in every object — namespaces, port
//! names and protocols, zones, source clusters — is kept once ([`atom`]) and shared by every
//! object that names it; an object's own name is one allocation shared by the object and every
//! index that finds it (cloning a [`Text`] copies a pointer, not the string).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// A string of the snapshot: shared, never copied.
pub type Text = Arc<str>;

/// Below this many strings the set is never swept.
const SWEEP_FLOOR: usize = 1024;

/// The interned strings, and how many were held after the last sweep.
#[derive(Default)]
struct Atoms {
    set: HashSet<Text>,
    swept: usize,
}

impl Atoms {
    /// Strings no object holds any more are dropped once the set has doubled since the last
    /// sweep, so a cluster whose names churn keeps this bounded.
    fn get(&mut self, s: &str) -> Text {
        if let Some(kept) = self.set.get(s) {
            return kept.clone();
        }
        if self.set.len() >= SWEEP_FLOOR.max(2 * self.swept) {
            self.set.retain(|t| Arc::strong_count(t) > 1);
            self.swept = self.set.len();
        }
        let text: Text = Arc::from(s);
        self.set.insert(text.clone());
        text
    }
}

/// The one shared copy of `s`.
pub fn atom(s: &str) -> Text {
    static ATOMS: OnceLock<Mutex<Atoms>> = OnceLock::new();
    let atoms = ATOMS.get_or_init(Mutex::default);
    atoms.lock().unwrap_or_else(|p| p.into_inner()).get(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_of_each_string_and_unheld_ones_swept() {
        let mut atoms = Atoms::default();
        let http = atoms.get("http");
        assert!(Arc::ptr_eq(&http, &atoms.get("http")), "the same allocation");
        for i in 0..10 * SWEEP_FLOOR {
            drop(atoms.get(&format!("churn-{i}")));
        }
        assert!(atoms.set.len() <= SWEEP_FLOOR + 1, "unheld strings swept: {}", atoms.set.len());
        assert!(Arc::ptr_eq(&http, &atoms.get("http")), "a held string stays");
    }
}
