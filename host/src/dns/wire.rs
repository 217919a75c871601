//! The little the host itself reads and writes of DNS messages: the screen CoreDNS applies
//! before any plugin, the question (to pick a server block), the client's EDNS0 payload size,
//! and the error answers the host gives without the module (FORMERR, NOTIMP, REFUSED, BADVERS,
//! SERVFAIL).

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::DNSClass;
pub use kubernetai_guest::message::header_only;

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

/// The question and EDNS of a plain query, read straight from its bytes: enough to route it and
/// hand it to the module without building a message. None for anything less plain — another
/// class, EDNS version, a compressed or escaped name, extra records, trailing bytes — which the
/// full parse then decides.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain {
    /// Lowercase, fully qualified.
    pub qname: InlineName,
    pub qtype: u16,
    /// The response size this client can take over UDP (as [`Request::udp_limit`]).
    pub udp_limit: u16,
    pub dnssec_ok: bool,
}

/// The longest name in text form, root dot included.
const MAX_NAME: usize = 254;

/// A plain query's name, lowercase and fully qualified, kept inline: reading a query on the
/// plain path allocates nothing.
pub struct InlineName {
    bytes: [u8; MAX_NAME],
    len: usize,
}

impl InlineName {
    /// Appends a label of letters, digits, `-` and `_` (checked by the caller) and its dot.
    fn push(&mut self, label: &[u8]) -> Option<()> {
        let end = self.len + label.len() + 1;
        let out = self.bytes.get_mut(self.len..end)?;
        for (o, b) in out.iter_mut().zip(label) {
            *o = b.to_ascii_lowercase();
        }
        out[label.len()] = b'.';
        self.len = end;
        Some(())
    }
}

impl std::fmt::Debug for InlineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for InlineName {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for InlineName {}

impl PartialEq<String> for InlineName {
    fn eq(&self, other: &String) -> bool {
        **self == **other
    }
}

impl std::ops::Deref for InlineName {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' are ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

pub fn plain(packet: &[u8]) -> Option<Plain> {
    let u16_at = |i: usize| packet.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (qd, an, ns, ar) = (u16_at(4)?, u16_at(6)?, u16_at(8)?, u16_at(10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut qname = InlineName { bytes: [0; MAX_NAME], len: 0 };
    let mut at = 12;
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // 0xC0 and up are pointers (or reserved): the full parse reads those.
        let label = packet.get(at..at + len).filter(|_| len <= 63)?;
        if !label.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return None;
        }
        qname.push(label)?;
        at += len;
    }
    if qname.is_empty() {
        return None;
    }
    let (qtype, qclass) = (u16_at(at)?, u16_at(at + 2)?);
    if qclass != u16::from(DNSClass::IN) {
        return None;
    }
    at += 4;
    let (mut udp_limit, mut dnssec_ok) = (MIN_UDP_PAYLOAD, false);
    if ar == 1 {
        // OPT: root owner, type 41, class = payload size, TTL = extended rcode, version, flags.
        if packet.get(at) != Some(&0) || u16_at(at + 1)? != 41 {
            return None;
        }
        let (payload, version, flags) = (u16_at(at + 3)?, *packet.get(at + 6)?, u16_at(at + 7)?);
        if version != 0 {
            return None;
        }
        udp_limit = payload.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD);
        dnssec_ok = flags & 0x8000 != 0;
        at += 11 + usize::from(u16_at(at + 9)?);
    }
    (at == packet.len()).then_some(Plain { qname, qtype, udp_limit, dnssec_ok })
}

/// Whether `bytes` are a response to `query`: its id, QR set, its opcode, and its question
/// byte for byte (the module keeps the query's case). An error answer may carry no question,
/// as one to a query that could not be read.
pub fn answers_query(bytes: &[u8], query: &[u8]) -> bool {
    if bytes.len() < 12 || query.len() < 12 || bytes[..2] != query[..2] || bytes[2] & 0x80 == 0 {
        return false;
    }
    if (bytes[2] >> 3) & 0x0f != (query[2] >> 3) & 0x0f {
        return false;
    }
    match (bytes[4], bytes[5]) {
        (0, 0) => bytes[3] & 0x0f != 0,
        (0, 1) => question_end(query).is_some_and(|end| bytes.get(12..end) == query.get(12..end)),
        _ => false,
    }
}

/// Where the first question of `packet` ends: its name's labels (or a pointer), type and class.
fn question_end(packet: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = *packet.get(at)?;
        if len & 0xc0 == 0xc0 {
            at += 2;
            break;
        }
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    (at + 4 <= packet.len()).then_some(at + 4)
}

/// A response within the client's limit: an upstream's or the cache's answer may be larger than
/// this client takes over UDP, and is then cut as the module cuts its own.
pub fn fit(bytes: Vec<u8>, query: &Message, max_size: u16) -> Vec<u8> {
    if bytes.len() <= usize::from(max_size) {
        return bytes;
    }
    match Message::from_vec(&bytes) {
        Ok(m) => kubernetai_guest::message::encode(m, max_size),
        Err(_) => error(query, ResponseCode::ServFail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn packet(name: &str, qtype: RecordType, edns: Option<(u16, u8, bool)>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        if let Some((size, version, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_version(version);
            e.flags_mut().dnssec_ok = dnssec_ok;
            m.set_edns(e);
        }
        m.to_vec().expect("encodes")
    }

    #[test]
    fn a_plain_query_is_read_as_the_full_parse_reads_it() {
        for (name, qtype, edns) in [
            ("Web.Shop.svc.cluster.local.", RecordType::A, None),
            ("_http._tcp.web.shop.svc.cluster.local.", RecordType::SRV, Some((4096, 0, true))),
            ("10.0.96.10.in-addr.arpa.", RecordType::PTR, Some((300, 0, false))),
        ] {
            let p = packet(name, qtype, edns);
            let req = Request::parse(&p).expect("parses");
            let plain = plain(&p).expect("plain");
            assert_eq!(plain.qname, req.qname);
            assert_eq!(plain.qtype, u16::from(qtype));
            assert_eq!(plain.udp_limit, req.udp_limit());
            assert_eq!(plain.dnssec_ok, req.message.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
        }
    }

    #[test]
    fn anything_less_plain_goes_to_the_full_parse() {
        assert!(plain(&packet("a.b.", RecordType::A, Some((1232, 1, false)))).is_none(), "EDNS version 1");
        let mut chaos = packet("version.bind.", RecordType::TXT, None);
        let n = chaos.len();
        chaos[n - 1] = 3;
        assert!(plain(&chaos).is_none(), "class CH");
        let mut trailing = packet("a.b.", RecordType::A, None);
        trailing.push(0);
        assert!(plain(&trailing).is_none(), "trailing bytes");
        let mut escaped = packet("ab.c.", RecordType::A, None);
        escaped[13] = b' ';
        assert!(plain(&escaped).is_none(), "a byte the full parse escapes");
        assert!(plain(&packet(".", RecordType::NS, None)).is_none(), "the root");
        let p = packet("a.b.", RecordType::A, None);
        for cut in 0..p.len() {
            assert!(plain(&p[..cut]).is_none(), "cut at {cut}");
        }
    }
}
