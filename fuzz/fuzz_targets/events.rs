//! Arbitrary bytes as watch events beside a small cluster (see `kubernetai_guest::fuzzing::events`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kubernetai_guest::fuzzing::events(data));
