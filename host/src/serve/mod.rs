//! Serving: from the Corefile's blocks to a running configuration (routers, chains, stanzas
//! started), the listeners that stay open across reloads, the router that takes each query to
//! its block's chain, the two transports (UDP workers, TCP connections), the block-level `log`
//! and `errors`, and reloads.

pub mod config;
pub mod errors;
pub mod listeners;
pub mod log;
pub mod reload;
pub mod router;
pub mod running;
pub mod tcp;
pub mod udp;
pub mod udp_batch;
