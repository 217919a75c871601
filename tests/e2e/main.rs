//! End-to-end tests: the real binary, real sockets, Corefiles and cluster manifests on disk.

#[path = "../support/cases.rs"]
mod cases;
mod harness;

mod abuse;
mod apiserver;
mod chase;
mod clusterset;
mod conformance;
mod corefile;
mod corefiles;
mod credentials;
mod deploy;
mod fallthrough;
mod faults;
mod fleet;
mod hostile;
mod live;
mod load;
mod manifests;
mod modules;
mod operator;
mod peers;
mod plugins;
mod sandbox;
mod shadow;
mod soak;
mod transport;
