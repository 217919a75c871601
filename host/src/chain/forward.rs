//! The `forward` plugin: queries under its zone go to upstream resolvers, over UDP (retried over
//! TCP when a TCP client's answer came back truncated), TCP, or TLS (`tls://` upstreams, DNS over
//! TLS with rustls), picked by policy among the healthy ones; an upstream that fails is
//! health-checked until it answers again and counts as down after `max_fails` failures, as
//! CoreDNS's forward does. TCP and TLS connections are kept and reused until idle for `expire`
//! (10 s), as CoreDNS's connection cache does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use futures::future::BoxFuture;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::args::parse_duration;
use crate::corefile::{Directive, Error, Token};
use crate::dns::{Proto, Query, Reply};
use crate::observe::debug;
use crate::observe::metrics::registry;

/// CoreDNS's limit on upstreams per forward.
const MAX_UPSTREAMS: usize = 15;
const DEFAULT_MAX_FAILS: u32 = 2;
const DEFAULT_HEALTH_CHECK: Duration = Duration::from_millis(500);
/// How long one exchange with one upstream may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a query may spend trying upstreams in all.
const QUERY_DEADLINE: Duration = Duration::from_secs(5);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// CoreDNS's default for how long an idle upstream connection is kept.
const DEFAULT_EXPIRE: Duration = Duration::from_secs(10);
const BY: &str = "forward";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Random,
    RoundRobin,
    Sequential,
}

struct Upstream {
    addr: SocketAddr,
    /// "127.0.0.1:53": the `to` label of the proxy metrics.
    label: String,
    fails: AtomicU32,
    checking: AtomicBool,
    /// A `tls://` upstream: every exchange over TLS.
    tls: bool,
    /// Connections kept for reuse, with when each was last used.
    idle: std::sync::Mutex<Vec<(Conn, Instant)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("addr", &self.addr).field("tls", &self.tls).finish()
    }
}

/// A stream connection to an upstream: TCP, or TLS over TCP.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// One framed exchange (2-byte length, message) on this connection.
    async fn exchange(&mut self, packet: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Conn::Tcp(s) => framed(s, packet).await,
            Conn::Tls(s) => framed(s.as_mut(), packet).await,
        }
    }
}

async fn framed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    packet: &[u8],
) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(packet.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// How TLS upstreams are reached: the `tls` files' configuration and `tls_servername`.
#[derive(Clone)]
struct Tls {
    /// None until a `tls` option or a `tls://` upstream needs it (the system's roots are read
    /// only then, not for every plain forward).
    config: Option<Arc<rustls::ClientConfig>>,
    /// None: the upstream's address is the name its certificate must carry.
    server_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("server_name", &self.server_name).finish()
    }
}

/// The TLS client of `tls [CERT KEY] [CA]`: the CA file (or the system's roots) verifies the
/// upstream; a certificate and key authenticate this server to it.
fn tls_config(files: &[&str]) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (client, ca) = match files {
        [] => (None, None),
        [ca] => (None, Some(*ca)),
        [cert, key] => (Some((*cert, *key)), None),
        [cert, key, ca] => (Some((*cert, *key)), Some(*ca)),
        _ => return Err("takes at most CERT KEY CA".into()),
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("reading {ca}: {e}"))? {
                roots.add(cert.map_err(|e| format!("reading {ca}: {e}"))?).map_err(|e| format!("{ca}: {e}"))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    Ok(match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("reading {cert}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("reading {cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading {key}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| e.to_string())?
        }
    })
}

#[derive(Debug)]
pub struct Forward {
    from: String,
    except: Vec<String>,
    upstreams: Vec<Arc<Upstream>>,
    policy: Policy,
    force_tcp: bool,
    prefer_udp: bool,
    max_fails: u32,
    health_check: Duration,
    health_rd: bool,
    health_domain: Name,
    max_concurrent: usize,
    /// `next`: answers with these rcodes go to the next plugin instead.
    next_rcodes: Vec<ResponseCode>,
    failfast: bool,
    inflight: AtomicUsize,
    turn: AtomicUsize,
    /// Kept connections idle longer than this are closed.
    expire: Duration,
    tls: Tls,
}

/// The nameservers a resolv.conf-style file lists.
fn resolv_conf(path: &str, t: &Token) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::token(t, format!("forward: reading {path}: {e}")))?;
    let servers: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().collect::<Vec<_>>().get(..2).map(|w| (w[0].to_string(), w[1].to_string())))
        .filter(|(k, _)| k == "nameserver")
        .map(|(_, v)| v)
        .collect();
    if servers.is_empty() {
        return Err(Error::token(t, format!("forward: no nameservers found in {path}")));
    }
    Ok(servers)
}

