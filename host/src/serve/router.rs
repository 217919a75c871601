//! DNS over UDP and TCP: receives queries, picks the server block whose zone is the longest
//! match, runs its chain (see `chain`), logs, counts and measures the outcome, and sends the
//! answer back within the transport's limits. Malformed packets are answered FORMERR or dropped,
//! and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::chain::errors::Errors;
use crate::chain::log::Log;
use crate::chain::{Chain, Lookup, Next};
use crate::dns::wire::{self, Request};
use crate::dns::{Proto, Query, Reply};
use crate::module::fed::FedModule;
pub use crate::observe::counters::Counters;
use crate::observe::metrics;

/// TCP bounds. Idle, read and write times are CoreDNS's defaults: a connection waiting this long
/// for the next query is closed, a query must arrive whole within the read time once its length
/// has, and a client that does not take its answer within the write time is dropped. CoreDNS sets
/// no bound on connections or on queries per connection; we do, so a client cannot hold the
/// server's memory or one connection forever.
const TCP_IDLE: Duration = Duration::from_secs(10);
const TCP_READ: Duration = Duration::from_secs(3);
const TCP_WRITE: Duration = Duration::from_secs(5);
/// Connections open at once per listener; past this, new ones are closed at once and counted.
pub const TCP_MAX_CONNECTIONS: usize = 1024;
/// Queries answered on one connection before the server closes it (the client reconnects).
pub const TCP_MAX_QUERIES: usize = 1000;

impl Block {
    /// The request metrics of `zone`, one of the block's, when the block measures requests.
    fn measured(&self, zone: &str) -> Option<&metrics::ZoneMetrics> {
        self.metrics.iter().find(|m| m.zone() == zone)
    }
}

/// One server block as the server runs it.
pub struct Block {
    pub zones: Vec<String>,
    /// "dns://:53": the `server` label of its metrics.
    pub server: String,
    pub log: Option<Log>,
    pub errors: Option<Arc<Errors>>,
    /// `prometheus`: each zone's request metrics; empty when requests are not measured.
    pub metrics: Vec<metrics::ZoneMetrics>,
    /// The chain, in CoreDNS's plugin order.
    pub stages: Chain,
    /// The block's module when its chain starts with kubernetai: plain queries go to it straight.
    pub plain: Option<Arc<FedModule>>,
}

/// The server blocks sharing one port.
pub struct Router {
    pub blocks: Vec<Block>,
    pub counters: Arc<Counters>,
}

/// What became of a query on the path that builds no message.
enum Plain {
    /// The answer is in the caller's buffer.
    Answered,
    /// The module failed, or answered what the full path must judge: this is the chain's reply.
    Failed(Reply),
    /// Not a plain query, or not one the module answered: the full path takes it from the top.
    NotPlain,
}

/// What [`Router::answer_first`] made of a query.
pub enum First {
    /// Answered (true: the answer was appended to the caller's buffer) or dropped, without the
    /// chain.
    Done(bool),
    /// The chain must run: with the reply the plain path already has (a module failure), and
    /// the time the query started.
    Full { plain: Option<Reply>, started: Instant },
}

/// The router a listener uses now; a reload replaces it while the sockets stay open.
pub type Current = Arc<ArcSwap<Router>>;

