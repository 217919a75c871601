//! The directives a Corefile may use. CoreDNS runs plugins in one fixed order (its plugin.cfg),
//! whatever order the Corefile writes them in; kubernetai takes the place of kubernetes there.
//! Directives CoreDNS knows but this server does not implement yet are refused by name, so a
//! Corefile never starts with a plugin silently missing.

/// CoreDNS's plugin order, with kubernetai where kubernetes stands.
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

/// The directives this server implements.
pub const SUPPORTED: &[&str] = &[
    "reload",
    "bind",
    "ready",
    "health",
    "prometheus",
    "errors",
    "log",
    "any",
    "loadbalance",
    "cache",
    "autopath",
    "minimal",
    "transfer",
    "kubernetai",
    "loop",
    "forward",
];

/// Where `name` runs in the chain, or why it cannot be used.
pub fn position(name: &str) -> Result<usize, String> {
    let Some(pos) = ORDER.iter().position(|d| *d == name) else {
        let hint = if name == "kubernetes" { " (use kubernetai: it takes the same options)" } else { "" };
        return Err(format!("unknown directive '{name}'{hint}; supported directives: {}", SUPPORTED.join(", ")));
    };
    if !SUPPORTED.contains(&name) {
        return Err(format!(
            "directive '{name}' is not supported by this server yet; supported directives: {}",
            SUPPORTED.join(", ")
        ));
    }
    Ok(pos)
}