/// `IP`, `IP:port`, `[IPv6]:port`, `dns://…` (port 53 by default), `tls://…` (DNS over TLS,
/// port 853 by default) → a socket address, and whether it is reached over TLS.
fn upstream_addr(text: &str, t: &Token) -> Result<(SocketAddr, bool), Error> {
    let (bare, tls) = match text.split_once("://") {
        Some(("dns", rest)) => (rest, false),
        Some(("tls", rest)) => (rest, true),
        Some((scheme, _)) => {
            return Err(Error::token(
                t,
                format!("forward: {scheme}:// upstreams are not supported; use dns://, tls:// or an address"),
            ));
        }
        None => (text, false),
    };
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, if tls { 853 } else { 53 }), tls));
    }
    let addr = bare
        .parse::<SocketAddr>()
        .map_err(|_| Error::token(t, format!("forward: not an IP address or file: {text:?}")))?;
    Ok((addr, tls))
}

impl Forward {
    /// Parses `forward FROM TO... { ... }` with every option of CoreDNS's forward but TLS.
    pub fn parse(d: &Directive) -> Result<Self, Error> {
        let [from, to @ ..] = d.args.as_slice() else {
            return Err(d.error("forward: needs FROM and at least one TO"));
        };
        if to.is_empty() {
            return Err(d.error("forward: needs at least one TO"));
        }
        let mut upstreams = Vec::new();
        for t in to {
            let texts = if t.text.starts_with('/') || std::path::Path::new(&t.text).is_file() {
                resolv_conf(&t.text, t)?
            } else {
                vec![t.text.clone()]
            };
            for text in texts {
                let (addr, tls) = upstream_addr(&text, t)?;
                upstreams.push(Arc::new(Upstream {
                    addr,
                    label: addr.to_string(),
                    fails: AtomicU32::new(0),
                    checking: AtomicBool::new(false),
                    tls,
                    idle: std::sync::Mutex::new(Vec::new()),
                }));
            }
        }
        if upstreams.len() > MAX_UPSTREAMS {
            return Err(d.error(format!("forward: more than {MAX_UPSTREAMS} TOs configured: {}", upstreams.len())));
        }
        let mut f = Forward {
            from: crate::corefile::args::zone_of(from)?,
            except: vec![],
            upstreams,
            policy: Policy::Random,
            force_tcp: false,
            prefer_udp: false,
            max_fails: DEFAULT_MAX_FAILS,
            health_check: DEFAULT_HEALTH_CHECK,
            health_rd: true,
            health_domain: Name::root(),
            max_concurrent: 0,
            next_rcodes: vec![],
            failfast: false,
            inflight: AtomicUsize::new(0),
            turn: AtomicUsize::new(0),
            expire: DEFAULT_EXPIRE,
            tls: Tls { config: None, server_name: None },
        };
        for opt in d.block.as_deref().unwrap_or_default() {
            let a = opt.arg_texts();
            let err = |m: String| opt.error(format!("forward: {} {m}", opt.name.text));
            let one = || if a.len() == 1 { Ok(a[0]) } else { Err(err("takes one argument".into())) };
            match opt.name.text.as_str() {
                "except" => {
                    if a.is_empty() {
                        return Err(err("needs at least one name".into()));
                    }
                    f.except = opt.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?;
                }
                "force_tcp" => f.force_tcp = true,
                "prefer_udp" => f.prefer_udp = true,
                "expire" => {
                    f.expire = parse_duration(one()?).ok_or_else(|| err(format!("invalid duration {:?}", a[0])))?;
                }
                "max_fails" => f.max_fails = one()?.parse().map_err(|_| err(format!("{:?} is not a number", a[0])))?,
                "health_check" => {
                    let [d, rest @ ..] = a.as_slice() else {
                        return Err(err("takes DURATION [no_rec] [domain FQDN]".into()));
                    };
                    f.health_check = parse_duration(d).ok_or_else(|| err(format!("invalid duration {d:?}")))?;
                    let mut rest = rest.iter();
                    while let Some(word) = rest.next() {
                        match *word {
                            "no_rec" => f.health_rd = false,
                            "domain" => {
                                let name = rest.next().ok_or_else(|| err("domain needs a name".into()))?;
                                f.health_domain = Name::from_ascii(kubernetai_guest::name::normalize_zone(name))
                                    .map_err(|_| err(format!("invalid domain {name:?}")))?;
                            }
                            other => return Err(err(format!("unknown argument {other:?}"))),
                        }
                    }
                }
                "policy" => {
                    f.policy = match one()? {
                        "random" => Policy::Random,
                        "round_robin" => Policy::RoundRobin,
                        "sequential" => Policy::Sequential,
                        other => return Err(err(format!("unknown policy {other:?}"))),
                    }
                }
                "max_concurrent" => {
                    f.max_concurrent = one()?.parse().map_err(|_| err(format!("{:?} is not a number", a[0])))?;
                }
                "next" => {
                    if a.is_empty() {
                        return Err(err("needs at least one rcode".into()));
                    }
                    for r in &a {
                        f.next_rcodes
                            .push(crate::dns::rcode_named(r).ok_or_else(|| err(format!("unknown rcode {r:?}")))?);
                    }
                }
                "failfast_all_unhealthy_upstreams" => f.failfast = true,
                "tls" => f.tls.config = Some(Arc::new(tls_config(&a).map_err(err)?)),
                "tls_servername" => {
                    let name = rustls::pki_types::ServerName::try_from(one()?.to_string())
                        .map_err(|e| err(format!("invalid name {:?}: {e}", a[0])))?;
                    f.tls.server_name = Some(name);
                }
                other => return Err(opt.error(format!("forward: unknown property '{other}'"))),
            }
        }
        if f.force_tcp && f.prefer_udp {
            return Err(d.error("forward: force_tcp and prefer_udp cannot both be set"));
        }
        if f.tls.config.is_none() && f.upstreams.iter().any(|u| u.tls) {
            f.tls.config = Some(Arc::new(tls_config(&[]).map_err(|e| d.error(format!("forward: tls: {e}")))?));
        }
        Ok(f)
    }

