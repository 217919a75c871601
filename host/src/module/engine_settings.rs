// The wasmtime settings every module is compiled with, by the server (`Module::compile`) and by
// `build.rs`, which includes this file to compile the built-in module's machine code into the
// binary: one definition, so the two cannot drift (that machine code would silently stop
// loading). Plain comments here: `build.rs` includes the file as items, where `//!` cannot stand.

/// The component model, and call deadlines by epoch (a check costs a load and a compare per loop
/// header, far less than fuel).
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}
