//! The directives a Corefile may use, and the plugins of the chain, one line each. CoreDNS runs
//! plugins in one fixed order (its plugin.cfg), whatever order the Corefile writes them in;
//! kubernetai sits right after kubernetes there. Directives CoreDNS knows but this server does
//! not implement yet are refused by name, so a Corefile never starts with a plugin silently
//! missing. A plugin is its file in this folder plus its line in [`PLUGINS`]; the directives
//! that configure the server block itself (bind, debug, errors, log, health, ready, prometheus,
//! reload) and the kubernetes and kubernetai stanzas are read by `serve::config`.

pub use super::setup::{BlockContext, Entry, Parse, ParseAll, Reads, Setup};
use super::{
    acl, any, autopath, bufsize, cache, file, forward, hosts, loadbalance, loop_detect, minimal, rewrite, template,
    transfer,
};

/// The plugins of the chain (kubernetai too is one, read by `serve::config`: a block's stanzas
/// make one plugin).
pub const PLUGINS: &[Entry] = &[
    Entry { name: "bufsize", reads: Reads::Once(bufsize::setup) },
    Entry { name: "acl", reads: Reads::All(acl::setup) },
    Entry { name: "any", reads: Reads::Once(any::setup) },
    Entry { name: "loadbalance", reads: Reads::Once(loadbalance::setup) },
    Entry { name: "cache", reads: Reads::Once(cache::setup) },
    Entry { name: "rewrite", reads: Reads::Each(rewrite::setup) },
    Entry { name: "autopath", reads: Reads::Once(autopath::setup) },
    Entry { name: "minimal", reads: Reads::Once(minimal::setup) },
    Entry { name: "template", reads: Reads::Each(template::setup) },
    Entry { name: "transfer", reads: Reads::Each(transfer::setup) },
    Entry { name: "hosts", reads: Reads::Once(hosts::setup) },
    Entry { name: "file", reads: Reads::All(file::setup_all) },
    Entry { name: "loop", reads: Reads::Once(loop_detect::setup) },
    Entry { name: "forward", reads: Reads::Each(forward::setup) },
];

/// The chain plugin named `name`.
pub fn plugin(name: &str) -> Option<&'static Entry> {
    PLUGINS.iter().find(|e| e.name == name)
}

/// CoreDNS's plugin order, with kubernetai right after kubernetes, where a CoreDNS built with
/// both has it (coredns/ci's kubernetai build adds it to plugin.cfg there). Nothing runs
/// between the two, so a block's kubernetes stanza and its kubernetai stanzas are one plugin
/// of the chain, the kubernetes stanza first.
pub const ORDER: &[&str] = &[
    "root",
    "metadata",
    "geoip",
    "cancel",
    "tls",
    "timeouts",
    "multisocket",
    "reload",
    "nsid",
    "bufsize",
    "bind",
    "debug",
    "trace",
    "ready",
    "health",
    "pprof",
    "prometheus",
    "errors",
    "log",
    "dnstap",
    "local",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "tsig",
    "cache",
    "rewrite",
    "header",
    "dnssec",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "kubernetai",
    "file",
    "auto",
    "secondary",
    "etcd",
    "loop",
    "forward",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
    "nomad",
];

/// The directives `serve::config` reads itself: they configure the block (or, k8s_external,
/// kubernetes and kubernetai, make one plugin of the block's module: nothing runs between them
/// in CoreDNS's order).
pub const BLOCK_DIRECTIVES: &[&str] =
    &["reload", "bind", "debug", "ready", "health", "prometheus", "errors", "log", "k8s_external", "kubernetes", "kubernetai"];

/// The directives this server implements, in CoreDNS's order.
pub fn supported() -> Vec<&'static str> {
    ORDER.iter().copied().filter(|d| BLOCK_DIRECTIVES.contains(d) || plugin(d).is_some()).collect()
}

/// Where `name` runs in the chain, or why it cannot be used.
pub fn position(name: &str) -> Result<usize, String> {
    let Some(pos) = ORDER.iter().position(|d| *d == name) else {
        return Err(format!("unknown directive '{name}'; supported directives: {}", supported().join(", ")));
    };
    if !supported().contains(&name) {
        return Err(format!(
            "directive '{name}' is not supported by this server yet; supported directives: {}",
            supported().join(", ")
        ));
    }
    Ok(pos)
}