    fn handles(&self, qname: &str) -> bool {
        kubernetai_guest::name::is_subdomain(qname, &self.from)
            && !self.except.iter().any(|e| kubernetai_guest::name::is_subdomain(qname, e))
    }

    fn down(&self, u: &Upstream) -> bool {
        self.max_fails != 0 && u.fails.load(Ordering::Relaxed) > self.max_fails
    }

    /// The upstreams in the order this query tries them.
    fn order(&self) -> Vec<Arc<Upstream>> {
        let mut list = self.upstreams.clone();
        match self.policy {
            Policy::Sequential => {}
            Policy::RoundRobin => {
                let n = list.len().max(1);
                list.rotate_left(self.turn.fetch_add(1, Ordering::Relaxed) % n);
            }
            Policy::Random => {
                for i in (1..list.len()).rev() {
                    list.swap(i, crate::random::below(i as u64 + 1) as usize);
                }
            }
        }
        list
    }

    pub async fn serve<'a>(self: &'a Arc<Self>, next: Next<'a>, q: &'a Query) -> Reply {
        if !self.handles(&q.qname) {
            return next.run(q).await;
        }
        let inflight = self.inflight.fetch_add(1, Ordering::AcqRel);
        let _release = Release(&self.inflight);
        if self.max_concurrent != 0 && inflight >= self.max_concurrent {
            registry().inc("coredns_forward_max_concurrent_rejects_total", &[]);
            return Reply::Fail {
                rcode: ResponseCode::Refused,
                reason: "concurrent queries exceeded maximum".into(),
                by: BY,
            };
        }
        let deadline = Instant::now() + QUERY_DEADLINE;
        let mut order = self.order();
        let healthy: Vec<Arc<Upstream>> = order.iter().filter(|u| !self.down(u)).cloned().collect();
        if healthy.is_empty() {
            registry().inc("coredns_forward_healthcheck_broken_total", &[]);
            if self.failfast {
                return Reply::servfail(BY, "no healthy upstream");
            }
            // All down: try the first in policy order anyway, as CoreDNS does.
            order.truncate(1);
        } else {
            order = healthy;
        }
        let mut last_error = "no upstream tried".to_string();
        for u in order {
            if Instant::now() >= deadline {
                break;
            }
            let started = Instant::now();
            match self.exchange(&u, q).await {
                Ok(bytes) => {
                    u.fails.store(0, Ordering::Relaxed);
                    let rc = bytes.get(3).map_or(2, |b| b & 0x0f);
                    registry().observe(
                        "coredns_proxy_request_duration_seconds",
                        &["forward", &u.label, crate::dns::rcode_name(rc)],
                        started.elapsed().as_secs_f64(),
                    );
                    if self.next_rcodes.iter().any(|r| r.low() == rc) {
                        return next.run(q).await;
                    }
                    return Reply::Answer { bytes, by: BY };
                }
                Err(e) => {
                    debug::line(BY, || format!("{} {}: upstream {}: {e}", q.qname, q.qtype, u.label));
                    last_error = format!("{}: {e}", u.label);
                    u.fails.fetch_add(1, Ordering::Relaxed);
                    self.start_health_check(&u);
                }
            }
        }
        Reply::servfail(BY, last_error)
    }

    /// One exchange with `u`: UDP or TCP as the options and the client's transport decide, and
    /// over TCP again when prefer_udp got a truncated answer for a TCP client.
    async fn exchange(&self, u: &Upstream, q: &Query) -> std::io::Result<Vec<u8>> {
        let tcp = u.tls || self.force_tcp || (q.proto == Proto::Tcp && !self.prefer_udp);
        let id = crate::random::next() as u16;
        let mut packet = q.packet.clone();
        packet[..2].copy_from_slice(&id.to_be_bytes());
        let mut answer =
            if tcp { self.stream_exchange(u, &packet).await? } else { udp_exchange(u.addr, &packet, id).await? };
        let truncated = answer.get(2).is_some_and(|b| b & 0x02 != 0);
        if truncated && !tcp && q.proto == Proto::Tcp {
            answer = self.stream_exchange(u, &packet).await?;
        }
        if !answers_question(&answer, id, q) {
            return Err(std::io::Error::other("the upstream's answer does not match the question"));
        }
        answer[..2].copy_from_slice(&q.packet[..2]);
        Ok(answer)
    }

    /// One exchange over a kept connection to `u` when one is fresh (a kept one that fails is
    /// dropped and a new one tried), else a new one; the connection is kept afterwards.
    async fn stream_exchange(&self, u: &Upstream, packet: &[u8]) -> std::io::Result<Vec<u8>> {
        let exchange = async {
            let kept = {
                let mut idle = u.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.retain(|(_, used)| used.elapsed() < self.expire);
                idle.pop()
            };
            if let Some((mut conn, _)) = kept
                && let Ok(answer) = conn.exchange(packet).await
            {
                self.keep(u, conn);
                return Ok(answer);
            }
            let mut conn = connect(u, &self.tls).await?;
            let answer = conn.exchange(packet).await?;
            self.keep(u, conn);
            Ok::<_, std::io::Error>(answer)
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "i/o timeout"))?
    }

    fn keep(&self, u: &Upstream, conn: Conn) {
        if !self.expire.is_zero() {
            u.idle.lock().unwrap_or_else(|p| p.into_inner()).push((conn, Instant::now()));
        }
    }

    /// Probes `u` until it answers, marking it up again; one probe loop per upstream.
    fn start_health_check(self: &Forward, u: &Arc<Upstream>) {
        if u.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let (u, interval, rd, domain, tcp, tls) = (
            u.clone(),
            self.health_check,
            self.health_rd,
            self.health_domain.clone(),
            self.force_tcp,
            self.tls.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if probe(&u, rd, &domain, tcp, &tls).await {
                    debug::line(BY, || format!("health check of {} answered: up", u.label));
                    u.fails.store(0, Ordering::Relaxed);
                    u.checking.store(false, Ordering::Release);
                    return;
                }
                registry().inc("coredns_proxy_healthcheck_failures_total", &["forward", &u.label]);
                debug::line(BY, || format!("health check of {} failed", u.label));
                u.fails.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

struct Release<'a>(&'a AtomicUsize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `answer` is a response to `q` sent with `id`: that id, and the same question if it
/// carries one.
fn answers_question(answer: &[u8], id: u16, q: &Query) -> bool {
    if answer.len() < 12 || answer[..2] != id.to_be_bytes() || answer[2] & 0x80 == 0 {
        return false;
    }
    let Ok(a) = Message::from_vec(answer) else {
        return false;
    };
    a.queries.first().is_none_or(|x| {
        x.query_type() == q.qtype
            && x.name().to_ascii().to_ascii_lowercase().trim_end_matches('.') == q.qname.trim_end_matches('.')
    })
}

async fn udp_exchange(addr: SocketAddr, packet: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr =
        if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    socket.send(packet).await?;
    let mut buf = vec![0u8; 65535];
    let wait = async {
        loop {
            let n = socket.recv(&mut buf).await?;
            // Anything else arriving on this port is no answer of ours: keep waiting.
            if n >= 12 && buf[..2] == id.to_be_bytes() {
                return Ok::<_, std::io::Error>(buf[..n].to_vec());
            }
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, wait)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "i/o timeout"))?
}

/// One query and its answer over a new TCP connection to `addr`, framed as every DNS stream is.
async fn tcp_exchange(addr: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let exchange = async { framed(&mut TcpStream::connect(addr).await?, packet).await };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "i/o timeout"))?
}

