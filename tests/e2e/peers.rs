//! Real peers for the plugin tests: dig and kdig as clients, curl for the HTTP endpoints, knotd
//! as an authoritative upstream, and a scripted upstream that records how it was asked.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record};

use crate::harness::Scratch;

/// A port free for both UDP and TCP on 127.0.0.1 right now (for peers that cannot take port 0).
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    // Below the kernel's ephemeral range (32768 and up by default): a port handed out here is
    // free until the test binds it, where one of the ephemeral range could meanwhile be taken by
    // any outgoing connection of the tests running beside it.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 1000) as u16 * 20;
    loop {
        let port = 12000 + offset.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 20000;
        let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) else { continue };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            drop(udp);
            return port;
        }
    }
}

fn run(program: &str, args: &[String]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} (scripts/peers.sh installs it): {e}"));
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// `dig @server -p port ARGS... +tries=1 +time=3`.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut all =
        vec![format!("@{}", server.ip()), "-p".into(), server.port().to_string(), "+tries=1".into(), "+time=3".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    run("dig", &all)
}

/// `kdig @server -p port ARGS... +retry=0 +time=3`.
pub fn kdig(server: SocketAddr, args: &[&str]) -> String {
    let mut all =
        vec![format!("@{}", server.ip()), "-p".into(), server.port().to_string(), "+retry=0".into(), "+time=3".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    run("kdig", &all)
}

/// `curl` a URL: the status code and the body.
pub fn curl(url: &str) -> (u16, String) {
    let out =
        run("curl", &["-s".into(), "-w".into(), "\n%{http_code}".into(), "--max-time".into(), "5".into(), url.into()]);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A metric's value from an exposition, by name and a label fragment (summed over
/// the series that match).
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Waits (up to a minute) until the metric `name` summed over the series whose labels hold
/// `labels`, read from the exposition at `url`, passes `above`; `what` names the wait.
pub fn wait_metric_above(url: &str, name: &str, labels: &str, above: f64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while metric(&curl(url).1, name, labels) <= above {
        assert!(std::time::Instant::now() < deadline, "{what}: {name}{{{labels}}} never rose");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The URL an endpoint line of the server's output names ("... on http://127.0.0.1:4567/health").
pub fn url_in(line: &str) -> String {
    line.split_whitespace().find(|w| w.starts_with("http://")).expect("a URL in the line").to_string()
}

/// knotd serving `zone` from `text` on a free port of 127.0.0.1; stopped when dropped.
pub struct Knot {
    child: Child,
    pub addr: SocketAddr,
    _dir: Scratch,
}

impl Knot {
    pub fn start(zone: &str, text: &str) -> Knot {
        let dir = Scratch::new("knot");
        let port = free_port();
        dir.write("zone", text);
        let conf = dir.write(
            "knot.conf",
            &format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\ndatabase:\n    storage: {d}\ntemplate:\n  - id: default\n    storage: {d}\n    journal-content: none\nzone:\n  - domain: {zone}\n    file: zone\n",
                d = dir.0.display()
            ),
        );
        let child = Command::new("knotd")
            .args(["-c", conf.to_str().expect("path")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("knotd (scripts/peers.sh installs it)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let knot = Knot { child, addr, _dir: dir };
        for _ in 0..100 {
            if dig(addr, &[zone, "SOA", "+short"]).contains("hostmaster") {
                return knot;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("knotd did not start on {addr}");
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scripted upstream on UDP and TCP: answers every A query with 192.0.2.1, after `delay`;
/// over UDP a name starting with "big" gets a truncated answer, over TCP twenty TXT records.
/// It counts the queries per transport.
pub struct Upstream {
    pub addr: SocketAddr,
    pub udp: Arc<AtomicUsize>,
    pub tcp: Arc<AtomicUsize>,
    /// Cleared, the upstream swallows every query (counted, never answered), as a blackholed
    /// server does; set again, it answers.
    pub answering: Arc<std::sync::atomic::AtomicBool>,
}

fn reply(query: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = q.queries.clone();
    let name = q.queries.first()?.name().clone();
    if name.to_ascii().starts_with("big") {
        if over_tcp {
            for i in 0..20 {
                m.answers.push(Record::from_rdata(name.clone(), 60, RData::TXT(TXT::new(vec![format!("{i:0>200}")]))));
            }
        } else {
            m.metadata.truncation = true;
        }
    } else {
        m.answers.push(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
    }
    m.to_vec().ok()
}

impl Upstream {
    pub fn start(delay: Duration) -> Upstream {
        let port = free_port();
        let udp_socket = UdpSocket::bind(("127.0.0.1", port)).expect("udp");
        let tcp_listener = TcpListener::bind(("127.0.0.1", port)).expect("tcp");
        let (udp, tcp) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let answering = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let count = udp.clone();
        let open = answering.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = udp_socket.recv_from(&mut buf) {
                count.fetch_add(1, Ordering::SeqCst);
                if !open.load(Ordering::SeqCst) {
                    continue;
                }
                let (socket, packet) = (udp_socket.try_clone().expect("clone"), buf[..n].to_vec());
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    if let Some(answer) = reply(&packet, false) {
                        let _ = socket.send_to(&answer, peer);
                    }
                });
            }
        });
        let count = tcp.clone();
        let open = answering.clone();
        std::thread::spawn(move || {
            for stream in tcp_listener.incoming().map_while(Result::ok) {
                let (count, open) = (count.clone(), open.clone());
                std::thread::spawn(move || {
                    if open.load(Ordering::SeqCst) {
                        serve_tcp(stream, &count, delay);
                    } else {
                        // Held open, unanswered, until the client gives up.
                        std::thread::sleep(Duration::from_secs(10));
                    }
                });
            }
        });
        Upstream { addr: ([127, 0, 0, 1], port).into(), udp, tcp, answering }
    }
}

fn serve_tcp(mut stream: TcpStream, count: &AtomicUsize, delay: Duration) {
    use std::io::{Read, Write};
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut packet).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(delay);
        let Some(answer) = reply(&packet, true) else {
            return;
        };
        let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// A deployed Corefile (port 53, default HTTP ports, in-cluster API, /kubeconfigs/dc1/config,
/// /etc/resolv.conf) made to run on a test machine: free ports, the first stanza connected to
/// `local_api`, and the files in `dir`: a kubeconfig for `dc1_api` and a resolv.conf naming
/// `upstream`. Nothing else changes.
pub fn runnable(corefile: &str, dir: &Scratch, local_api: &str, dc1_api: &str, upstream: SocketAddr) -> String {
    let kubeconfig = dir.write(
        "dc1.kubeconfig",
        &format!("apiVersion: v1\nkind: Config\nclusters:\n- name: dc1\n  cluster:\n    server: {dc1_api}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: dc1\n  context:\n    cluster: dc1\n    user: u\n"),
    );
    // A resolv.conf with a port after the address: tests cannot take port 53.
    let resolv = dir.write("resolv.conf", &format!("search example.net\nnameserver {upstream}\n"));
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    corefile
        .replace(".:53 {", ".:0 {")
        .replace("health {", "health 127.0.0.1:0 {")
        .replace("    ready\n", "    ready 127.0.0.1:0\n")
        .replace("prometheus :9153", "prometheus 127.0.0.1:0")
        .replace("/kubeconfigs/dc1/config", &path(&kubeconfig))
        .replace("/etc/resolv.conf", &path(&resolv))
        .replacen(
            "    kubernetai cluster.local in-addr.arpa ip6.arpa {\n",
            &format!("    kubernetai cluster.local in-addr.arpa ip6.arpa {{\n        endpoint {local_api}\n"),
            1,
        )
}

/// `secs` since the epoch as Kubernetes writes a timestamp: `2026-11-25T23:36:13Z`.
pub fn rfc3339(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // The civil date of a day count (Howard Hinnant's algorithm), March-based years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}
