//! Domain names as the resolver compares them: lowercase ASCII text, fully qualified, with the
//! root written ".". Matching is by whole labels, as CoreDNS's `plugin.Zones.Matches` does.

use std::net::IpAddr;

/// `zone` made lowercase and fully qualified ("Cluster.Local" → "cluster.local.").
pub fn normalize_zone(zone: &str) -> String {
    let mut z = zone.trim().to_ascii_lowercase();
    if !z.ends_with('.') {
        z.push('.');
    }
    z
}

/// Whether `name` equals `zone` or lies below it (both lowercase and fully qualified).
pub fn is_subdomain(name: &str, zone: &str) -> bool {
    if zone == "." {
        return true;
    }
    name == zone
        || (name.len() > zone.len() && name.ends_with(zone) && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// The longest of `zones` that `name` falls in.
pub fn longest_zone<'a>(name: &str, zones: &'a [String]) -> Option<&'a str> {
    zones.iter().filter(|z| is_subdomain(name, z)).max_by_key(|z| z.len()).map(String::as_str)
}

/// The labels of `name` left of `zone`, in order, or None when `name` is not in `zone`.
/// "a.b.cluster.local." in "cluster.local." → ["a", "b"].
pub fn labels_below<'a>(name: &'a str, zone: &str) -> Option<Vec<&'a str>> {
    if !is_subdomain(name, zone) {
        return None;
    }
    let base = if zone == "." { name } else { &name[..name.len() - zone.len()] };
    let base = base.trim_end_matches('.');
    if base.is_empty() {
        return Some(Vec::new());
    }
    Some(base.split('.').collect())
}

/// `prefix` and `zone` joined into one name; `zone` keeps its case ("ns.dns" + "Cluster.local.").
pub fn join(prefix: &str, zone: &str) -> String {
    if zone == "." { format!("{prefix}.") } else { format!("{prefix}.{zone}") }
}

/// The address a reverse name stands for: "4.3.2.1.in-addr.arpa." → 1.2.3.4; the 32 nibbles of
/// an ip6.arpa name → the IPv6 address. None for partial names.
pub fn reverse_address(qname: &str) -> Option<IpAddr> {
    if let Some(rest) = qname.strip_suffix(".in-addr.arpa.") {
        let mut octets: Vec<u8> = rest.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]));
    }
    let rest = qname.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<u8> =
        rest.split('.').map(|n| u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1)).collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.iter().rev().collect::<Vec<_>>().chunks(2).enumerate() {
        bytes[i] = (pair[0] << 4) | pair[1];
    }
    Some(IpAddr::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_read_as_addresses() {
        assert_eq!(reverse_address("10.0.168.192.in-addr.arpa."), Some("192.168.0.10".parse().expect("ip")));
        assert_eq!(reverse_address("168.192.in-addr.arpa."), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        assert_eq!(reverse_address(v6), Some("fd00::1".parse().expect("ip")));
        assert_eq!(reverse_address("x.ip6.arpa."), None);
    }

    #[test]
    fn matching_is_by_whole_labels() {
        let zones = vec!["cluster.local.".to_string(), "local.".to_string(), ".".to_string()];
        assert_eq!(longest_zone("a.svc.cluster.local.", &zones), Some("cluster.local."));
        assert_eq!(longest_zone("xcluster.local.", &zones), Some("local."));
        assert_eq!(longest_zone("example.org.", &zones), Some("."));
        assert!(!is_subdomain("xcluster.local.", "cluster.local."));
        assert!(is_subdomain("cluster.local.", "cluster.local."));
    }

    #[test]
    fn labels_below_a_zone() {
        assert_eq!(labels_below("a.b.cluster.local.", "cluster.local."), Some(vec!["a", "b"]));
        assert_eq!(labels_below("cluster.local.", "cluster.local."), Some(vec![]));
        assert_eq!(labels_below("a.b.", "."), Some(vec!["a", "b"]));
        assert_eq!(labels_below("a.example.", "cluster.local."), None);
        assert_eq!(join("ns.dns", "."), "ns.dns.");
        assert_eq!(join("ns.dns", "Cluster.Local."), "ns.dns.Cluster.Local.");
    }
}