/// A new connection to `u`: TCP, or TLS for a `tls://` upstream.
async fn connect(u: &Upstream, tls: &Tls) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(u.addr).await?;
    if !u.tls {
        return Ok(Conn::Tcp(tcp));
    }
    let name = tls.server_name.clone().unwrap_or_else(|| rustls::pki_types::ServerName::from(u.addr.ip()));
    let config = tls.config.clone().ok_or_else(|| std::io::Error::other("no TLS configuration"))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    Ok(Conn::Tls(Box::new(connector.connect(name, tcp).await?)))
}

/// A health probe: `<domain> IN NS`; any answer at all means the upstream is up.
async fn probe(u: &Upstream, rd: bool, domain: &Name, tcp: bool, tls: &Tls) -> bool {
    let addr = u.addr;
    let id = crate::random::next() as u16;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    m.add_query(Question::query(domain.clone(), RecordType::NS));
    let Ok(packet) = m.to_vec() else {
        return false;
    };
    let exchange = async {
        if u.tls {
            connect(u, tls).await?.exchange(&packet).await
        } else if tcp {
            tcp_exchange(addr, &packet).await
        } else {
            udp_exchange(addr, &packet, id).await
        }
    };
    matches!(tokio::time::timeout(HEALTH_TIMEOUT, exchange).await, Ok(Ok(_)))
}

