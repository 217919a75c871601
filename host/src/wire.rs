//! The little the host itself reads and writes of DNS messages: the screen CoreDNS applies
//! before any plugin, the question (to pick a server block), the client's EDNS0 payload size,
//! and the error answers the host gives without the module (FORMERR, NOTIMP, REFUSED, BADVERS,
//! SERVFAIL).

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::DNSClass;
pub use kubernetai_guest::handler::header_only;

/// The largest UDP response we send, whatever the client advertises: above this, fragmentation
/// makes answers unreliable (the DNS flag day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Every client can take this much over UDP.
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// The screen CoreDNS's DNS library puts a header through before anything reads the message
/// (its default accept function): any opcode but QUERY is not implemented here; more than one
/// question, more than one answer or authority record, or more than two additional records
/// (OPT and TSIG) is a format error. Both are answered with the header alone.
pub fn screen(packet: &[u8]) -> Option<ResponseCode> {
    let count = |i: usize| packet.get(i..i + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let opcode = packet.get(2).map_or(0, |b| (b >> 3) & 0x0f);
    if opcode != 0 {
        return Some(ResponseCode::NotImp);
    }
    if count(4) != 1 || count(6) > 1 || count(8) > 1 || count(10) > 2 {
        return Some(ResponseCode::FormErr);
    }
    None
}

/// What CoreDNS's server checks of a parsed query before its plugins see it: a class other than
/// IN is refused (no `chaos` plugin here), and an EDNS version other than 0 gets BADVERS.
pub fn refusal(req: &Message) -> Option<(&'static str, Vec<u8>)> {
    let question = req.queries.first()?;
    if question.query_class() != DNSClass::IN {
        return Some(("class", error(req, ResponseCode::Refused)));
    }
    // The answer's OPT is version 0, as `error` writes it; the rcode's high bits go there.
    let version = req.edns.as_ref()?.version();
    (version != 0).then(|| ("badvers", error(req, ResponseCode::BADVERS)))
}

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
