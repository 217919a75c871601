//! The little the host itself reads and writes of DNS messages: the question (to pick a server
//! block), the client's EDNS0 payload size, the error answers the host gives without the module
//! (REFUSED, SERVFAIL, FORMERR), and CoreDNS's query log line.

use std::net::SocketAddr;
use std::time::Duration;

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
        let req = &self.message;
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

    /// CoreDNS's default log line for this query and its `response`.
    pub fn log_line(&self, client: SocketAddr, proto: &str, size: usize, response: &[u8], took: Duration) -> String {
        let q = &self.message.queries[0];
        let (do_bit, bufsize) =
            self.message.edns.as_ref().map_or((false, 512), |e| (e.flags().dnssec_ok, e.max_payload()));
        let (rcode, flags) = response_summary(response);
        format!(
            "[INFO] {}:{} - {} \"{} {} {} {proto} {size} {do_bit} {bufsize}\" {rcode} {flags} {} {:.6}s",
            client.ip(),
            client.port(),
            self.message.metadata.id,
            q.query_type(),
            q.query_class(),
            q.name(),
            response.len(),
            took.as_secs_f64()
        )
    }
}

/// The rcode name and flags of a response header, as CoreDNS logs them ("NOERROR", "qr,aa,rd").
fn response_summary(response: &[u8]) -> (String, String) {
    if response.len() < 4 {
        return ("-".into(), "-".into());
    }
    let rcode = match response[3] & 0x0f {
        0 => "NOERROR".to_string(),
        1 => "FORMERR".to_string(),
        2 => "SERVFAIL".to_string(),
        3 => "NXDOMAIN".to_string(),
        4 => "NOTIMP".to_string(),
        5 => "REFUSED".to_string(),
        n => n.to_string(),
    };
    let names = [
        (response[2] & 0x80, "qr"),
        (response[2] & 0x04, "aa"),
        (response[2] & 0x02, "tc"),
        (response[2] & 0x01, "rd"),
        (response[3] & 0x80, "ra"),
    ];
    let flags: Vec<&str> = names.iter().filter(|(bit, _)| *bit != 0).map(|(_, n)| *n).collect();
    (rcode, flags.join(","))
}

/// The rcode of an answer we send.
pub fn rcode_of(response: &[u8]) -> Option<u8> {
    response.get(3).map(|b| b & 0x0f)
}
