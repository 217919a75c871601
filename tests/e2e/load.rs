//! A query load for fault and soak tests, in the manner of dnsperf: several client threads, each
//! asking one name after another over UDP (and one over TCP, on connections it reuses), for as
//! long as the test runs. Unlike dnsperf it checks every answer against what the test allows and
//! accounts for every query: a lost UDP query (no answer within the timeout) is a failure, not a
//! retry.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::apiserver::FakeApi;
use crate::harness;
use crate::live::{namespace, service};

/// How long a UDP query may wait for its answer before it counts as lost: far above any answer
/// time of a healthy server, so a loss is a real loss.
const LOST_AFTER: Duration = Duration::from_secs(2);
/// Queries sent on one TCP connection before the client opens a new one.
const TCP_REUSE: usize = 200;

/// One name to ask and the A answers allowed for it (any one of the sets, as sorted data).
#[derive(Clone)]
pub struct Expect {
    pub name: String,
    pub allowed: Vec<Vec<String>>,
}

impl Expect {
    pub fn new(name: &str, allowed: &[&[&str]]) -> Self {
        let allowed = allowed
            .iter()
            .map(|set| {
                let mut v: Vec<String> = set.iter().map(|s| s.to_string()).collect();
                v.sort();
                v
            })
            .collect();
        Expect { name: name.to_string(), allowed }
    }

    fn check(&self, id: u16, bytes: &[u8]) -> Result<(), String> {
        let m = Message::from_vec(bytes).map_err(|e| format!("{}: unparseable answer: {e}", self.name))?;
        if m.metadata.id != id {
            return Err(format!("{}: answer id {} for query {id}", self.name, m.metadata.id));
        }
        let mut got: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        got.sort();
        if m.metadata.response_code.low() != 0 || !self.allowed.contains(&got) {
            return Err(format!("{}: {:?} {got:?}", self.name, m.metadata.response_code));
        }
        Ok(())
    }
}

/// Namespace `ns` and `n` ClusterIP services `{prefix}-{i}` (10.96.0.1 up) on `api`, with what
/// a load should get for each: the stable names a fault or soak test asks throughout.
pub fn stable_services(api: &FakeApi, ns: &str, prefix: &str, n: usize) -> Vec<Expect> {
    api.apply(namespace(ns));
    (0..n)
        .map(|i| {
            let ip = format!("10.96.0.{}", i + 1);
            api.apply(service(ns, &format!("{prefix}-{i}"), &ip, serde_json::json!({})));
            Expect::new(&format!("{prefix}-{i}.{ns}.svc.cluster.local."), &[&[ip.as_str()]])
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    lost: AtomicU64,
    wrong: AtomicU64,
    /// The first few failures, for the assertion message.
    samples: Mutex<Vec<String>>,
    /// The slowest answer, in microseconds.
    slowest_us: AtomicU64,
}

impl Tally {
    fn fail(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().expect("samples");
        if s.len() < 10 {
            s.push(what);
        }
    }
}

/// A running load; [`Load::finish`] stops it and says what happened.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    clients: Vec<JoinHandle<()>>,
    started: Instant,
}

/// What a load saw.
#[derive(Debug)]
pub struct Report {
    pub answered: u64,
    pub lost: u64,
    pub wrong: u64,
    pub samples: Vec<String>,
    pub seconds: f64,
    pub slowest: Duration,
}

impl Report {
    pub fn qps(&self) -> f64 {
        self.answered as f64 / self.seconds
    }

    /// Panics unless every query was answered, and answered as allowed.
    pub fn assert_clean(&self) {
        assert!(self.answered > 0, "no query was answered");
        assert!(
            self.lost == 0 && self.wrong == 0,
            "{} lost and {} wrong of {} answered; first: {:?}",
            self.lost,
            self.wrong,
            self.answered,
            self.samples
        );
    }
}

impl Load {
    /// Starts `udp_clients` UDP threads and one TCP thread asking `names` round robin.
    pub fn start(addr: SocketAddr, names: Vec<Expect>, udp_clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let names = Arc::new(names);
        let mut clients = Vec::new();
        for c in 0..=udp_clients {
            let (stop, tally, names) = (stop.clone(), tally.clone(), names.clone());
            let tcp = c == udp_clients;
            clients.push(std::thread::spawn(move || client(addr, &names, tcp, c, &stop, &tally)));
        }
        Load { stop, tally, clients, started: Instant::now() }
    }

    /// Answers so far.
    pub fn answered(&self) -> u64 {
        self.tally.answered.load(Ordering::Relaxed)
    }

    pub fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            let _ = c.join();
        }
        let t = &self.tally;
        Report {
            answered: t.answered.load(Ordering::Relaxed),
            lost: t.lost.load(Ordering::Relaxed),
            wrong: t.wrong.load(Ordering::Relaxed),
            samples: t.samples.lock().expect("samples").clone(),
            seconds: self.started.elapsed().as_secs_f64(),
            slowest: Duration::from_micros(t.slowest_us.load(Ordering::Relaxed)),
        }
    }
}

fn client(addr: SocketAddr, names: &[Expect], tcp: bool, seed: usize, stop: &AtomicBool, tally: &Tally) {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    udp.set_read_timeout(Some(LOST_AFTER)).expect("timeout");
    let mut conn: Option<(TcpStream, usize)> = None;
    let mut id = (seed as u16).wrapping_mul(7919);
    let mut buf = vec![0u8; 65535];
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        id = id.wrapping_add(1);
        let want = &names[i % names.len()];
        let packet = harness::query(&want.name, RecordType::A, id, Some(1232));
        let asked = Instant::now();
        let answer = if tcp {
            tcp_ask(addr, &mut conn, &packet)
        } else {
            udp.send_to(&packet, addr).ok().and_then(|_| receive(&udp, id, &mut buf))
        };
        let took = asked.elapsed();
        tally.slowest_us.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
        match answer {
            None => {
                tally.fail(&tally.lost, format!("{}: no answer over {}", want.name, if tcp { "tcp" } else { "udp" }))
            }
            Some(bytes) => match want.check(id, &bytes) {
                Ok(()) => {
                    tally.answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tally.fail(&tally.wrong, e),
            },
        }
    }
}

/// The answer to query `id`, skipping late answers to earlier ones.
fn receive(sock: &UdpSocket, id: u16, buf: &mut [u8]) -> Option<Vec<u8>> {
    let deadline = Instant::now() + LOST_AFTER;
    while Instant::now() < deadline {
        let n = sock.recv(buf).ok()?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// One query over the current TCP connection, opening a new one when it is used up or the
/// server closed it (the server bounds queries per connection).
fn tcp_ask(addr: SocketAddr, conn: &mut Option<(TcpStream, usize)>, packet: &[u8]) -> Option<Vec<u8>> {
    for _ in 0..2 {
        if conn.as_ref().is_none_or(|(_, used)| *used >= TCP_REUSE) {
            let stream = TcpStream::connect(addr).ok()?;
            stream.set_read_timeout(Some(LOST_AFTER)).ok()?;
            *conn = Some((stream, 0));
        }
        let (stream, used) = conn.as_mut()?;
        *used += 1;
        if let Some(answer) = harness::ask_tcp(stream, packet) {
            return Some(answer);
        }
        // The connection went away between queries: one retry on a new one.
        *conn = None;
    }
    None
}
