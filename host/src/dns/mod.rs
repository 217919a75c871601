//! What a DNS query and its reply are inside the server, and the wire-level helpers that read
//! and write them. Imports nothing else of the crate: every other part speaks these types.

mod query;
pub mod wire;

pub use query::{Proto, Query, Reply};

/// The text form of an rcode, as CoreDNS's logs and metrics write it.
pub fn rcode_name(rcode: u8) -> &'static str {
    const NAMES: [&str; 16] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE", "11", "12", "13", "14", "15",
    ];
    NAMES[usize::from(rcode & 0x0f)]
}
