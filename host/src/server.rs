//! DNS over UDP and TCP: receives queries, picks the server block whose zone is the longest
//! match, runs its chain (the kubernetai module, then "no next plugin" as CoreDNS answers it),
//! and sends the answer back within the transport's limits. Malformed packets are answered
//! FORMERR or dropped, and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::module::wit;
use crate::plugin::Plugin;
use crate::wire::{self, Request};

/// A TCP connection idle this long is closed (CoreDNS's default read timeout is of this order).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Largest UDP datagram we read.
const UDP_BUFFER: usize = 65535;

/// One server block as the server runs it.
pub struct Block {
    pub zones: Vec<String>,
    pub log: bool,
    pub errors: bool,
    /// The kubernetai plugin (a pool of module instances) holding this block's stanzas; None for
    /// a block without kubernetai.
    pub plugin: Option<Arc<Plugin>>,
}

/// What the server counted, printed when it stops.
#[derive(Default)]
pub struct Counters {
    pub queries: AtomicU64,
    pub answered: AtomicU64,
    pub formerr: AtomicU64,
    pub dropped: AtomicU64,
    pub servfail: AtomicU64,
    /// Module swaps carried out, and candidates refused.
    pub swaps: AtomicU64,
    pub refused: AtomicU64,
}

impl Counters {
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "queries={} answered={} formerr={} dropped={} servfail={} swaps={} refused={}",
            g(&self.queries),
            g(&self.answered),
            g(&self.formerr),
            g(&self.dropped),
            g(&self.servfail),
            g(&self.swaps),
            g(&self.refused)
        )
    }
}

/// The server blocks sharing one port.
pub struct Router {
    pub blocks: Vec<Block>,
    pub counters: Arc<Counters>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
}

impl Router {
    /// The block whose zone is the longest match for `qname`.
    fn block(&self, qname: &str) -> Option<&Block> {
        self.blocks
            .iter()
            .filter_map(|b| kubernetai_guest::name::longest_zone(qname, &b.zones).map(|z| (z.len(), b)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, b)| b)
    }

    /// The answer to `packet` as a TCP client would get it (no size limit), for offline use.
    pub fn answer_offline(&self, packet: &[u8]) -> Option<Vec<u8>> {
        self.answer(packet, SocketAddr::from(([127, 0, 0, 1], 0)), Proto::Tcp)
    }

    /// The answer to `packet`, or None to drop it.
    fn answer(&self, packet: &[u8], client: SocketAddr, proto: Proto) -> Option<Vec<u8>> {
        let c = &self.counters;
        c.queries.fetch_add(1, Ordering::Relaxed);
        // Shorter than a header, or itself a response: never answered (no reflection loops).
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Some(req) = Request::parse(packet) else {
            c.formerr.fetch_add(1, Ordering::Relaxed);
            return Some(wire::header_only(packet, ResponseCode::FormErr));
        };
        let started = Instant::now();
        let max_size = match proto {
            Proto::Udp => req.udp_limit(),
            Proto::Tcp => u16::MAX,
        };
        let Some(block) = self.block(&req.qname) else {
            c.answered.fetch_add(1, Ordering::Relaxed);
            return Some(req.error(ResponseCode::Refused));
        };
        let response = match self.chain(block, packet, client, proto, max_size, 0) {
            // The module's bytes go to the network only if they are a response to this query.
            Reply::Bytes(bytes) if bytes.len() >= 12 && bytes[..2] == packet[..2] && bytes[2] & 0x80 != 0 => Ok(bytes),
            Reply::Bytes(bytes) => Err(format!(
                "plugin/kubernetai: the module answered {} bytes that are no response to this query",
                bytes.len()
            )),
            Reply::Drop => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Reply::Fail(e) => Err(e),
        };
        let bytes = match response {
            Ok(bytes) if bytes.len() <= usize::from(max_size) => bytes,
            Ok(bytes) => {
                // The module must truncate; if it did not, the host keeps the promise for it.
                eprintln!(
                    "[ERROR] plugin/kubernetai: module answered {} bytes for a {max_size}-byte limit",
                    bytes.len()
                );
                c.servfail.fetch_add(1, Ordering::Relaxed);
                req.error(ResponseCode::ServFail)
            }
            Err(e) => {
                if block.errors {
                    let q = &req.message.queries[0];
                    eprintln!("[ERROR] plugin/errors: 2 {} {}: {e}", q.name(), q.query_type());
                }
                c.servfail.fetch_add(1, Ordering::Relaxed);
                req.error(ResponseCode::ServFail)
            }
        };
        match wire::rcode_of(&bytes) {
            Some(1) => c.formerr.fetch_add(1, Ordering::Relaxed),
            _ => c.answered.fetch_add(1, Ordering::Relaxed),
        };
        if block.log {
            let proto = if proto == Proto::Udp { "udp" } else { "tcp" };
            println!("{}", req.log_line(client, proto, packet.len(), &bytes, started.elapsed()));
        }
        Some(bytes)
    }
}

