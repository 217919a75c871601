//! Arbitrary text as a Corefile (see `kubernetai::fuzzing::corefile`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kubernetai::fuzzing::corefile(data));
