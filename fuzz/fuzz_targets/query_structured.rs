//! Structured queries (see `fuzz/structured.rs`) to the guest's handler.
#![no_main]

#[path = "../structured.rs"]
mod structured;

use std::sync::LazyLock;

use kubernetai_guest::Plugin;
use libfuzzer_sys::fuzz_target;

static PLUGIN: LazyLock<Plugin> = LazyLock::new(kubernetai_guest::fuzzing::plugin);

fuzz_target!(|input: structured::Input| {
    if let Some(data) = structured::bytes(&input) {
        kubernetai_guest::fuzzing::query(&PLUGIN, &data);
    }
});
