//! From parsed Corefile blocks to what the server runs: for each server block its zones and
//! ports, the addresses it binds, the plugins it chains (in CoreDNS's order) and its kubernetai
//! stanzas (in Corefile order).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::errors::Errors;
use crate::chain::kubernetai;
use crate::serve::log::Log;
use crate::chain::registry::{self, Reads, Setup};
use crate::cluster::stanza::{self, Stanza};
use crate::corefile::args::{parse_duration, zone_text};
use crate::corefile::{Directive, Error, ServerBlock, Token};
use crate::observe::status::{self, Endpoint};
use crate::serve::reload;

/// CoreDNS's default port when neither the key nor `-dns.port` names one.
pub const DEFAULT_PORT: u16 = 53;

/// One server block, ready to serve.
#[derive(Clone, Debug)]
pub struct BlockConfig {
    /// "Corefile:3", for logs.
    pub at: String,
    /// (zone, port) for each key: lowercase, fully qualified zones.
    pub keys: Vec<(String, u16)>,
    /// Addresses to listen on (`bind`); empty means every address.
    pub bind: Vec<IpAddr>,
    /// `log` directives.
    pub log: Option<Log>,
    /// `errors`.
    pub errors: Option<Arc<Errors>>,
    /// `health` address and lameduck period.
    pub health: Option<(String, Duration)>,
    /// `ready` address, and whether it monitors continuously (`monitor continuously`) or
    /// stops asking a plugin once it was ready (`until-ready`, the default).
    pub ready: Option<(String, bool)>,
    /// `prometheus` address.
    pub prometheus: Option<String>,
    /// `reload` interval and jitter.
    pub reload: Option<(Duration, Duration)>,
    /// `debug`: debug lines on (see `observe::debug`).
    pub debug: bool,
    /// `k8s_external`, served by the block's module from its stanzas.
    pub external: Option<crate::contract::wit::ExternalZone>,
    /// The plugins of the chain, read, in CoreDNS's order (kubernetai among them).
    pub chain: Vec<(&'static str, Arc<dyn Setup>)>,
    /// The `kubernetai` stanzas, in Corefile order.
    pub stanzas: Vec<Stanza>,
}

impl BlockConfig {
    /// The zones of this block.
    pub fn zones(&self) -> Vec<String> {
        let mut zones: Vec<String> = Vec::new();
        for (z, _) in &self.keys {
            if !zones.contains(z) {
                zones.push(z.clone());
            }
        }
        zones
    }
}

/// Builds every server block; `default_port` comes from `-dns.port`.
pub fn servers(blocks: &[ServerBlock], default_port: u16) -> Result<Vec<BlockConfig>, Error> {
    let mut seen: HashSet<(String, u16)> = HashSet::new();
    let mut out = Vec::new();
    for block in blocks {
        let server = server(block, default_port)?;
        for (key, (zone, port)) in block.keys.iter().zip(&server.keys) {
            if !seen.insert((zone.clone(), *port)) {
                return Err(Error::token(key, format!("cannot serve dns://{zone}:{port} - it is already defined")));
            }
        }
        out.push(server);
    }
    Ok(out)
}

fn server(block: &ServerBlock, default_port: u16) -> Result<BlockConfig, Error> {
    let keys = block.keys.iter().map(|k| key(k, default_port)).collect::<Result<Vec<_>, _>>()?;
    let mut server = BlockConfig {
        at: block.keys[0].at(),
        keys,
        bind: vec![],
        log: None,
        errors: None,
        health: None,
        ready: None,
        prometheus: None,
        reload: None,
        debug: false,
        external: None,
        chain: vec![],
        stanzas: vec![],
    };
    let zones = server.zones();
    let mut directives: Vec<(usize, &Directive)> = Vec::new();
    for d in &block.directives {
        let pos = registry::position(&d.name.text).map_err(|m| d.error(m))?;
        directives.push((pos, d));
    }
    // CoreDNS's order decides the chain; stable sorting keeps stanzas in Corefile order.
    directives.sort_by_key(|(pos, _)| *pos);
    for (_, d) in directives {
        let name = d.name.text.as_str();
        let once = |set: bool| {
            if set {
                Err(d.error(format!("{name}: this plugin can only be used once per Server Block")))
            } else {
                Ok(())
            }
        };
        match name {
            "bind" => {
                if d.args.is_empty() {
                    return Err(d.error("bind needs at least one address"));
                }
                let mut addrs = Vec::new();
                for a in &d.args {
                    addrs.extend(bind_addrs(a)?);
                }
                // `except` drops addresses (or an interface's) from this directive's list only.
                for opt in d.block.as_deref().unwrap_or_default() {
                    if opt.name.text != "except" || opt.args.is_empty() {
                        return Err(opt.error("bind: the block takes 'except ADDRESS|IFACE...'"));
                    }
                    for a in &opt.args {
                        let out = bind_addrs(a)?;
                        addrs.retain(|ip| !out.contains(ip));
                    }
                }
                if addrs.is_empty() {
                    return Err(d.error("bind: every address is excepted"));
                }
                for ip in addrs {
                    if !server.bind.contains(&ip) {
                        server.bind.push(ip);
                    }
                }
            }
            "errors" => {
                once(server.errors.is_some())?;
                server.errors = Some(Arc::new(Errors::parse(d)?));
            }
            "log" => server.log.get_or_insert_with(Log::default).add(d)?,
            "health" => {
                once(server.health.is_some())?;
                let addr = status::parse_addr(d, Endpoint::Health)?;
                let mut lameduck = Duration::ZERO;
                for opt in d.block.as_deref().unwrap_or_default() {
                    match (opt.name.text.as_str(), opt.arg_texts().as_slice()) {
                        ("lameduck", [t]) => {
                            lameduck = parse_duration(t)
                                .ok_or_else(|| opt.error(format!("health: unable to parse lameduck duration {t:?}")))?;
                        }
                        ("lameduck", _) => return Err(opt.error("health: lameduck takes one DURATION")),
                        (other, _) => return Err(opt.error(format!("health: unknown property '{other}'"))),
                    }
                }
                server.health = Some((addr, lameduck));
            }
            "ready" => {
                once(server.ready.is_some())?;
                let mut continuously = false;
                for opt in d.block.as_deref().unwrap_or_default() {
                    match (opt.name.text.as_str(), opt.arg_texts().as_slice()) {
                        ("monitor", ["until-ready"]) => continuously = false,
                        ("monitor", ["continuously"]) => continuously = true,
                        ("monitor", _) => return Err(opt.error("ready: monitor takes until-ready or continuously")),
                        (other, _) => return Err(opt.error(format!("ready: unknown property '{other}'"))),
                    }
                }
                server.ready = Some((status::parse_addr(d, Endpoint::Ready)?, continuously));
            }
            "prometheus" => {
                once(server.prometheus.is_some())?;
                for opt in d.block.as_deref().unwrap_or_default() {
                    match (opt.name.text.as_str(), opt.args.is_empty()) {
                        // Process-wide, as CoreDNS's: on in one block, on for all until restart.
                        ("runtime_metrics", true) => crate::observe::metrics::export_runtime_metrics(),
                        ("runtime_metrics", false) => {
                            return Err(opt.error("prometheus: runtime_metrics takes no arguments"));
                        }
                        (other, _) => return Err(opt.error(format!("prometheus: unknown property '{other}'"))),
                    }
                }
                server.prometheus = Some(status::parse_addr(d, Endpoint::Metrics)?);
            }
            "k8s_external" => {
                once(server.external.is_some())?;
                server.external = Some(stanza::parse_external(d, &zones)?);
            }
            "debug" => {
                once(server.debug)?;
                if !d.args.is_empty() || d.block.is_some() {
                    return Err(d.error("debug takes no arguments"));
                }
                server.debug = true;
            }
            "reload" => {
                once(server.reload.is_some())?;
                server.reload = Some(reload::parse(d)?);
            }
            // Sorted before every kubernetai stanza (its place in CoreDNS's order), so it is
            // the block's first stanza; CoreDNS takes one per block.
            "kubernetes" | "kubernetai" => {
                if name == "kubernetes" {
                    once(server.stanzas.iter().any(|s| s.plugin == "kubernetes"))?;
                }
                if server.stanzas.is_empty() {
                    server.chain.push(("kubernetai", Arc::new(kubernetai::Stanzas)));
                }
                server.stanzas.push(stanza::parse(d, &zones)?);
            }
            _ => {
                // `position` admits only the block's own directives and the registry's plugins.
                let Some(entry) = registry::plugin(name) else {
                    return Err(d.error(format!("unknown directive '{name}'")));
                };
                let seen = server.chain.iter().any(|(n, _)| *n == entry.name);
                match &entry.reads {
                    Reads::Once(parse) => {
                        once(seen)?;
                        server.chain.push((entry.name, parse(d, &zones)?));
                    }
                    Reads::Each(parse) => server.chain.push((entry.name, parse(d, &zones)?)),
                    // Read with the first: the block's directives of the plugin, in Corefile order.
                    Reads::All(_) if seen => {}
                    Reads::All(parse) => {
                        let all: Vec<&Directive> = block.directives.iter().filter(|o| o.name.text == name).collect();
                        server.chain.push((entry.name, parse(&all, &zones)?));
                    }
                }
            }
        }
    }
    if server.stanzas.is_empty()
        && let Some(d) = block.directives.iter().find(|d| d.name.text == "k8s_external")
    {
        return Err(d.error("k8s_external: needs a kubernetes (or kubernetai) stanza in the same server block"));
    }
    if server.stanzas.is_empty()
        && let Some(d) = block
            .directives
            .iter()
            .find(|d| d.name.text == "autopath" && d.args.last().is_some_and(|a| a.text.starts_with('@')))
    {
        return Err(d.error("autopath: @kubernetai needs a kubernetai (or kubernetes) stanza in the same server block"));
    }
    check_clustersets(&server)?;
    Ok(server)
}

/// The members of each clusterset of a block agree: each cluster id once per zone, one `ttl`,
/// and a zone the block serves (or its queries would never reach the module).
fn check_clustersets(server: &BlockConfig) -> Result<(), Error> {
    let zones = server.zones();
    let members: Vec<(&Stanza, &stanza::Membership)> =
        server.stanzas.iter().filter_map(|s| s.clusterset.as_ref().map(|m| (s, m))).collect();
    for (i, (st, m)) in members.iter().enumerate() {
        if kubernetai_guest::name::longest_zone(&m.zone, &zones).is_none() {
            return Err(m.error(format!("clusterset: zone {} is not served by this server block (zones: {})", m.zone, zones.join(" "))));
        }
        for (earlier, e) in &members[..i] {
            if e.zone != m.zone {
                continue;
            }
            if e.cluster_id == m.cluster_id {
                return Err(m.error(format!(
                    "clusterset {}: cluster id {} is already the stanza's at {}",
                    m.zone, m.cluster_id, earlier.at
                )));
            }
            if earlier.guest.ttl != st.guest.ttl {
                return Err(m.error(format!(
                    "clusterset {}: this stanza's ttl {} differs from {} of the member at {}; members answer with one ttl",
                    m.zone, st.guest.ttl, earlier.guest.ttl, earlier.at
                )));
            }
        }
    }
    Ok(())
}

impl BlockConfig {
    /// Every stanza's clusterset membership, in the contract's terms.
    pub fn clusterset_members(&self) -> Vec<crate::contract::wit::ClustersetMember> {
        self.stanzas
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let m = s.clusterset.as_ref()?;
                Some(crate::contract::wit::ClustersetMember {
                    stanza: u32::try_from(i).ok()?,
                    zone: m.zone.clone(),
                    cluster_id: m.cluster_id.clone(),
                    export_all: m.export_all,
                })
            })
            .collect()
    }
}

