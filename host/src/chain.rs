//! A server block's plugin chain as it runs per query: the stages in CoreDNS's plugin order
//! (any, loadbalance, cache, autopath, minimal, transfer, kubernetai, loop, forward), each answering or calling
//! the next, and what a query and a reply are on the way through.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::autopath::Autopath;
use crate::cache::Cache;
use crate::forward::Forward;
use crate::loop_detect::LoopDetect;
use crate::module::wit;
use crate::plugin::Plugin;
use crate::server::Router;
use crate::transfer::Transfer;

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
}

impl Query {
    pub fn new(packet: Vec<u8>, message: Message, client: SocketAddr, proto: Proto, max_size: u16) -> Option<Self> {
        let q = message.queries.first()?;
        let mut qname = q.name().to_ascii().to_ascii_lowercase();
        if !qname.ends_with('.') {
            qname.push('.');
        }
        let qtype = q.query_type();
        Some(Query { packet, message, qname, qtype, client, proto, max_size, depth: 0 })
    }

    /// The query the server parsed to route it, taken over whole: nothing is parsed or copied
    /// again on the way into the chain.
    pub fn from_request(
        req: crate::wire::Request,
        packet: Vec<u8>,
        client: SocketAddr,
        proto: Proto,
        max_size: u16,
    ) -> Option<Self> {
        let qtype = req.message.queries.first()?.query_type();
        Some(Query { packet, message: req.message, qname: req.qname, qtype, client, proto, max_size, depth: 0 })
    }

    /// The same query asked under another name (autopath).
    pub fn renamed(&self, name: hickory_proto::rr::Name) -> Option<Self> {
        let mut message = self.message.clone();
        let q = message.queries.first_mut()?;
        q.set_name(name);
        let packet = message.to_vec().ok()?;
        let mut next = Query::new(packet, message, self.client, self.proto, self.max_size)?;
        next.depth = self.depth;
        Some(next)
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

/// One plugin of a chain.
#[derive(Clone)]
pub enum Stage {
    Any,
    LoadBalance,
    Cache(Arc<Cache>),
    Autopath(Arc<Autopath>),
    Minimal,
    Transfer(Arc<Transfer>),
    Kubernetai(Arc<Plugin>),
    Loop(Arc<LoopDetect>),
    Forward(Arc<Forward>),
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Any => "any",
            Stage::LoadBalance => "loadbalance",
            Stage::Cache(_) => "cache",
            Stage::Autopath(_) => "autopath",
            Stage::Minimal => "minimal",
            Stage::Transfer(_) => "transfer",
            Stage::Kubernetai(_) => "kubernetai",
            Stage::Loop(_) => "loop",
            Stage::Forward(_) => "forward",
        }
    }
}

/// Where a query is in a chain: the router (for lookups from the top), the block and the stage.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    pub router: &'a Arc<Router>,
    /// Index of the block in the router.
    pub block: usize,
    pub at: usize,
}

/// How many CNAME targets one query may chase through the chain (ExternalName to ExternalName…).
const MAX_CHASE_DEPTH: usize = 8;

impl<'a> Next<'a> {
    /// Runs the chain from this stage on; past the last stage CoreDNS answers SERVFAIL.
    pub fn run(self, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(async move {
            let Some(stage) = self.router.blocks.get(self.block).and_then(|b| b.stages.get(self.at)) else {
                return Reply::servfail("", "no next plugin found");
            };
            let next = Next { at: self.at + 1, ..self };
            match stage {
                Stage::Any => crate::any::serve(next, q).await,
                Stage::LoadBalance => crate::loadbalance::serve(next, q).await,
                Stage::Cache(cache) => cache.serve(next, q).await,
                Stage::Autopath(autopath) => autopath.serve(next, q).await,
                Stage::Minimal => crate::minimal::serve(next, q).await,
                Stage::Transfer(transfer) => transfer.serve(next, q).await,
                Stage::Kubernetai(plugin) => kubernetai(plugin, next, q).await,
                Stage::Loop(detect) => detect.serve(next, q).await,
                Stage::Forward(forward) => forward.serve(next, q).await,
            }
        })
    }
}