/// Reads one `forward`.
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    Ok(Arc::new(Forwarding(Arc::new(Forward::parse(d)?))))
}

/// The chain's hold on a forwarder: its upstreams, their health checks and connections are
/// shared by every start of the block from the same Corefile.
#[derive(Clone, Debug)]
pub struct Forwarding(Arc<Forward>);

impl Plugin for Forwarding {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.0.serve(next, q))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn forward(body: &str) -> Result<Forward, String> {
        let blocks = crate::corefile::parse(&format!(". {{\n {body}\n}}\n"), Path::new("Corefile"))
            .map_err(|e| e.to_string())?;
        Forward::parse(&blocks[0].directives[0]).map_err(|e| e.to_string())
    }

    #[test]
    fn upstreams_come_from_addresses_and_resolv_conf_files() {
        let dir = std::env::temp_dir().join(format!("kubernetai-forward-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            "# comment\nsearch a.example\nnameserver 10.0.0.53\nnameserver fd00::53\noptions ndots:5\n",
        )
        .unwrap();
        let f = forward(&format!("forward . {} dns://9.9.9.9:5353 [::1]:53 1.1.1.1", resolv.display())).unwrap();
        let addrs: Vec<String> = f.upstreams.iter().map(|u| u.label.clone()).collect();
        assert_eq!(addrs, ["10.0.0.53:53", "[fd00::53]:53", "9.9.9.9:5353", "[::1]:53", "1.1.1.1:53"]);
        assert_eq!((f.policy, f.max_fails, f.health_check), (Policy::Random, 2, Duration::from_millis(500)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_under_from_and_outside_except_are_forwarded() {
        let f = forward("forward example.org 127.0.0.1 {\n  except internal.example.org\n }").unwrap();
        assert!(f.handles("www.example.org."));
        assert!(!f.handles("db.internal.example.org."));
        assert!(!f.handles("example.net."));
    }

    #[test]
    fn round_robin_rotates_and_sequential_keeps_order() {
        let f = forward("forward . 10.0.0.1 10.0.0.2 10.0.0.3 {\n  policy round_robin\n }").unwrap();
        let firsts: Vec<String> = (0..3).map(|_| f.order()[0].label.clone()).collect();
        assert_eq!(firsts, ["10.0.0.1:53", "10.0.0.2:53", "10.0.0.3:53"]);
        let f = forward("forward . 10.0.0.1 10.0.0.2 {\n  policy sequential\n }").unwrap();
        assert_eq!(f.order()[0].label, "10.0.0.1:53");
        assert_eq!(f.order()[0].label, "10.0.0.1:53");
    }
}
