//! The Corefile entry point the fuzz target (`fuzz/`) and its regression tests (`tests/fuzz/`)
//! share: any text either configures servers or is refused with an error naming the file and,
//! for anything past the whole-file checks, the line.

use std::path::Path;

use crate::{config, corefile};

/// Parses `data` as a Corefile named "Corefile" and builds its servers. Imports of files are
/// skipped: a fuzzer's globs would read the machine's files, which proves nothing about parsing.
pub fn corefile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.contains("import") && text.contains(['/', '*', '?', '[', '.']) {
        return;
    }
    let result = corefile::parse(text, Path::new("Corefile")).and_then(|blocks| config::servers(&blocks, 53));
    if let Err(e) = result {
        let message = e.to_string();
        assert!(message.starts_with("Corefile"), "an error that names no file: {message}");
        assert!(!e.message.is_empty(), "an error that says nothing");
    }
}
