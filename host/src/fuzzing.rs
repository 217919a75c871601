//! The entry points the host's fuzz targets (`fuzz/`) and their regression tests (`tests/fuzz/`)
//! share: the Corefile and manifest parsers, each with the properties every input must keep.

use std::path::Path;
use std::sync::LazyLock;

use crate::cluster::manifests::{self, Objects};
use crate::contract::wit;
use crate::module::native::Native;
use crate::{corefile, serve::config};

/// Parses `data` as a Corefile named "Corefile" and builds its servers: it configures servers or
/// is refused with an error naming the file. Imports of files are skipped: a fuzzer's globs
/// would read the machine's files, which proves nothing about parsing.
pub fn corefile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let reads_files = text
        .lines()
        .any(|line| line.split_once("import").is_some_and(|(_, args)| args.contains(['/', '*', '?', '[', '.', '~'])));
    if reads_files {
        return;
    }
    let result = corefile::parse(text, Path::new("Corefile")).and_then(|blocks| config::servers(&blocks, 53));
    if let Err(e) = result {
        let message = e.to_string();
        assert!(message.starts_with("Corefile"), "an error that names no file: {message}");
        assert!(!e.message.is_empty(), "an error that says nothing");
    }
}

/// A stanza with every kind watched, as a Corefile would configure it.
static STANZA: LazyLock<wit::Stanza> = LazyLock::new(|| {
    let text = "cluster.local clusterset.local {\n kubernetai {\n  manifests m.json\n  pods verified\n  multicluster clusterset.local\n }\n}\n";
    let servers = corefile::parse(text, Path::new("Corefile"))
        .and_then(|blocks| config::servers(&blocks, 53))
        .unwrap_or_else(|e| panic!("the fuzzing stanza is invalid: {e}"));
    servers[0].stanzas[0].guest.clone()
});

/// Parses `data` as a manifest file: it is refused with the file named, or every object it
/// yields is JSON the guest takes or rejects with a reason, without panicking.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut objects = Objects::default();
    if let Err(e) = manifests::parse("m.json", text, crate::cluster::prune::Reads::ALL, &mut objects) {
        assert!(e.to_string().starts_with("m.json"), "an error that names no file: {e}");
        return;
    }
    let events = objects.initial_events();
    for event in &events {
        if let wit::Event::Apply(o) = event
            && let Err(e) = serde_json::from_str::<serde_json::Value>(&o.json)
        {
            panic!("a pruned object is not JSON ({e}): {}", o.json);
        }
    }
    let server = wit::Server { local_ips: vec!["192.0.2.53".into()] };
    let mut plugin = Native::new(&server, std::slice::from_ref(&*STANZA)).unwrap_or_else(|e| panic!("{e}"));
    for rejected in plugin.apply(0, 1, &events) {
        assert!(!rejected.reason.is_empty(), "a rejection without a reason");
    }
}
