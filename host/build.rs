//! Builds the guest component for wasm32-wasip2 so the host can embed it as its default module.
//!
//! The nested cargo gets its own target directory (sharing ours deadlocks under `--release`) and
//! none of the build-script environment we inherit, so coverage or custom flags meant for the
//! host never leak into the wasm build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/module/engine_settings.rs");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ sits in the workspace").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = root.join("target").join("guest");
    for path in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = matches!(key.as_str(), "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_MAKEFLAGS");
        let inherited_build_var = key.starts_with("CARGO_")
            || key.starts_with("RUSTC")
            || key.starts_with("DEP_")
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTDOC"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if inherited_build_var && !keep {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .current_dir(&root)
        .args(["build", "--release", "--locked", "-p", "kubernetai-guest", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // The module ships inside the binary: no debug info, stripped.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .status()
        .expect("running cargo for the guest");
    assert!(
        status.success(),
        "building the guest component failed (is the wasm32-wasip2 target installed? run scripts/setup.sh)"
    );
    let wasm = target_dir.join("wasm32-wasip2/release/kubernetai_guest.wasm");
    std::fs::copy(&wasm, out_dir.join("kubernetai_guest.wasm")).expect("copying the guest component");

    // Its machine code for this machine, with the server's engine settings: the server loads it
    // instead of compiling, and compiles after all where wasmtime finds it does not fit
    // (another CPU).
    let engine = wasmtime::Engine::new(&engine_config()).expect("a wasmtime engine");
    let bytes = std::fs::read(&wasm).expect("reading the guest component");
    let code = engine.precompile_component(&bytes).expect("compiling the guest component");
    std::fs::write(out_dir.join("kubernetai_guest.cwasm"), code).expect("writing its machine code");
}

include!("src/module/engine_settings.rs");
