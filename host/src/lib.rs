//! The kubernetai server as a library: the Corefile, the plugin chain, the module host and the
//! cluster watches. `main.rs` runs it; the fuzz targets in `fuzz/` drive its parsers directly.

pub mod admin;
pub mod any;
pub mod autopath;
pub mod cache;
pub mod chain;
pub mod cli;
pub mod compiled;
pub mod config;
pub mod corefile;
pub mod errors;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod instance;
pub mod loadbalance;
pub mod log;
pub mod loop_detect;
pub mod manifests;
pub mod metrics;
pub mod minimal;
pub mod module;
pub mod native;
pub mod objects;
pub mod offline;
pub mod plugin;
pub mod plugins;
pub mod process;
pub mod prune;
pub mod random;
pub mod reload;
pub mod server;
pub mod stanza;
pub mod status;
pub mod swap;
pub mod transfer;
pub mod udp_batch;
pub mod watch;
pub mod watch_error;
pub mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the clock the guest's `apply` takes.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
