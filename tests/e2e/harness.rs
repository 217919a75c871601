//! Starting the real `kubernetai` binary on a free port with a Corefile written for the test,
//! and talking DNS to it over real UDP and TCP sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long a test waits for the server to start or answer before failing.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kubernetai")
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A manifest of one namespace, `shop`, and one service, `web`, at `ip`: a cluster a test changes.
pub fn web_cluster(ip: &str) -> String {
    format!(
        r#"{{"kind":"List","items":[{{"kind":"Namespace","metadata":{{"name":"shop"}}}},{{"kind":"Service","metadata":{{"name":"web","namespace":"shop"}},"spec":{{"clusterIP":"{ip}"}}}}]}}"#
    )
}

/// Replaces `path` whole (a temporary file renamed over it), as an operator's tooling does: a
/// server polling the file never reads half of it.
pub fn put(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).expect("write the staged file");
    std::fs::rename(&staged, path).expect("rename it into place");
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Unique within the run: tests run in parallel, and some (knot peers) share a name.
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kubernetai-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// What it said before it listened (see `said_at_start`).
    early: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Server {
    /// Starts the binary on `corefile` with `-dns.port 0` and waits until it listens.
    pub fn start(corefile: &Path) -> Server {
        Server::start_with(corefile, &[])
    }

    /// Starts the binary with extra command-line arguments.
    pub fn start_with(corefile: &Path, extra: &[&str]) -> Server {
        Server::start_env(corefile, extra, &[])
    }

    /// Starts the binary with extra arguments and environment variables.
    pub fn start_env(corefile: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_from(Path::new(binary()), corefile, extra, env)
    }

    /// Starts the binary as in a pod: a service-account directory under `dir` (its `ca.crt` and
    /// `token`) and the environment pointing at the API server `api`.
    pub fn start_in_cluster(corefile: &Path, dir: &Scratch, api: SocketAddr, token: &str) -> Server {
        let account = dir.0.join("serviceaccount");
        std::fs::create_dir_all(&account).expect("dir");
        std::fs::copy(dir.0.join("ca.crt"), account.join("ca.crt")).expect("ca");
        std::fs::write(account.join("token"), token).expect("token");
        let port = api.port().to_string();
        let env = [
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", port.as_str()),
            ("KUBERNETAI_SERVICE_ACCOUNT_DIR", account.to_str().expect("utf-8")),
        ];
        Server::start_env(corefile, &[], &env)
    }

    /// Starts another copy of the binary (an installed one).
    pub fn start_from(binary: &Path, corefile: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary)
            .args(["-conf", corefile.to_str().expect("utf-8 path"), "-dns.port", "0", "-admin", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubernetai");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            let Ok(line) = lines.recv_timeout(PATIENCE) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start; it said:\n{}", seen.join("\n"));
            };
            if let Some(addr) = line.strip_prefix("[INFO] listening on udp+tcp ") {
                let addr: SocketAddr = addr.parse().expect("listen address");
                return Server { child, addr, lines, early: std::sync::Mutex::new(seen.into()) };
            }
            seen.push(line);
        }
    }

    /// The first line it said before it listened that contains `needle`.
    pub fn said_at_start(&self, needle: &str) -> Option<String> {
        self.early.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|l| l.contains(needle)).cloned()
    }

    /// Waits for a line of output containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no output line containing {needle:?}"),
            }
        }
    }

    /// The lines of output not yet read.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Every line of output up to and including the first containing `needle`.
    pub fn lines_until(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no output line containing {needle:?}; saw:\n{}", seen.join("\n")),
            }
        }
    }

    /// Waits up to `within` for the process to exit; its status, if it did.
    pub fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The server's resident memory now, in bytes (Linux /proc).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok());
        kib.map_or(0, |k| k * 1024)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the server a signal (`HUP`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
    }

    /// Stops the server with SIGTERM and returns its shutdown summary line.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let line = self.wait_for("shutting down");
        let _ = self.child.wait();
        line
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query packet; `edns` gives the advertised UDP payload size.
pub fn query(name: &str, qtype: RecordType, id: u16, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().expect("encode query")
}

/// Sends `packet` over UDP and returns the raw answer, or None on timeout.
pub fn udp_raw(addr: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(wait)).expect("timeout");
    sock.send_to(packet, addr).expect("send");
    let mut buf = vec![0u8; 65535];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

pub fn udp(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    udp_raw(addr, packet, PATIENCE).expect("an answer over udp")
}

/// Sends each packet over one TCP connection, in order, and returns the answers.
pub fn tcp(addr: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    packets.iter().map(|p| ask_tcp(&mut conn, p).expect("an answer over tcp")).collect()
}

/// One length-framed query on an open connection; None if the server closed it instead of
/// answering.
pub fn ask_tcp(conn: &mut TcpStream, packet: &[u8]) -> Option<Vec<u8>> {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    conn.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    conn.read_exact(&mut answer).ok()?;
    Some(answer)
}

pub fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("a parseable answer")
}

/// The answer section as "name type data" strings, sorted.
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
    v.sort();
    v
}