impl Router {
    /// The block whose zone is the longest match for `qname`: its index, itself and that zone.
    fn block(&self, qname: &str) -> Option<(usize, &Block, &str)> {
        self.blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| kubernetai_guest::name::longest_zone(qname, &b.zones).map(|z| (i, b, z)))
            .max_by_key(|(_, _, z)| z.len())
    }

    /// The answer to `packet` as a TCP client would get it (no size limit), for offline use.
    pub async fn answer_offline(self: &Arc<Self>, packet: &[u8]) -> Option<Vec<u8>> {
        self.answer(packet, SocketAddr::from(([127, 0, 0, 1], 0)), Proto::Tcp).await.into_iter().next()
    }

    /// The messages that answer `packet` (none: drop it; several: a zone transfer).
    pub async fn answer(self: &Arc<Self>, packet: &[u8], client: SocketAddr, proto: Proto) -> Vec<Vec<u8>> {
        let mut answer = Vec::new();
        match self.answer_first(packet, client, proto, &mut answer) {
            First::Done(answered) => {
                if answered {
                    vec![answer]
                } else {
                    vec![]
                }
            }
            First::Full { plain, started } => self.answer_full(packet, client, proto, plain, started).await,
        }
    }

    /// What can be done without waiting or copying the packet: counting, screening, and the
    /// plain path. Most queries end here, with at most one message, appended to `out`: the
    /// plain path allocates nothing once `out` has room.
    pub fn answer_first(&self, packet: &[u8], client: SocketAddr, proto: Proto, out: &mut Vec<u8>) -> First {
        let c = &self.counters;
        c.queries.fetch_add(1, Ordering::Relaxed);
        // Shorter than a header, or itself a response: never answered (no reflection loops).
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::screened(if packet.len() < 12 { "short" } else { "response" });
            return First::Done(false);
        }
        if let Some(rcode) = wire::screen(packet) {
            let counter = if rcode == ResponseCode::FormErr { &c.formerr } else { &c.answered };
            counter.fetch_add(1, Ordering::Relaxed);
            metrics::screened(if rcode == ResponseCode::FormErr { "formerr" } else { "notimp" });
            out.extend_from_slice(&wire::header_only(packet, rcode));
            return First::Done(true);
        }
        let started = Instant::now();
        match self.answer_plain(packet, client, proto, started, out) {
            Plain::Answered => First::Done(true),
            Plain::Failed(reply) => First::Full { plain: Some(reply), started },
            Plain::NotPlain => First::Full { plain: None, started },
        }
    }

    /// The rest of [`Router::answer`] after [`Router::answer_first`]: the chain, from the top.
    pub async fn answer_full(
        self: &Arc<Self>,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        plain: Option<Reply>,
        started: Instant,
    ) -> Vec<Vec<u8>> {
        let c = &self.counters;
        let Some(req) = Request::parse(packet) else {
            c.formerr.fetch_add(1, Ordering::Relaxed);
            metrics::screened("formerr");
            return vec![wire::header_only(packet, ResponseCode::FormErr)];
        };
        if let Some((reason, refusal)) = wire::refusal(&req.message) {
            c.answered.fetch_add(1, Ordering::Relaxed);
            metrics::screened(reason);
            return vec![refusal];
        }
        let max_size = match proto {
            Proto::Udp => req.udp_limit(),
            Proto::Tcp => u16::MAX,
        };
        let Some((index, block, zone)) = self.block(&req.qname) else {
            c.answered.fetch_add(1, Ordering::Relaxed);
            let refused = req.error(ResponseCode::Refused);
            // As CoreDNS: a query no server block serves is counted under zone "dropped".
            if let Some(b) = self.blocks.iter().find(|b| !b.metrics.is_empty()) {
                let asked = metrics::Asked {
                    ipv4: client.is_ipv4(),
                    qtype: req.message.queries.first().map_or(0, |q| u16::from(q.query_type())),
                    proto,
                    dnssec_ok: req.message.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
                };
                let took = started.elapsed();
                let dropped = metrics::ZoneMetrics::new(&b.server, "dropped");
                dropped.report(&asked, packet.len(), &refused, refused.len(), "", took);
            }
            return vec![refused];
        };
        let Some(query) = Query::from_request(req, packet.to_vec(), client, proto, max_size) else {
            c.formerr.fetch_add(1, Ordering::Relaxed);
            return vec![wire::header_only(packet, ResponseCode::FormErr)];
        };
        let reply = match plain {
            Some(reply) => reply,
            None => {
                let lookup: Arc<dyn Lookup> = self.clone();
                Next::start(&self.blocks[index].stages, &lookup).run(&query).await
            }
        };
        let (messages, by) = match reply {
            Reply::Answer { bytes, by } => (vec![fit(bytes, &query)], by),
            Reply::Stream { messages, by } => (messages, by),
            Reply::Drop => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                return vec![];
            }
            Reply::Fail { rcode, reason, by } => {
                if let Some(errors) = &block.errors {
                    let q = &query.message.queries[0];
                    errors.report(&format!("{} {} {}: {reason}", rcode.low(), q.name(), q.query_type()));
                }
                (vec![wire::error(&query.message, rcode)], by)
            }
        };
        self.count(&messages);
        let took = started.elapsed();
        if let Some(m) = block.measured(zone) {
            let (first, size) =
                (messages.first().map(Vec::as_slice).unwrap_or_default(), messages.iter().map(Vec::len).sum());
            m.report(&metrics::Asked::of(&query), packet.len(), first, size, by, took);
        }
        if let Some(log) = &block.log {
            log.write(&query, packet.len(), messages.first().map(Vec::as_slice).unwrap_or_default(), took);
        }
        messages
    }

    /// Counts an answer by its rcode.
    fn count(&self, messages: &[Vec<u8>]) {
        self.count_first(messages.first().map(Vec::as_slice).unwrap_or_default());
    }

    /// Counts an answer by the rcode of its first message.
    fn count_first(&self, first: &[u8]) {
        let c = &self.counters;
        match wire::rcode_of(first) {
            Some(1) => c.formerr.fetch_add(1, Ordering::Relaxed),
            Some(2) => c.servfail.fetch_add(1, Ordering::Relaxed),
            _ => c.answered.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The common case without building a message: a plain query (see [`wire::plain`]) for a
    /// block whose chain starts with kubernetai and that logs no queries, answered by the module.
    /// Anything else the module says (next, chase, drop) goes the full way, where the module's
    /// answer cache makes asking it again cheap; a module failure is not asked twice.
    fn answer_plain(
        &self,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        started: Instant,
        out: &mut Vec<u8>,
    ) -> Plain {
        const BY: &str = "kubernetai";
        let Some(plain) = wire::plain(packet) else { return Plain::NotPlain };
        let Some((_, block, zone)) = self.block(&plain.qname) else { return Plain::NotPlain };
        let (Some(plugin), None) = (&block.plain, &block.log) else {
            return Plain::NotPlain;
        };
        let max_size = match proto {
            Proto::Udp => plain.udp_limit,
            Proto::Tcp => u16::MAX,
        };
        let from = out.len();
        match crate::contract::with_module_query(packet, client, proto, max_size, |q| plugin.handle_into(q, out)) {
            Ok(None) => {}
            Ok(Some(crate::contract::wit::Outcome::Answer(bytes))) => out.extend_from_slice(&bytes),
            Ok(Some(_)) => return Plain::NotPlain,
            Err(e) => return Plain::Failed(Reply::servfail(BY, e.to_string())),
        }
        let bytes = &out[from..];
        if !crate::dns::wire::answers_query(bytes, packet) || bytes.len() > usize::from(max_size) {
            // The full path says why (a foreign answer) or cuts it (an oversized one).
            let bytes = out.split_off(from);
            return Plain::Failed(crate::chain::kubernetai::module_answer(bytes, packet));
        }
        self.count_first(bytes);
        if let Some(m) = block.measured(zone) {
            let asked =
                metrics::Asked { ipv4: client.is_ipv4(), qtype: plain.qtype, proto, dnssec_ok: plain.dnssec_ok };
            m.report(&asked, packet.len(), bytes, bytes.len(), BY, started.elapsed());
        }
        Plain::Answered
    }

    /// Resolves `name`/`qtype` through the chain of the block serving `name`, from its top, as
    /// CoreDNS's upstream lookups do for CNAME targets.
    pub async fn lookup(
        self: &Arc<Self>,
        name: &str,
        qtype: RecordType,
        from: &Query,
        depth: usize,
    ) -> Option<Message> {
        let target = Name::from_ascii(name).ok()?;
        let mut m = Message::new(from.message.metadata.id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(hickory_proto::op::Query::query(target, qtype));
        let packet = m.to_vec().ok()?;
        let mut q = Query::new(packet, m, from.client, from.proto, u16::MAX)?;
        q.depth = depth;
        let (block, _, _) = self.block(&q.qname)?;
        let lookup: Arc<dyn Lookup> = self.clone();
        match Next::start(&self.blocks[block].stages, &lookup).run(&q).await {
            Reply::Answer { bytes, .. } => Message::from_vec(&bytes).ok(),
            _ => None,
        }
    }
}

impl Lookup for Router {
    fn lookup(
        self: Arc<Self>,
        name: String,
        qtype: RecordType,
        from: Query,
        depth: usize,
    ) -> futures::future::BoxFuture<'static, Option<Message>> {
        Box::pin(async move { Router::lookup(&self, &name, qtype, &from, depth).await })
    }
}

/// A response within the client's limit: an upstream's or the cache's answer may be larger than
/// this client takes over UDP, and is then cut as the module cuts its own.
fn fit(bytes: Vec<u8>, q: &Query) -> Vec<u8> {
    if bytes.len() <= usize::from(q.max_size) {
        return bytes;
    }
    match Message::from_vec(&bytes) {
        Ok(m) => kubernetai_guest::handler::encode(m, q.max_size),
        Err(_) => wire::error(&q.message, ResponseCode::ServFail),
    }
}

/// How often an idle UDP worker checks whether it should stop.
const UDP_STOP_CHECK: Duration = Duration::from_millis(200);

/// Serves UDP on `socket` from a thread of its own (one per core, each on its own SO_REUSEPORT
/// socket, so the kernel spreads queries over them) until `stop` is set. A query the chain
/// answers without waiting — every answer of the module, every cache hit — is answered on this
/// thread with no task and no hand-off; one that must wait (forward) goes on as a task of the
/// runtime, and is answered from there.
pub fn udp_worker(
    socket: std::net::UdpSocket,
    router: Current,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    crate::module::fed::off_runtime_thread();
    // Tokio's sockets and timers made by the chain (forward) need the runtime's context.
    let _context = runtime.enter();
    if let Err(e) = socket.set_read_timeout(Some(UDP_STOP_CHECK)) {
        println!("[WARNING] udp worker: {e}");
    }
    let mut inbox = crate::serve::udp_batch::Inbox::default();
    let mut outbox = crate::serve::udp_batch::Outbox::default();
    let waker = futures::task::noop_waker();
    while !stop.load(Ordering::Relaxed) {
        match inbox.recv(&socket) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems: not fatal.
                println!("[WARNING] udp receive: {e}");
                continue;
            }
        }
        let current = router.load_full();
        for i in 0..crate::serve::udp_batch::BATCH {
            let Some((packet, peer, truncated)) = inbox.get(i) else {
                break;
            };
            if truncated {
                // Larger than any query: counted as dropped, as the router would count it.
                current.counters.queries.fetch_add(1, Ordering::Relaxed);
                current.counters.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::screened("oversized");
                continue;
            }
            let from = outbox.bytes.len();
            let (plain, started) = match current.answer_first(packet, peer, Proto::Udp, &mut outbox.bytes) {
                First::Done(answered) => {
                    if answered {
                        outbox.commit(from, peer);
                    }
                    continue;
                }
                First::Full { plain, started } => (plain, started),
            };
            // Only a query the chain must see is copied and made a task.
            let (packet, router) = (packet.to_vec(), current.clone());
            let mut answering =
                Box::pin(async move { router.answer_full(&packet, peer, Proto::Udp, plain, started).await });
            match answering.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
                std::task::Poll::Ready(answers) => answers.iter().for_each(|a| outbox.push(a, peer)),
                std::task::Poll::Pending => {
                    // Out of descriptors: this query's answer has no socket to leave by.
                    let Ok(sender) = socket.try_clone() else {
                        metrics::screened("udp_no_socket");
                        continue;
                    };
                    // Spawning polls it again at once, with the task's own waker.
                    runtime.spawn(async move {
                        let messages = answering.await;
                        let mut answers = crate::serve::udp_batch::Outbox::default();
                        messages.iter().for_each(|a| answers.push(a, peer));
                        answers.send(&sender);
                    });
                }
            }
        }
        outbox.send(&socket);
    }
}

