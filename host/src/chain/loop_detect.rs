//! The `loop` plugin: at startup the server sends itself an HINFO query for a random name; if
//! that query comes back through the chain more than twice, queries are forwarded in a circle
//! and the server stops, as CoreDNS does, instead of burning CPU and upstream capacity.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as Question};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use futures::future::BoxFuture;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

/// How long startup keeps sending the probe until one gets any answer.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);
/// After an answer, the probe name stays watched this long before the plugin steps aside.
const LINGER: Duration = Duration::from_secs(2);

pub struct LoopDetect {
    zone: String,
    /// The probe name, lowercase, fully qualified.
    qname: String,
    seen: AtomicU32,
    disabled: AtomicBool,
    /// Where the probe was sent, for the fatal message.
    address: Mutex<String>,
}

pub fn parse(d: &Directive) -> Result<(), Error> {
    if !d.args.is_empty() || d.block.is_some() {
        return Err(d.error("loop: takes no arguments"));
    }
    Ok(())
}

impl LoopDetect {
    pub fn new(zone: &str) -> Self {
        // The root zone is "." and the probe name must not end in "..".
        let qname =
            format!("{}.{}.{}", crate::random::next() >> 1, crate::random::next() >> 1, zone.trim_start_matches('.'));
        LoopDetect {
            zone: zone.to_string(),
            qname,
            seen: AtomicU32::new(0),
            disabled: AtomicBool::new(false),
            address: Mutex::new(String::new()),
        }
    }

    pub async fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        if q.qtype == RecordType::HINFO && !self.disabled.load(Ordering::Acquire) && q.qname == self.qname {
            let seen = self.seen.fetch_add(1, Ordering::AcqRel) + 1;
            if seen > 2 {
                let address = self.address.lock().map(|a| a.clone()).unwrap_or_default();
                println!(
                    "[FATAL] plugin/loop: Loop ({} -> {address}) detected for zone {:?}, see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO {}\"",
                    q.client, self.zone, self.qname
                );
                std::process::exit(1);
            }
        }
        next.run(q).await
    }

    /// Sends the probe to `addr` (the block's first listening address) until something answers,
    /// then stops watching once the probe has had time to come around again.
    pub async fn probe(self: Arc<Self>, addr: SocketAddr) {
        if let Ok(mut a) = self.address.lock() {
            *a = addr.to_string();
        }
        let deadline = Instant::now() + PROBE_DEADLINE;
        while Instant::now() < deadline {
            if self.exchange(addr).await.is_ok() {
                break;
            }
            self.seen.store(0, Ordering::Release);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::time::sleep(LINGER).await;
        self.disabled.store(true, Ordering::Release);
    }

    async fn exchange(&self, addr: SocketAddr) -> std::io::Result<()> {
        let name = Name::from_ascii(&self.qname).map_err(std::io::Error::other)?;
        let mut m = Message::new(crate::random::next() as u16, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(name, RecordType::HINFO));
        let packet = m.to_vec().map_err(std::io::Error::other)?;
        let local: SocketAddr =
            if addr.is_ipv4() { ([127, 0, 0, 1], 0).into() } else { (std::net::Ipv6Addr::LOCALHOST, 0).into() };
        let socket = UdpSocket::bind(local).await?;
        socket.send_to(&packet, addr).await?;
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "probe timed out"))??;
        Ok(())
    }
}

/// Reads `loop`.
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    parse(d)?;
    Ok(Arc::new(Loop))
}

/// `loop`, read: each start of the block gets a detector with a probe name of its own.
#[derive(Debug)]
pub struct Loop;

impl Setup for Loop {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        let zone = block.zones.first().ok_or("loop: a block without zones")?;
        Ok(Arc::new(Probed(Arc::new(LoopDetect::new(zone)))))
    }
}

/// The chain's hold on a detector, whose probe outlives the call that starts it.
struct Probed(Arc<LoopDetect>);

impl Plugin for Probed {
    fn name(&self) -> &'static str {
        "loop"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.0.serve(next, q))
    }

    fn listening(&self, addr: std::net::SocketAddr) {
        tokio::spawn(self.0.clone().probe(addr));
    }
}
