//! Arguments as CoreDNS's plugins read them, shared by every directive: zones (names and CIDRs
//! as reverse zones) and Go durations, read and written.

use std::net::IpAddr;
use std::time::Duration;

use super::{Error, Token};

/// A zone argument, normalized: lowercase, fully qualified, CIDRs as reverse zones.
pub fn zone_of(t: &Token) -> Result<String, Error> {
    zone_text(&t.text).map_err(|m| Error::token(t, m))
}

pub fn zone_text(text: &str) -> Result<String, String> {
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

/// Go's duration syntax as CoreDNS reads it: "300ms", "5s", "1m30s", "1.5h".
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// A duration as Go prints it ("5m0s", "30s", "1.5s").
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        let total = d.as_secs();
        let (h, m, s) = (total / 3600, (total % 3600) / 60, secs - (total / 60 * 60) as f64);
        if h > 0 { format!("{h}h{m}m{s}s") } else { format!("{m}m{s}s") }
    } else {
        format!("{secs}s")
    }
}
