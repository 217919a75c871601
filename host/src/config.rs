//! From parsed Corefile blocks to what the server runs: for each server block its zones and
//! ports, the addresses it binds, the plugins it chains (in CoreDNS's order) and its kubernetai
//! stanzas (in Corefile order).

use std::collections::HashSet;
use std::net::IpAddr;

use crate::corefile::{Directive, Error, ServerBlock, Token};
use crate::plugins;
use crate::stanza::{self, Stanza};

/// CoreDNS's default port when neither the key nor `-dns.port` names one.
pub const DEFAULT_PORT: u16 = 53;

/// One server block, ready to serve.
#[derive(Clone, Debug)]
pub struct Server {
    /// "Corefile:3", for logs.
    pub at: String,
    /// (zone, port) for each key: lowercase, fully qualified zones.
    pub keys: Vec<(String, u16)>,
    /// Addresses to listen on (`bind`); empty means every address.
    pub bind: Vec<IpAddr>,
    /// `log`: one line per query.
    pub log: bool,
    /// `errors`: log the errors behind SERVFAIL answers.
    pub errors: bool,
    /// The `kubernetai` stanzas, in Corefile order.
    pub stanzas: Vec<Stanza>,
}

impl Server {
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
pub fn servers(blocks: &[ServerBlock], default_port: u16) -> Result<Vec<Server>, Error> {
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

fn server(block: &ServerBlock, default_port: u16) -> Result<Server, Error> {
    let keys = block.keys.iter().map(|k| key(k, default_port)).collect::<Result<Vec<_>, _>>()?;
    let mut server = Server { at: block.keys[0].at(), keys, bind: vec![], log: false, errors: false, stanzas: vec![] };
    let zones = server.zones();
    let mut directives: Vec<(usize, &Directive)> = Vec::new();
    for d in &block.directives {
        let pos = plugins::position(&d.name.text).map_err(|m| d.error(m))?;
        directives.push((pos, d));
    }
    // CoreDNS's order decides the chain; stable sorting keeps stanzas in Corefile order.
    directives.sort_by_key(|(pos, _)| *pos);
    for (_, d) in directives {
        match d.name.text.as_str() {
            "bind" => {
                if d.args.is_empty() {
                    return Err(d.error("bind needs at least one address"));
                }
                for a in &d.args {
                    server.bind.push(
                        a.text
                            .parse()
                            .map_err(|_| Error::token(a, format!("bind: {:?} is not an IP address", a.text)))?,
                    );
                }
            }
            "errors" => {
                no_args(d)?;
                server.errors = true;
            }
            "log" => {
                // Names to log and a format come with the log plugin's full options.
                no_args(d)?;
                server.log = true;
            }
            "kubernetai" => server.stanzas.push(stanza::parse(d, &zones)?),
            other => unreachable!("plugins::position accepted {other}"),
        }
    }
    Ok(server)
}

fn no_args(d: &Directive) -> Result<(), Error> {
    if let Some(a) = d.args.first() {
        return Err(Error::token(a, format!("{}: unexpected argument {:?}", d.name.text, a.text)));
    }
    if d.block.is_some() {
        return Err(d.error(format!("{}: options are not supported yet", d.name.text)));
    }
    Ok(())
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

/// A zone argument, normalized: lowercase, fully qualified, CIDRs as reverse zones.
pub fn zone_of(t: &Token) -> Result<String, Error> {
    zone_text(&t.text).map_err(|m| Error::token(t, m))
}

fn zone_text(text: &str) -> Result<String, String> {
    if let Some((addr, bits)) = text.split_once('/') {
        return reverse_zone(addr, bits)
            .ok_or_else(|| format!("{text:?} is not a CIDR on an octet (IPv4) or nibble (IPv6) boundary"));
    }
    if text.is_empty() || text.contains(['/', ':', ' ']) || text.contains("..") {
        return Err(format!("{text:?} is not a valid zone name"));
    }
    Ok(kubernetai_guest::name::normalize_zone(text))
}

/// "10.0.0.0/8" → "10.in-addr.arpa."; "fd00::/16" → "0.0.d.f.ip6.arpa.".
fn reverse_zone(addr: &str, bits: &str) -> Option<String> {
    let bits: u32 = bits.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if bits.is_multiple_of(8) && bits <= 32 => {
            let labels: Vec<String> = v4.octets()[..(bits / 8) as usize].iter().rev().map(u8::to_string).collect();
            Some(if labels.is_empty() { "in-addr.arpa.".into() } else { format!("{}.in-addr.arpa.", labels.join(".")) })
        }
        IpAddr::V6(v6) if bits.is_multiple_of(4) && bits <= 128 => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0xf])
                .take((bits / 4) as usize)
                .map(|n| format!("{n:x}"))
                .collect();
            let labels: Vec<String> = nibbles.into_iter().rev().collect();
            Some(if labels.is_empty() { "ip6.arpa.".into() } else { format!("{}.ip6.arpa.", labels.join(".")) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<Vec<Server>, String> {
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
        assert!(s[0].log && s[0].errors);
    }

    #[test]
    fn bad_blocks_are_refused_with_file_and_line() {
        let cases = [
            (
                ". {\n frobnicate\n}\n",
                "Corefile:2 - unknown directive 'frobnicate'; supported directives: bind, errors, log, kubernetai",
            ),
            (
                ". {\n kubernetes\n}\n",
                "Corefile:2 - unknown directive 'kubernetes' (use kubernetai: it takes the same options); supported directives: bind, errors, log, kubernetai",
            ),
            (
                ". {\n whoami\n}\n",
                "Corefile:2 - directive 'whoami' is not supported by this server yet; supported directives: bind, errors, log, kubernetai",
            ),
            (". {\n}\n.:1053 {\n}\n", "Corefile:3 - cannot serve dns://.:1053 - it is already defined"),
            ("tls://. {\n}\n", "Corefile:1 - unsupported scheme tls:// (only dns:// is served)"),
            (".:99999 {\n}\n", "Corefile:1 - invalid port \"99999\" in server block key"),
            (". {\n bind here\n}\n", "Corefile:2 - bind: \"here\" is not an IP address"),
            (
                "10.0.0.0/7 {\n}\n",
                "Corefile:1 - \"10.0.0.0/7\" is not a CIDR on an octet (IPv4) or nibble (IPv6) boundary",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(load(text).expect_err(text), want, "{text}");
        }
    }
}
