//! What a DNS query and its reply are inside the server, and the wire-level helpers that read
//! and write them. Imports nothing else of the crate: every other part speaks these types.

pub mod compare;
mod query;
pub mod wire;

pub use query::{Proto, Query, Reply};

/// The rcodes of the header's four bits by the names CoreDNS's logs, metrics and options use.
const RCODE_NAMES: [&str; 16] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
    "NOTZONE", "11", "12", "13", "14", "15",
];

/// The text form of an rcode, as CoreDNS's logs and metrics write it.
pub fn rcode_name(rcode: u8) -> &'static str {
    RCODE_NAMES[usize::from(rcode & 0x0f)]
}

/// The rcode a Corefile option names (`NXDOMAIN`, `servfail`, …).
pub fn rcode_named(text: &str) -> Option<hickory_proto::op::ResponseCode> {
    let at = RCODE_NAMES[..11].iter().position(|n| n.eq_ignore_ascii_case(text))?;
    Some(hickory_proto::op::ResponseCode::from_low(u8::try_from(at).ok()?))
}