/// A `bind` argument: an address, or an interface's addresses by its name, as CoreDNS takes.
fn bind_addrs(t: &Token) -> Result<Vec<IpAddr>, Error> {
    if let Ok(ip) = t.text.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let ifaces = if_addrs::get_if_addrs().unwrap_or_default();
    let ips: Vec<IpAddr> = ifaces.iter().filter(|i| i.name == t.text).map(|i| i.ip()).collect();
    if ips.is_empty() {
        return Err(Error::token(t, format!("bind: {:?} is not an IP address or an interface name", t.text)));
    }
    Ok(ips)
}

/// A server block key: `[dns://]zone[:port]`.
fn key(t: &Token, default_port: u16) -> Result<(String, u16), Error> {
    let mut text = t.text.as_str();
    if let Some((scheme, rest)) = text.split_once("://") {
        if scheme != "dns" {
            return Err(Error::token(t, format!("unsupported scheme {scheme}:// (only dns:// is served)")));
        }
        text = rest;
    }
    let (zone, port) = match text.rsplit_once(':') {
        Some((z, p)) if !z.contains(':') => {
            (z, p.parse::<u16>().map_err(|_| Error::token(t, format!("invalid port {p:?} in server block key")))?)
        }
        _ => (text, default_port),
    };
    let zone = if zone.is_empty() { "." } else { zone };
    Ok((zone_text(zone).map_err(|m| Error::token(t, m))?, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::registry;
    use std::path::Path;

    fn load(text: &str) -> Result<Vec<BlockConfig>, String> {
        let blocks = crate::corefile::parse(text, Path::new("Corefile")).map_err(|e| e.to_string())?;
        servers(&blocks, 1053).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_become_zones_and_ports() {
        let s = load("dns://Cluster.Local:5300 10.0.0.0/8 example.org {\n errors\n}\n").expect("loads");
        assert_eq!(
            s[0].keys,
            [("cluster.local.".into(), 5300), ("10.in-addr.arpa.".into(), 1053), ("example.org.".into(), 1053)]
        );
        assert_eq!(zone_text("fd00::/16").as_deref(), Ok("0.0.d.f.ip6.arpa."));
    }

    #[test]
    fn stanzas_keep_corefile_order_whatever_the_directive_order() {
        let s = load(". {\n kubernetai a.local {\n  manifests a.json\n }\n log\n kubernetai b.local {\n  manifests b.json\n }\n errors\n}\n").expect("loads");
        let zones: Vec<&str> = s[0].stanzas.iter().map(|st| st.guest.zones[0].as_str()).collect();
        assert_eq!(zones, ["a.local.", "b.local."]);
        assert!(s[0].log.is_some() && s[0].errors.is_some());
    }

    #[test]
    fn a_kubernetes_stanza_comes_before_the_kubernetai_ones_wherever_it_is_written() {
        let s = load(". {\n kubernetai a.local\n kubernetes k.local {\n  fallthrough\n }\n kubernetai b.local\n}\n")
            .expect("loads");
        let order: Vec<(&str, &str)> =
            s[0].stanzas.iter().map(|st| (st.plugin, st.guest.zones[0].as_str())).collect();
        assert_eq!(order, [("kubernetes", "k.local."), ("kubernetai", "a.local."), ("kubernetai", "b.local.")]);
        assert_eq!(s[0].chain.iter().filter(|(n, _)| *n == "kubernetai").count(), 1);
    }

    #[test]
    fn bad_blocks_are_refused_with_file_and_line() {
        let supported = registry::supported().join(", ");
        let cases: Vec<(&str, String)> = vec![
            (
                ". {\n frobnicate\n}\n",
                format!("Corefile:2 - unknown directive 'frobnicate'; supported directives: {supported}"),
            ),
            (
                ". {\n kubernetes a.local\n kubernetes b.local\n}\n",
                "Corefile:3 - kubernetes: this plugin can only be used once per Server Block".into(),
            ),
            (". {\n kubernetes a.local {\n  colour blue\n }\n}\n", "Corefile:3 - kubernetes: unknown property 'colour'".into()),
            (
                ". {\n k8s_external example.org\n}\n",
                "Corefile:2 - k8s_external: needs a kubernetes (or kubernetai) stanza in the same server block".into(),
            ),
            (
                ". {\n kubernetes a.local\n k8s_external example.org {\n  ttl 3601\n }\n}\n",
                "Corefile:4 - k8s_external: ttl must be in range [0, 3600]: 3601".into(),
            ),
            (
                ". {\n kubernetes a.local\n k8s_external example.org {\n  apex a.b\n }\n}\n",
                "Corefile:4 - k8s_external: apex takes one DNS label".into(),
            ),
            (
                ". {\n kubernetes a.local\n k8s_external example.org {\n  colour blue\n }\n}\n",
                "Corefile:4 - k8s_external: unknown property 'colour'".into(),
            ),
            (
                ". {\n whoami\n}\n",
                format!(
                    "Corefile:2 - directive 'whoami' is not supported by this server yet; supported directives: {supported}"
                ),
            ),
            (". {\n}\n.:1053 {\n}\n", "Corefile:3 - cannot serve dns://.:1053 - it is already defined".into()),
            ("tls://. {\n}\n", "Corefile:1 - unsupported scheme tls:// (only dns:// is served)".into()),
            (".:99999 {\n}\n", "Corefile:1 - invalid port \"99999\" in server block key".into()),
            (". {\n bind here\n}\n", "Corefile:2 - bind: \"here\" is not an IP address or an interface name".into()),
            (". {\n bind 127.0.0.1 {\n  except 127.0.0.1\n }\n}\n", "Corefile:2 - bind: every address is excepted".into()),
            (". {\n ready {\n  monitor sometimes\n }\n}\n", "Corefile:3 - ready: monitor takes until-ready or continuously".into()),
            (
                "10.0.0.0/7 {\n}\n",
                "Corefile:1 - \"10.0.0.0/7\" is not a CIDR on an octet (IPv4) or nibble (IPv6) boundary".into(),
            ),
            (". {\n cache 0\n}\n", "Corefile:2 - cache: cache TTL can not be zero".into()),
            (". {\n cache {\n  colour red\n }\n}\n", "Corefile:3 - cache: unknown property 'colour'".into()),
            (
                ". {\n cache\n cache\n}\n",
                "Corefile:3 - cache: this plugin can only be used once per Server Block".into(),
            ),
            (". {\n forward .\n}\n", "Corefile:2 - forward: needs at least one TO".into()),
            (
                ". {\n forward . https://9.9.9.9\n}\n",
                "Corefile:2 - forward: https:// upstreams are not supported; use dns://, tls:// or an address".into(),
            ),
            (
                ". {\n forward . 1.1.1.1 {\n  policy fastest\n }\n}\n",
                "Corefile:3 - forward: policy unknown policy \"fastest\"".into(),
            ),
            (
                ". {\n forward . 1.1.1.1 {\n  force_tcp\n  prefer_udp\n }\n}\n",
                "Corefile:2 - forward: force_tcp and prefer_udp cannot both be set".into(),
            ),
            (
                ". {\n log {\n  class loud\n }\n}\n",
                "Corefile:3 - log: invalid class \"loud\": use all, success, denial or error".into(),
            ),
            (
                ". {\n errors {\n  consolidate 5m (\n }\n}\n",
                "Corefile:3 - errors: regex parse error:\n    (\n    ^\nerror: unclosed group".into(),
            ),
            (". {\n reload 1s\n}\n", "Corefile:2 - reload: interval value must be greater or equal to 2s".into()),
            (
                ". {\n health {\n  lameduck soon\n }\n}\n",
                "Corefile:3 - health: unable to parse lameduck duration \"soon\"".into(),
            ),
            (". {\n ready localhost\n}\n", "Corefile:2 - ready: \"localhost\" is not a HOST:PORT address".into()),
            (". {\n transfer\n}\n", "Corefile:2 - transfer: needs a 'to' with the peers allowed to transfer".into()),
            (
                ". {\n autopath @kubernetai\n}\n",
                "Corefile:2 - autopath: @kubernetai needs a kubernetai (or kubernetes) stanza in the same server block".into(),
            ),
            (
                ". {\n autopath @etcd\n}\n",
                "Corefile:2 - autopath: unknown plugin @etcd; only @kubernetai (or @kubernetes) gives a search path"
                    .into(),
            ),
            (". {\n any all\n}\n", "Corefile:2 - any: takes no arguments".into()),
            (". {\n hosts /nonexistent {\n  ttl 0\n }\n}\n", "Corefile:3 - hosts: ttl provided is invalid".into()),
            (". {\n hosts {\n  reload soon\n }\n}\n", "Corefile:3 - hosts: invalid duration for reload 'soon'".into()),
            (
                ". {\n hosts {\n  fallthrough_unsupported\n }\n}\n",
                "Corefile:2 - hosts: fallthrough_unsupported requires fallthrough".into(),
            ),
            (
                ". {\n hosts {\n  fallthrough\n  10.0.0.1 late\n }\n}\n",
                "Corefile:4 - hosts: unknown property '10.0.0.1'".into(),
            ),
            (
                ". {\n hosts\n hosts\n}\n",
                "Corefile:3 - hosts: this plugin can only be used once per Server Block".into(),
            ),
            (
                ". {\n rewrite name fuzzy a b\n}\n",
                "Corefile:2 - rewrite: name rule supports only exact, prefix, suffix, substring, and regex name matching, received: fuzzy".into(),
            ),
            (". {\n rewrite rcode SERVFAIL NXDOMAIN\n}\n", "Corefile:2 - rewrite: the rcode field is not supported by this server yet".into()),
            (". {\n bufsize 100\n}\n", "Corefile:2 - bufsize: invalid bufsize \"100\" (512 to 4096)".into()),
            (". {\n cache {\n  prefetch 10 1m 5%\n }\n}\n", "Corefile:3 - cache: prefetch percentage should fall in range [10, 90]: 5".into()),
            (". {\n template IN A {\n  var x 1\n }\n}\n", "Corefile:3 - template: var is not supported by this server yet".into()),
            (". {\n template IN BOGUS\n}\n", "Corefile:2 - template: invalid RR type \"BOGUS\"".into()),
            (
                ". {\n template IN A {\n  answer \"{{ .Meta x }}\"\n }\n}\n",
                "Corefile:3 - template: template expression {{ .Meta x }} is not supported by this server".into(),
            ),
            (". {\n acl {\n  permit net 10.0.0.0/8\n }\n}\n", "Corefile:3 - acl: unexpected token \"permit\"; expect 'allow', 'block', 'filter' or 'drop'".into()),
            (". {\n acl {\n  block net 10.0.0.0/40\n }\n}\n", "Corefile:3 - acl: illegal CIDR notation \"10.0.0.0/40\"".into()),
            (". {\n acl {\n  block type BOGUS\n }\n}\n", "Corefile:3 - acl: unexpected token \"BOGUS\"; expect legal QTYPE".into()),
            (". {\n minimal {\n }\n}\n", "Corefile:2 - minimal: takes no arguments".into()),
            (
                ". {\n loadbalance weighted w.txt\n}\n",
                "Corefile:2 - loadbalance: the weighted policy is not supported; use round_robin".into(),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(load(text).expect_err(text), want, "{text}");
        }
        let ok = ". {\n errors\n health :0 {\n  lameduck 5s\n }\n ready 127.0.0.1:0\n prometheus :0\n reload 2s 1s\n loadbalance\n cache 30 {\n  success 100 60 1\n  denial 10\n  serve_stale 1h verify\n }\n loop\n forward . 127.0.0.1:5300 [::1]:53 {\n  except cluster.local\n  max_fails 3\n  health_check 1s no_rec\n  policy sequential\n  max_concurrent 100\n }\n}\n";
        let s = load(ok).expect("every plugin parses");
        assert_eq!(s[0].health, Some(("0.0.0.0:0".to_string(), std::time::Duration::from_secs(5))));
        let chain: Vec<&str> = s[0].chain.iter().map(|(name, _)| *name).collect();
        assert_eq!(chain, ["loadbalance", "cache", "loop", "forward"], "in CoreDNS's order");
    }

    #[test]
    fn bind_takes_interfaces_and_except() {
        let s = load(". {\n bind 127.0.0.1 127.0.0.2 127.0.0.3 {\n  except 127.0.0.2\n }\n}\n").expect("parses");
        assert_eq!(s[0].bind, ["127.0.0.1".parse::<IpAddr>().expect("ip"), "127.0.0.3".parse().expect("ip")]);
        // The loopback interface by name, its IPv6 address excepted.
        let s = load(". {\n bind lo {\n  except ::1\n }\n}\n").expect("lo is an interface");
        assert!(s[0].bind.contains(&"127.0.0.1".parse::<IpAddr>().expect("ip")), "{:?}", s[0].bind);
        assert!(!s[0].bind.contains(&"::1".parse::<IpAddr>().expect("ip")), "{:?}", s[0].bind);
    }
}
