//! From a query's bytes to its answers, whichever transport brought it: screens it, picks the
//! server block whose zone is the longest match, runs that block's chain (see `chain`) — or
//! the first plugin's fast path, for a plain query —, and logs, counts and measures the outcome.
//! Malformed packets are answered FORMERR or dropped, and counted. The transports are `udp`
//! and `tcp`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::chain::{Chain, Fast, Lookup, Next, Plugin};
use crate::dns::wire::{self, Request};
use crate::dns::{Proto, Query, Reply};
use crate::serve::{errors::Errors, log::Log};
use crate::observe::{counters::Counters, metrics};

/// One server block as the server runs it.
pub struct Block {
    zones: Vec<String>,
    /// "dns://:53": the `server` label of its metrics.
    server: String,
    log: Option<Log>,
    errors: Option<Arc<Errors>>,
    /// `prometheus`: each zone's request metrics; empty when requests are not measured.
    metrics: Vec<metrics::ZoneMetrics>,
    /// The chain, in CoreDNS's plugin order.
    stages: Chain,
    /// The first plugin, when it answers plain queries itself (see [`Plugin::answer_fast`]).
    fast: Option<Arc<dyn Plugin>>,
}

impl Block {
    /// A block serving `zones` with `stages`; `measured` gives it request metrics. The one place
    /// that decides the fast path: the first plugin has one and no query is logged (the log
    /// needs the parsed message).
    pub fn new(
        zones: Vec<String>,
        server: String,
        log: Option<Log>,
        errors: Option<Arc<Errors>>,
        measured: bool,
        stages: Chain,
    ) -> Self {
        let metrics = if measured { zones.iter().map(|z| metrics::ZoneMetrics::new(&server, z)).collect() } else { vec![] };
        let fast = stages.first().filter(|p| p.has_fast_path() && log.is_none()).cloned();
        Block { zones, server, log, errors, metrics, stages, fast }
    }

    /// The request metrics of `zone`, one of the block's, when the block measures requests.
    fn measured(&self, zone: &str) -> Option<&metrics::ZoneMetrics> {
        self.metrics.iter().find(|m| m.zone() == zone)
    }
}

/// The server blocks sharing one port.
pub struct Router {
    pub blocks: Vec<Block>,
    pub counters: Arc<Counters>,
}

/// What [`Router::answer_first`] made of a query.
pub enum First {
    /// Answered without the chain: the answer was appended to the caller's buffer.
    Answered,
    /// Dropped unanswered, and counted.
    Dropped,
    /// The chain must run ([`Router::answer_full`]).
    Chain(Pending),
}

/// A query the first, waitless step did not finish.
pub struct Pending {
    started: Instant,
    /// The fast path failed in this block (by index): its reply is the chain's.
    failed: Option<(usize, Reply)>,
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
            First::Answered => vec![answer],
            First::Dropped => vec![],
            First::Chain(pending) => self.answer_full(packet, client, proto, pending).await,
        }
    }

    /// What can be done without waiting or copying the packet: counting, screening, and the
    /// fast path. Most queries end here, with at most one message, appended to `out`: the
    /// fast path allocates nothing once `out` has room.
    pub fn answer_first(&self, packet: &[u8], client: SocketAddr, proto: Proto, out: &mut Vec<u8>) -> First {
        let c = &self.counters;
        c.queries.fetch_add(1, Ordering::Relaxed);
        // Shorter than a header, or itself a response: never answered (no reflection loops).
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::screened(if packet.len() < 12 { "short" } else { "response" });
            return First::Dropped;
        }
        if let Some(rcode) = wire::screen(packet) {
            let counter = if rcode == ResponseCode::FormErr { &c.formerr } else { &c.answered };
            counter.fetch_add(1, Ordering::Relaxed);
            metrics::screened(if rcode == ResponseCode::FormErr { "formerr" } else { "notimp" });
            out.extend_from_slice(&wire::header_only(packet, rcode));
            return First::Answered;
        }
        let started = Instant::now();
        self.answer_fast(packet, client, proto, started, out)
    }

    /// The rest of [`Router::answer`] after [`Router::answer_first`]: the chain, from the top.
    pub async fn answer_full(
        self: &Arc<Self>,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        pending: Pending,
    ) -> Vec<Vec<u8>> {
        let Pending { started, failed } = pending;
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
        let routed = match &failed {
            Some((index, _)) => self.blocks.get(*index).and_then(|b| {
                kubernetai_guest::name::longest_zone(&req.qname, &b.zones).map(|z| (*index, b, z))
            }),
            None => self.block(&req.qname),
        };
        let Some((index, block, zone)) = routed else {
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
        let reply = match failed {
            Some((_, reply)) => reply,
            None => {
                let lookup: Arc<dyn Lookup> = self.clone();
                Next::start(&self.blocks[index].stages, &lookup).run(&query).await
            }
        };
        let (messages, by) = match reply {
            Reply::Answer { bytes, by } => (vec![wire::fit(bytes, &query.message, query.max_size)], by),
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
    /// block with a fast path, answered by its first plugin. What that plugin declines goes
    /// the full way from the top; what it failed goes on with its reply, in the same block.
    fn answer_fast(&self, packet: &[u8], client: SocketAddr, proto: Proto, started: Instant, out: &mut Vec<u8>) -> First {
        let chain = First::Chain(Pending { started, failed: None });
        let Some(plain) = wire::plain(packet) else { return chain };
        let Some((index, block, zone)) = self.block(&plain.qname) else { return chain };
        let Some(plugin) = &block.fast else { return chain };
        let max_size = match proto {
            Proto::Udp => plain.udp_limit,
            Proto::Tcp => u16::MAX,
        };
        let from = out.len();
        match plugin.answer_fast(packet, client, proto, max_size, out) {
            Fast::Answered => {}
            Fast::Declined => return chain,
            Fast::Failed(reply) => return First::Chain(Pending { started, failed: Some((index, reply)) }),
        }
        let bytes = &out[from..];
        self.count_first(bytes);
        if let Some(m) = block.measured(zone) {
            let asked =
                metrics::Asked { ipv4: client.is_ipv4(), qtype: plain.qtype, proto, dnssec_ok: plain.dnssec_ok };
            m.report(&asked, packet.len(), bytes, bytes.len(), plugin.name(), started.elapsed());
        }
        First::Answered
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
