//! Arbitrary text as a cluster manifest file (see `kubernetai::fuzzing::manifest`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kubernetai::fuzzing::manifest(data));