impl Next<'_> {
    /// Runs the rest of the chain for `q` on a task of its own and gives the answer to the cache
    /// this stage follows (serve_stale's refresh behind the client's back).
    pub fn refresh(self, q: Query) {
        let (router, block, at) = (self.router.clone(), self.block, self.at);
        tokio::spawn(async move {
            let reply = Next { router: &router, block, at }.run(&q).await;
            let cache = router.blocks.get(block).and_then(|b| at.checked_sub(1).and_then(|i| b.stages.get(i)));
            if let (Reply::Answer { bytes, .. }, Some(Stage::Cache(cache))) = (&reply, cache) {
                cache.store_reply(&q, bytes);
            }
        });
    }
}

/// A query as the module takes it.
/// Calls `f` with the contract's query for `packet`, written into this thread's reused query
/// (its packet and client address buffers keep their capacity), so asking the module allocates
/// nothing in the host once a thread has seen its largest query.
pub fn with_module_query<T>(
    packet: &[u8],
    client: SocketAddr,
    proto: Proto,
    max_size: u16,
    f: impl FnOnce(&wit::Query) -> T,
) -> T {
    use std::cell::RefCell;
    use std::fmt::Write;
    thread_local! {
        static QUERY: RefCell<wit::Query> = RefCell::new(module_query(Vec::new(), ([0, 0, 0, 0], 0).into(), Proto::Udp, 0));
    }
    QUERY.with(|cell| {
        // Re-entered (a module call within a module call): a query of its own.
        let Ok(mut q) = cell.try_borrow_mut() else {
            return f(&module_query(packet.to_vec(), client, proto, max_size));
        };
        q.packet.clear();
        q.packet.extend_from_slice(packet);
        q.client.clear();
        let _ = write!(q.client, "{}", client.ip());
        q.client_port = client.port();
        q.transport = if proto == Proto::Udp { wit::Transport::Udp } else { wit::Transport::Tcp };
        q.max_size = max_size;
        f(&q)
    })
}

pub fn module_query(packet: Vec<u8>, client: SocketAddr, proto: Proto, max_size: u16) -> wit::Query {
    wit::Query {
        packet,
        client: client.ip().to_string(),
        client_port: client.port(),
        transport: if proto == Proto::Udp { wit::Transport::Udp } else { wit::Transport::Tcp },
        max_size,
    }
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

/// The module's answer to `query`: it reaches the network only if it is a response to it.
pub fn module_answer(bytes: Vec<u8>, query: &[u8]) -> Reply {
    const BY: &str = "kubernetai";
    if answers_query(&bytes, query) {
        Reply::Answer { bytes, by: BY }
    } else {
        Reply::servfail(
            BY,
            format!("plugin/kubernetai: the module answered {} bytes that are no response to this query", bytes.len()),
        )
    }
}

/// The kubernetai module's answer; a name it passes on goes down the chain, a CNAME out of its
/// zones is completed through the server (as CoreDNS's upstream lookup).
async fn kubernetai<'a>(plugin: &'a Plugin, next: Next<'a>, q: &'a Query) -> Reply {
    const BY: &str = "kubernetai";
    let query = module_query(q.packet.clone(), q.client, q.proto, q.max_size);
    let response = |bytes: Vec<u8>| module_answer(bytes, &q.packet);
    match plugin.handle(&query) {
        Ok(wit::Outcome::Answer(bytes)) => response(bytes),
        // The response chased must be one to this query too, before anything is added to it.
        Ok(wit::Outcome::Chase(chase)) if !answers_query(&chase.response, &q.packet) => response(chase.response),
        Ok(wit::Outcome::Chase(chase)) => match Message::from_vec(&chase.response) {
            Ok(mut resp) if q.depth < MAX_CHASE_DEPTH => {
                let qtype = RecordType::from(chase.qtype);
                if let Some(sub) = next.router.lookup(&chase.target, qtype, q, q.depth + 1).await {
                    resp.metadata.truncation |= sub.metadata.truncation;
                    resp.answers.extend(sub.answers);
                }
                Reply::Answer { bytes: kubernetai_guest::handler::encode(resp, q.max_size), by: BY }
            }
            _ => response(chase.response),
        },
        Ok(wit::Outcome::Drop) => Reply::Drop,
        Ok(wit::Outcome::Next) => next.run(q).await,
        Err(e) => Reply::servfail(BY, e.to_string()),
    }
}
