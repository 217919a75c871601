//! Every input kept under tests/fuzz/<target>/ (crashes the fuzzers found, and the seeds they
//! start from) replayed through the entry point its fuzz target drives. A case that panics
//! fails here with its file name, so a fixed crash stays fixed.

#[path = "../../fuzz/structured.rs"]
#[allow(dead_code)]
mod structured;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use kubernetai_guest::Plugin;

static PLUGIN: LazyLock<Plugin> = LazyLock::new(kubernetai_guest::fuzzing::plugin);

fn cases(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every case of `target`; fails naming each case that panicked.
fn replay(target: &str, entry: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let files = cases(target);
    assert!(!files.is_empty(), "no cases for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::panic::catch_unwind(|| entry(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: these cases fail: {failed:#?}");
}

#[test]
fn query_cases() {
    replay("query", |data| kubernetai_guest::fuzzing::query(&PLUGIN, data));
}

#[test]
fn query_structured_cases() {
    replay("query_structured", |data| {
        let Ok(input) = structured::Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
        if let Some(bytes) = structured::bytes(&input) {
            kubernetai_guest::fuzzing::query(&PLUGIN, &bytes);
        }
    });
}

#[test]
fn events_cases() {
    replay("events", kubernetai_guest::fuzzing::events);
}

#[test]
fn corefile_cases() {
    replay("corefile", kubernetai::fuzzing::corefile);
}

#[test]
fn manifest_cases() {
    replay("manifest", kubernetai::fuzzing::manifest);
}
