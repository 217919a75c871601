//! Compiled modules kept on disk (`-module.cache DIR`): compiling the built-in module with
//! cranelift is the largest single cost of a start (~0.7 s of CPU pinned to one core, more than
//! reading a 250 MB cluster's JSON), and a restarted server (a crash, an upgrade of the
//! Corefile, a node drain onto a node with the volume) asks for the same machine code again.
//! An entry is named by the SHA-256 of the component's bytes and the engine's compatibility
//! hash (wasmtime version and settings), so a different module or engine never reads it.
//!
//! Entries are also looked up, read-only, in the directory of the server's executable: `kubernetai
//! module compile` puts the built-in module's machine code there when an image is built, so even
//! a container's first start does not compile (an entry made for another CPU is refused by
//! wasmtime, and the module compiled as usual).
//!
//! The built-in module's machine code is also in the binary itself, compiled by `build.rs` for
//! the machine that built it: a bare binary's first start loads it instead of compiling (about
//! 0.9 s of one core), and compiles after all where wasmtime finds it does not fit.
//!
//! Loading an entry trusts its bytes as machine code: the directory must be writable by the
//! server alone, like wasmtime's own cache (the executable's directory is, or the executable
//! itself could be replaced). An entry that does not load is compiled again and replaced; a
//! directory that cannot be written costs a log line and nothing else.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The entry for `bytes` under `dir`.
pub fn entry(dir: &Path, engine: &Engine, bytes: &[u8]) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64 + 17);
    for b in digest.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    // Stable across runs of one build: DefaultHasher's keys are fixed (unlike RandomState's).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{hex}-{:016x}.cwasm", h.finish()))
}

/// The directory of the running executable, where shipped entries are looked for.
pub fn shipped_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// The built-in module's machine code, made by `build.rs` with this engine's settings.
static EMBEDDED_CODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetai_guest.cwasm"));

/// The component of `bytes`: from `dir` or the executable's directory when compiled there
/// before, else the binary's own machine code when `bytes` are the built-in module's, else
/// compiled (and kept in `dir` when it is given).
pub fn component(engine: &Engine, bytes: &[u8], dir: Option<&Path>) -> wasmtime::Result<Component> {
    let places = dir.map(Path::to_path_buf).into_iter().chain(shipped_dir());
    for path in places.map(|d| entry(&d, engine, bytes)) {
        if !path.exists() {
            continue;
        }
        // SAFETY: the entry was written by `Component::serialize` of this engine build (its
        // name carries the engine's compatibility hash) into a directory only the server
        // writes; wasmtime checks its header, version and CPU features again and refuses a
        // mismatch.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                println!("[INFO] plugin/kubernetai: module machine code loaded from {}", path.display());
                return Ok(component);
            }
            Err(e) => println!("[WARNING] compiled module {}: {e:#}; not used", path.display()),
        }
    }
    let component = match built_in(engine, bytes) {
        Some(component) => component,
        None => Component::new(engine, bytes)?,
    };
    let Some(dir) = dir else { return Ok(component) };
    let path = entry(dir, engine, bytes);
    if let Err(e) = keep(&path, &component) {
        println!("[WARNING] module cache {}: not kept: {e}", dir.display());
    }
    Ok(component)
}

/// The binary's machine code of the built-in module, when `bytes` are that module and the code
/// fits this machine and engine.
fn built_in(engine: &Engine, bytes: &[u8]) -> Option<Component> {
    if bytes != crate::module::EMBEDDED {
        return None;
    }
    // SAFETY: made by this binary's build script with wasmtime of this very version; wasmtime
    // checks its header, version, settings and CPU features and refuses a mismatch.
    match unsafe { Component::deserialize(engine, EMBEDDED_CODE) } {
        Ok(component) => {
            println!("[INFO] plugin/kubernetai: the built-in module's machine code loaded from the binary");
            Some(component)
        }
        Err(e) => {
            println!("[WARNING] the built-in module's machine code does not fit here: {e:#}; compiling it");
            None
        }
    }
}

/// Writes the entry whole or not at all.
fn keep(path: &Path, component: &Component) -> std::io::Result<()> {
    let code = component.serialize().map_err(std::io::Error::other)?;
    crate::module::bounded::write_whole(path, &code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_component_loads_and_a_broken_entry_is_compiled_again() {
        let dir = std::env::temp_dir().join(format!("kubernetai-compiled-{}", std::process::id()));
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("engine");
        let binary = wat::parse_str("(component)").expect("a component");
        let wat = binary.as_slice();
        component(&engine, wat, Some(&dir)).expect("compiles");
        let path = entry(&dir, &engine, wat);
        assert!(path.exists(), "kept at {}", path.display());
        component(&engine, wat, Some(&dir)).expect("loads from the cache");
        std::fs::write(&path, b"not machine code").expect("write");
        component(&engine, wat, Some(&dir)).expect("compiled again");
        assert_ne!(std::fs::read(&path).expect("read"), b"not machine code");
        assert_ne!(entry(&dir, &engine, b"(component (core module))"), path);
        std::fs::remove_dir_all(&dir).ok();
    }
}
