//! The `debug` directive's effect here: debug-level lines from the plugins that write them
//! (forward, kubernetai, cache, reload), as CoreDNS's `debug` turns its `clog.D` on. It is
//! process-wide, as CoreDNS's is: on while any server block of the running configuration has
//! `debug`. CoreDNS's other effect, not recovering from panics, has no counterpart: this
//! server has no handler that recovers from one.

use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Turns debug lines on or off (a configuration starting).
pub fn set(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Whether debug lines are written.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Writes `[DEBUG] plugin/PLUGIN: message` when debug lines are on; `message` is only built
/// then, so a line costs nothing otherwise.
pub fn line(plugin: &str, message: impl FnOnce() -> String) {
    if enabled() {
        println!("[DEBUG] plugin/{plugin}: {}", message());
    }
}
