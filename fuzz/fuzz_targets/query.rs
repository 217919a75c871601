//! Arbitrary bytes as a DNS query to the guest's handler (see `kubernetai_guest::fuzzing::query`).
#![no_main]

use std::sync::LazyLock;

use kubernetai_guest::Plugin;
use libfuzzer_sys::fuzz_target;

static PLUGIN: LazyLock<Plugin> = LazyLock::new(kubernetai_guest::fuzzing::plugin);

fuzz_target!(|data: &[u8]| kubernetai_guest::fuzzing::query(&PLUGIN, data));
