//! The clusters a kubernetai stanza serves: its Corefile options, the objects as the host holds
//! them (pruned, keyed by kind, namespace and name), and the sources that feed them — API server
//! watches through kube-rs and JSON manifest files.

pub mod feed;
pub mod heard;
pub mod manifests;
pub mod objects;
pub mod prune;
pub mod stanza;
pub mod store;
pub mod watch;
pub mod watch_error;
