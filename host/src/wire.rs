//! The little the host itself reads and writes of DNS messages: the question (to pick a server
//! block), the client's EDNS0 payload size, the error answers the host gives without the module
//! (REFUSED, SERVFAIL, FORMERR).

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
pub use kubernetai_guest::handler::header_only;

/// The largest UDP response we send, whatever the client advertises: above this, fragmentation
/// makes answers unreliable (the DNS flag day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Every client can take this much over UDP.
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// A parsed query, as far as the host needs it.
pub struct Request {
    pub message: Message,
    /// Lowercase, fully qualified.
    pub qname: String,
}

impl Request {
    pub fn parse(packet: &[u8]) -> Option<Self> {
        let message = Message::from_vec(packet).ok()?;
        let mut qname = message.queries.first()?.name().to_ascii().to_ascii_lowercase();
        if !qname.ends_with('.') {
            qname.push('.');
        }
        Some(Request { message, qname })
    }

    /// The response size this client can take over UDP.
    pub fn udp_limit(&self) -> u16 {
        self.message.edns.as_ref().map_or(MIN_UDP_PAYLOAD, |e| e.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))
    }

    /// An answer with `rcode` and nothing else, as CoreDNS writes when a plugin fails.
    pub fn error(&self, rcode: ResponseCode) -> Vec<u8> {
        error(&self.message, rcode)
    }
}

/// The rcode of an answer we send.
pub fn rcode_of(response: &[u8]) -> Option<u8> {
    response.get(3).map(|b| b & 0x0f)
}

/// An answer to `req` with `rcode` and nothing else, as CoreDNS writes when a plugin fails.
pub fn error(req: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut m = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.checking_disabled = req.metadata.checking_disabled;
    m.metadata.response_code = rcode;
    m.queries = req.queries.clone();
    if let Some(e) = &req.edns {
        let mut out = Edns::new();
        out.set_max_payload(e.max_payload());
        m.set_edns(out);
    }
    m.to_vec().unwrap_or_else(|_| header_only(&req.metadata.id.to_be_bytes(), rcode))
}
