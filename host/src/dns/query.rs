//! A query on its way through a chain, and what the chain makes of it.

use std::net::SocketAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// One query on its way through a chain.
#[derive(Clone)]
pub struct Query {
    pub packet: Vec<u8>,
    pub message: Message,
    /// Lowercase, fully qualified.
    pub qname: String,
    pub qtype: RecordType,
    pub client: SocketAddr,
    pub proto: Proto,
    /// The largest answer the client takes over its transport.
    pub max_size: u16,
    /// How many CNAME targets deep this lookup is (see `Router::lookup`).
    pub depth: usize,
    /// A `rewrite` rule in `stop` mode rewrote it: later rewrite rules leave it alone.
    pub rewrite_stopped: bool,
}

impl Query {
    pub fn new(packet: Vec<u8>, message: Message, client: SocketAddr, proto: Proto, max_size: u16) -> Option<Self> {
        let q = message.queries.first()?;
        let mut qname = q.name().to_ascii().to_ascii_lowercase();
        if !qname.ends_with('.') {
            qname.push('.');
        }
        let qtype = q.query_type();
        Some(Query { packet, message, qname, qtype, client, proto, max_size, depth: 0, rewrite_stopped: false })
    }

    /// The query the server parsed to route it, taken over whole: nothing is parsed or copied
    /// again on the way into the chain.
    pub fn from_request(
        req: crate::dns::wire::Request,
        packet: Vec<u8>,
        client: SocketAddr,
        proto: Proto,
        max_size: u16,
    ) -> Option<Self> {
        let qtype = req.message.queries.first()?.query_type();
        Some(Query {
            packet,
            message: req.message,
            qname: req.qname,
            qtype,
            client,
            proto,
            max_size,
            depth: 0,
            rewrite_stopped: false,
        })
    }

    /// The same query asked under another name (autopath).
    pub fn renamed(&self, name: hickory_proto::rr::Name) -> Option<Self> {
        let q = self.message.queries.first()?;
        self.asked_as(name, q.query_type(), q.query_class())
    }

    /// The same query with another question (rewrite).
    pub fn asked_as(
        &self,
        name: hickory_proto::rr::Name,
        qtype: RecordType,
        class: hickory_proto::rr::DNSClass,
    ) -> Option<Self> {
        let mut message = self.message.clone();
        let q = message.queries.first_mut()?;
        q.set_name(name);
        q.set_query_type(qtype);
        q.set_query_class(class);
        let packet = message.to_vec().ok()?;
        let mut next = Query::new(packet, message, self.client, self.proto, self.max_size)?;
        next.depth = self.depth;
        next.rewrite_stopped = self.rewrite_stopped;
        Some(next)
    }
}

impl Query {
    /// An authoritative response to this query written by a plugin: its id, RD bit and
    /// question, `rcode`, the answer, authority and additional records, and an OPT echoing the
    /// client's buffer size when it sent one.
    pub fn respond(
        &self,
        by: &'static str,
        rcode: ResponseCode,
        sections: [Vec<hickory_proto::rr::Record>; 3],
    ) -> Reply {
        self.respond_as(by, rcode, true, sections)
    }

    /// [`Query::respond`], authoritative or not (a referral is not).
    pub fn respond_as(
        &self,
        by: &'static str,
        rcode: ResponseCode,
        authoritative: bool,
        sections: [Vec<hickory_proto::rr::Record>; 3],
    ) -> Reply {
        use hickory_proto::op::{Edns, MessageType};
        let mut m = Message::new(self.message.metadata.id, MessageType::Response, self.message.metadata.op_code);
        m.metadata.recursion_desired = self.message.metadata.recursion_desired;
        m.metadata.authoritative = authoritative;
        m.metadata.response_code = rcode;
        m.queries = self.message.queries.clone();
        let [answers, authorities, additionals] = sections;
        (m.answers, m.authorities, m.additionals) = (answers, authorities, additionals);
        if let Some(e) = &self.message.edns {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload());
            m.set_edns(out);
        }
        match m.to_vec() {
            Ok(bytes) => Reply::Answer { bytes, by },
            Err(e) => Reply::servfail(by, e.to_string()),
        }
    }
}

/// What a chain made of a query.
#[derive(Debug)]
pub enum Reply {
    /// A response, and the plugin that wrote it (the `plugin` label of the response metrics).
    Answer {
        bytes: Vec<u8>,
        by: &'static str,
    },
    /// Several messages to send in order (zone transfers).
    Stream {
        messages: Vec<Vec<u8>>,
        by: &'static str,
    },
    Drop,
    /// The client gets `rcode` with nothing else; `reason` goes to the `errors` log.
    Fail {
        rcode: ResponseCode,
        reason: String,
        by: &'static str,
    },
}

impl Reply {
    pub fn servfail(by: &'static str, reason: impl Into<String>) -> Self {
        Reply::Fail { rcode: ResponseCode::ServFail, reason: reason.into(), by }
    }
}