/// What a server block's chain made of a query.
enum Reply {
    Bytes(Vec<u8>),
    Drop,
    /// SERVFAIL, for this reason.
    Fail(String),
}

/// How many CNAME targets one query may chase through the chain (ExternalName to ExternalName…).
const MAX_CHASE_DEPTH: usize = 8;

impl Router {
    /// Runs `block`'s chain: the kubernetai module, then the end of the chain.
    fn chain(
        &self,
        block: &Block,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        max_size: u16,
        depth: usize,
    ) -> Reply {
        let Some(plugin) = &block.plugin else {
            return Reply::Fail("no next plugin found".to_string());
        };
        let query = wit::Query {
            packet: packet.to_vec(),
            client: client.ip().to_string(),
            client_port: client.port(),
            transport: if proto == Proto::Udp { wit::Transport::Udp } else { wit::Transport::Tcp },
            max_size,
        };
        // The instance is released before a chase runs the chain again.
        let outcome = plugin.handle(&query).map_err(|e| e.to_string());
        match outcome {
            Ok(wit::Outcome::Answer(bytes)) => Reply::Bytes(bytes),
            Ok(wit::Outcome::Chase(chase)) => Reply::Bytes(self.chase(chase, client, proto, max_size, depth)),
            Ok(wit::Outcome::Drop) => Reply::Drop,
            Ok(wit::Outcome::Next) => Reply::Fail("plugin/kubernetai: no next plugin found".to_string()),
            Err(e) => Reply::Fail(e),
        }
    }

    /// Completes an answer ending in a CNAME out of the zone: the target is resolved through the
    /// chain of the block that serves it, as CoreDNS's upstream lookup does, and its answer
    /// records are appended.
    fn chase(&self, chase: wit::Chase, client: SocketAddr, proto: Proto, max_size: u16, depth: usize) -> Vec<u8> {
        let Ok(mut resp) = Message::from_vec(&chase.response) else {
            return chase.response;
        };
        let target = chase.target.to_ascii_lowercase();
        let sub_query = Name::from_ascii(&chase.target).ok().and_then(|name| {
            let mut m = Message::new(0, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(name, RecordType::from(chase.qtype)));
            m.to_vec().ok()
        });
        if let (true, Some(packet), Some(block)) = (depth < MAX_CHASE_DEPTH, sub_query, self.block(&target))
            && let Reply::Bytes(bytes) = self.chain(block, &packet, client, proto, u16::MAX, depth + 1)
            && let Ok(sub) = Message::from_vec(&bytes)
        {
            resp.metadata.truncation |= sub.metadata.truncation;
            resp.answers.extend(sub.answers);
        }
        kubernetai_guest::handler::encode(resp, max_size)
    }
}

/// Serves UDP on `socket` until the task is dropped.
pub async fn serve_udp(socket: Arc<UdpSocket>, router: Arc<Router>) {
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems: not fatal.
                eprintln!("[WARNING] udp receive: {e}");
                continue;
            }
        };
        if let Some(answer) = router.answer(&buf[..n], peer, Proto::Udp)
            && let Err(e) = socket.send_to(&answer, peer).await
        {
            eprintln!("[WARNING] udp send to {peer}: {e}");
        }
    }
}

/// Serves TCP on `listener`: several length-framed queries per connection.
pub async fn serve_tcp(listener: TcpListener, router: Arc<Router>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let router = router.clone();
                tokio::spawn(async move { connection(stream, peer, router).await });
            }
            Err(e) => {
                eprintln!("[WARNING] tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, router: Arc<Router>) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(answer) = router.answer(&buf, peer, Proto::Tcp) else {
            continue;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
