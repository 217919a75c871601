//! Kubernetes cluster DNS for several clusters at once, as an ordinary Rust library.
//!
//! This crate owns every DNS decision of kubernetai: it keeps one snapshot of cluster objects per
//! `kubernetai` stanza ([`snapshot`]), reads query names as the DNS schema ([`schema_name`]), finds the
//! objects that answer them ([`resolve`]), and builds the DNS response or passes the query on
//! ([`handler`]); it also streams zone transfers ([`transfer`]) and gives autopath its search
//! path ([`search`]); a clusterset zone is answered across the stanzas ([`clusterset`]). Compiled for `wasm32-wasip2` it is the kubernetai wasm component, with thin
//! bindings in `glue` that only convert between the WIT types of `wit/` and these; compiled
//! natively it is unit-tested with `cargo test` and can be linked into a host directly.

pub mod answers;
mod apex;
pub mod atom;
pub mod clusterset;
pub mod config;
mod convert;
pub mod external;
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
pub mod message;
pub mod name;
pub mod object;
pub mod outcome;
pub mod pods;
mod records;
pub mod resolve;
pub mod schema_name;
pub mod search;
pub mod selector;
pub mod slab;
pub mod snapshot;
pub mod transfer;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod glue;

pub use config::{BlockFacts, ConfigError, PodMode, Stanza};
pub use handler::{Outcome, Plugin, Query, Transport};
pub use snapshot::{Event, Kind, Rejected};

/// The version of the WIT contract (`wit/kubernetai.wit`) this library implements.
pub const CONTRACT_VERSION: &str = "0.5.0";
