//! The kubernetai server as a library: the Corefile, the plugin chain, the module host and the
//! cluster watches. `main.rs` runs it; the fuzz targets in `fuzz/` drive its parsers directly.

pub mod chain;
pub mod cli;
pub mod cluster;
pub mod contract;
pub mod corefile;
pub mod dns;
pub mod file_stamp;
#[doc(hidden)]
pub mod fuzzing;
pub mod module;
pub mod observe;
pub mod offline;
pub mod random;
pub mod serve;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the clock the guest's `apply` takes.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
