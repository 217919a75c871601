//! Serving: from the Corefile's blocks to a running configuration (listeners, routers, chains,
//! stanzas started), the router that takes each packet to its block's chain, the UDP workers and
//! TCP connections, and reloads.

pub mod config;
pub mod reload;
pub mod router;
pub mod running;
pub mod udp_batch;