/// `count` UDP sockets on `addr` sharing its port with SO_REUSEPORT; port 0 picks one free port
/// for all of them.
pub fn reuseport_udp(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut addr = addr;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        let bound: std::net::UdpSocket = socket.into();
        addr = bound.local_addr()?;
        out.push(bound);
    }
    Ok(out)
}

/// Serves TCP on `listener`: several length-framed queries per connection, within the bounds above.
pub async fn serve_tcp(listener: TcpListener, router: Current) {
    let slots = Arc::new(tokio::sync::Semaphore::new(TCP_MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    router.load().counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                    metrics::screened("tcp_connections");
                    drop(stream);
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    connection(stream, peer, router).await;
                    drop(slot);
                });
            }
            Err(e) => {
                metrics::screened("tcp_accept_error");
                println!("[WARNING] tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, router: Current) {
    let mut buf = Vec::new();
    for _ in 0..TCP_MAX_QUERIES {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len[..1])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        match tokio::time::timeout(TCP_READ, stream.read_exact(&mut len[1..])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(TCP_READ, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let answers = router.load_full().answer(&buf, peer, Proto::Tcp).await;
        let mut framed = Vec::new();
        for answer in answers {
            let Ok(len) = u16::try_from(answer.len()) else {
                return;
            };
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&answer);
        }
        match tokio::time::timeout(TCP_WRITE, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
