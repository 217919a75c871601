//! What the server tells its operators: Prometheus metrics, the health and readiness endpoints
//! and the small HTTP server under them, the process's counters and settings, and the debug
//! lines `debug` turns on.

pub mod counters;
pub mod debug;
pub mod http;
pub mod metrics;
pub mod process;
pub mod status;
