//! The `acl` plugin, as CoreDNS's: queries for its zones are allowed, blocked (REFUSED),
//! filtered (an empty NOERROR) or dropped (no answer) by the client's source address and the
//! query type. The rules of all a block's `acl` directives form one list, read in Corefile
//! order; the first rule that matches decides, and a query no rule matches is allowed.

use std::net::IpAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use kubernetai_guest::name::longest_zone;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::args::zone_of;
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply, wire};
use crate::observe::metrics::registry;

const BY: &str = "acl";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Allow,
    Block,
    Filter,
    Drop,
}

/// A source network: an address and how many leading bits must match.
#[derive(Clone, Copy, Debug)]
struct Net {
    addr: IpAddr,
    bits: u8,
}

impl Net {
    fn read(text: &str) -> Option<Net> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Net { addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let prefix = |a: u128, b: u128, width: u32| {
            let bits = u32::from(self.bits);
            bits == 0 || (a ^ b) >> (width - bits) == 0
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix(u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(n), u128::from(a), 128),
            _ => false,
        }
    }
}

/// `ACTION [type QTYPE...] [net SOURCE...]`; no types or `*`: any type; no nets or `*`: any source.
#[derive(Clone, Debug)]
struct Policy {
    action: Action,
    types: Option<Vec<RecordType>>,
    nets: Option<Vec<Net>>,
}

impl Policy {
    fn matches(&self, q: &Query) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&q.qtype))
            && self.nets.as_ref().is_none_or(|n| n.iter().any(|net| net.contains(q.client.ip())))
    }
}

/// One `acl [ZONES...] { ... }`.
#[derive(Clone, Debug)]
struct Rule {
    zones: Vec<String>,
    policies: Vec<Policy>,
}

/// Every `acl` of a block, read.
#[derive(Clone, Debug)]
pub struct Options {
    rules: Vec<Rule>,
}

/// Reads a block's `acl` directives.
pub fn setup(all: &[&Directive], block_zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    let mut rules = Vec::new();
    for d in all {
        let zones = if d.args.is_empty() {
            block_zones.to_vec()
        } else {
            d.args.iter().map(zone_of).collect::<Result<_, _>>()?
        };
        let mut policies = Vec::new();
        for line in d.block.as_deref().unwrap_or_default() {
            policies.push(policy(line)?);
        }
        rules.push(Rule { zones, policies });
    }
    Ok(Arc::new(Options { rules }))
}

fn policy(line: &Directive) -> Result<Policy, Error> {
    let action = match line.name.text.to_ascii_lowercase().as_str() {
        "allow" => Action::Allow,
        "block" => Action::Block,
        "filter" => Action::Filter,
        "drop" => Action::Drop,
        other => {
            return Err(
                line.error(format!("acl: unexpected token {other:?}; expect 'allow', 'block', 'filter' or 'drop'"))
            );
        }
    };
    let mut p = Policy { action, types: None, nets: None };
    let mut section: Option<&str> = None;
    for word in line.arg_texts() {
        match word.to_ascii_lowercase().as_str() {
            "type" | "net" => {
                section = Some(if word.eq_ignore_ascii_case("type") { "type" } else { "net" });
                continue;
            }
            _ => {}
        }
        match section {
            None => return Err(line.error(format!("acl: unexpected token {word:?}; expect 'type | net'"))),
            Some("type") if word == "*" => p.types = None,
            Some("type") => {
                let t = word
                    .to_ascii_uppercase()
                    .parse::<RecordType>()
                    .map_err(|_| line.error(format!("acl: unexpected token {word:?}; expect legal QTYPE")))?;
                p.types.get_or_insert_with(Vec::new).push(t);
            }
            Some(_) if word == "*" => p.nets = None,
            Some(_) => {
                let net = Net::read(word).ok_or_else(|| line.error(format!("acl: illegal CIDR notation {word:?}")))?;
                p.nets.get_or_insert_with(Vec::new).push(net);
            }
        }
    }
    Ok(p)
}

impl Setup for Options {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Acl { rules: self.rules.clone(), server: block.server.to_string() }))
    }
}

pub struct Acl {
    rules: Vec<Rule>,
    /// The `server` label of its metrics.
    server: String,
}

impl Acl {
    /// The first matching policy's action and the zone of its rule; allowed when none matches.
    fn decide<'r>(&'r self, q: &Query) -> (Action, &'r str) {
        for rule in &self.rules {
            let Some(zone) = longest_zone(&q.qname, &rule.zones) else { continue };
            if let Some(p) = rule.policies.iter().find(|p| p.matches(q)) {
                return (p.action, zone);
            }
        }
        (Action::Allow, "")
    }

    async fn answer<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        let (action, zone) = self.decide(q);
        let count = |name: &str| registry().inc(name, &[&self.server, zone, ""]);
        match action {
            Action::Allow => {
                count("coredns_acl_allowed_requests_total");
                next.run(q).await
            }
            Action::Block => {
                count("coredns_acl_blocked_requests_total");
                Reply::Answer { bytes: wire::error(&q.message, ResponseCode::Refused), by: BY }
            }
            Action::Filter => {
                count("coredns_acl_filtered_requests_total");
                Reply::Answer { bytes: wire::error(&q.message, ResponseCode::NoError), by: BY }
            }
            Action::Drop => {
                count("coredns_acl_dropped_requests_total");
                Reply::Drop
            }
        }
    }
}

impl Plugin for Acl {
    fn name(&self) -> &'static str {
        BY
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.answer(next, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let net = |t: &str| Net::read(t).expect(t);
        let ip = |t: &str| t.parse::<IpAddr>().expect(t);
        assert!(net("192.168.0.0/16").contains(ip("192.168.7.9")));
        assert!(!net("192.168.0.0/16").contains(ip("192.169.0.1")));
        assert!(net("10.0.0.1").contains(ip("10.0.0.1")) && !net("10.0.0.1").contains(ip("10.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.5")));
        assert!(net("fd00::/8").contains(ip("fd12::1")) && !net("fd00::/8").contains(ip("fe80::1")));
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")), "a mapped address is its IPv4 one");
        assert!(Net::read("10.0.0.0/33").is_none() && Net::read("ten").is_none());
    }
}
