//! Modules a fleet can trust: the admin endpoint reads no path and quotes nothing, takes binary
//! components only and can demand a bearer token; modules come from a ConfigMap volume (kubelet's
//! `..data` layout) or a real OCI registry (Debian's docker-registry, plain and with TLS and basic
//! auth), pinned by digest and signed with real minisign keys; every refusal leaves the running
//! module serving, under UDP and TCP load.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::{self, Scratch, Server};
use crate::shadow::corefile;

const WEB: &str = "web.shop.svc.cluster.local.";
const PATIENCE: Duration = Duration::from_secs(20);

fn built_module() -> Vec<u8> {
    std::fs::read(harness::root().join("target/guest/wasm32-wasip2/release/kubernetai_guest.wasm"))
        .expect("the guest component built by build.rs")
}

/// The built module with a custom section naming `tag` appended: still a valid component, with
/// bytes (and a digest) of its own.
fn variant(tag: &str) -> Vec<u8> {
    let mut bytes = built_module();
    let name = b"kubernetai-test";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    bytes.push(0);
    let mut size = body.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        bytes.push(if size > 0 { byte | 0x80 } else { byte });
        if size == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&body);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut c| {
        c.stdin.take().expect("stdin").write_all(bytes)?;
        c.wait_with_output()
    });
    String::from_utf8_lossy(&out.expect("sha256sum").stdout).split_whitespace().next().unwrap_or_default().to_string()
}

fn web(server: &Server) -> Vec<String> {
    harness::answers(&harness::parse(&harness::udp(server.addr, &harness::query(WEB, RecordType::A, 3, None))))
}

fn admin_addr(server: &Server) -> String {
    server.wait_for("admin endpoint").rsplit("http://").next().expect("address").trim().to_string()
}

/// One HTTP request with extra header lines: status and body.
fn request(addr: &str, method: &str, path: &str, headers: &[String], body: &[u8]) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(addr).expect("admin");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Length: {}\r\n\r\n", body.len())
        .expect("head");
    conn.write_all(body).expect("body");
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Runs the server expecting it to refuse to start: everything it said.
fn refused_start(corefile: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(harness::binary())
        .args(["-conf", corefile.to_str().expect("path"), "-dns.port", "0", "-admin", "none"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "the server started; it should have refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "exited with {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn minisign(dir: &Path, args: &[&str]) {
    let out = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("minisign (scripts/peers.sh installs it)");
    assert!(out.status.success(), "minisign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A minisign key pair without a password: `NAME.pub`, `NAME.sec`.
fn keypair(dir: &Scratch, name: &str) -> PathBuf {
    minisign(&dir.0, &["-G", "-W", "-p", &format!("{name}.pub"), "-s", &format!("{name}.sec")]);
    dir.0.join(format!("{name}.pub"))
}

/// Signs `file` with key `name` (writes `FILE.minisig`).
fn sign(dir: &Scratch, name: &str, file: &Path) {
    minisign(
        &dir.0,
        &["-S", "-s", &format!("{name}.sec"), "-m", file.to_str().expect("path"), "-t", "kubernetai test"],
    );
}

#[test]
fn the_admin_endpoint_reads_no_path_quotes_nothing_and_takes_binary_components_only() {
    let dir = Scratch::new("fleet-disclosure");
    let secret = dir.write("secret.txt", "TOPSECRET-4b1d-credentials\n");
    let mut server = Server::start_with(&corefile(&dir), &[]);
    let addr = admin_addr(&server);
    let paths = [secret.to_str().expect("path"), "/proc/self/environ", "/etc/shadow", "/dev/zero"];
    for path in paths {
        let started = Instant::now();
        let (status, text) = request(&addr, "POST", "/module/shadow", &[], path.as_bytes());
        assert_eq!(status, 409, "{path}: {text}");
        assert!(text.contains("not a binary WebAssembly component"), "{path}: {text}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: answered at once, nothing read");
        assert!(!text.contains("TOPSECRET") && !text.contains("PATH=") && !text.contains("root:"), "{path}: {text}");
    }
    let (status, text) =
        request(&addr, "POST", "/module/shadow", &[], b"(component (import \"TOPSECRET\" (instance)))");
    assert!(status == 409 && text.contains("text format") && !text.contains("TOPSECRET"), "{status} {text}");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(b"TOPSECRET-in-a-broken-component");
    let (status, text) = request(&addr, "POST", "/module/shadow", &[], &bytes);
    assert!(status == 409 && text.contains("compiling the module") && !text.contains("TOPSECRET"), "{status} {text}");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"], "DNS kept answering");

    server.signal("TERM");
    assert!(server.exited(Duration::from_secs(10)).is_some(), "SIGTERM stopped it");
    let said = server.drain().join("\n");
    assert!(said.contains("shadow refused"), "the refusals were logged: {said}");
    assert!(!said.contains("TOPSECRET") && !said.contains("root:"), "and the log quotes nothing: {said}");
}

#[test]
fn the_admin_token_is_required_compared_and_rotated_as_a_secret_volume_rotates() {
    let dir = Scratch::new("fleet-token");
    let volume = SecretVolume::new(&dir.0.join("token"), "token", b"first-token-0123\n");
    let token = volume.file();
    let server = Server::start_with(&corefile(&dir), &["-admin.token", token.to_str().expect("path")]);
    let line = server.wait_for("admin endpoint");
    assert!(line.contains("bearer token required"), "{line}");
    let addr = line.rsplit("http://").next().expect("address").trim().to_string();
    let bearer = |t: &str| vec![format!("Authorization: Bearer {t}")];
    assert_eq!(request(&addr, "POST", "/module/swap", &[], b"").0, 401, "no token");
    assert_eq!(request(&addr, "POST", "/module/swap", &bearer("first-token-0124"), b"").0, 401, "a wrong one");
    assert_eq!(request(&addr, "POST", "/module/swap", &bearer("first"), b"").0, 401, "a prefix of it");
    // Refused before the body is read: a large upload announced without the token gets its
    // 401 with none of the body sent (sending it would race the server's close).
    let mut conn = std::net::TcpStream::connect(&addr).expect("admin");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(conn, "POST /module/shadow HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", 1 << 20).expect("head");
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    let (status, text) = request(&addr, "POST", "/module/swap", &bearer("first-token-0123"), b"");
    assert!(status == 200 && text.contains("module swapped"), "{status} {text}");

    volume.update(b"second-token-4567");
    let deadline = Instant::now() + PATIENCE;
    while request(&addr, "GET", "/module/shadow", &bearer("second-token-4567"), b"").0 == 401 {
        assert!(Instant::now() < deadline, "the rotated token was never taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(request(&addr, "POST", "/module/swap", &bearer("first-token-0123"), b"").0, 401, "the old one is gone");
    assert_eq!(request(&addr, "POST", "/module/swap", &bearer("second-token-4567"), b"").0, 200);
}

/// A directory laid out as kubelet lays out a ConfigMap or Secret volume: `..TIMESTAMP/KEY`, the
/// `..data` symlink to it, and `KEY -> ..data/KEY`; an update writes a new timestamped
/// directory and renames a new `..data` symlink over the old one.
struct SecretVolume {
    dir: PathBuf,
    key: String,
    generation: std::cell::Cell<u32>,
}

impl SecretVolume {
    fn new(dir: &Path, key: &str, content: &[u8]) -> SecretVolume {
        std::fs::create_dir_all(dir).expect("volume dir");
        let v = SecretVolume { dir: dir.to_path_buf(), key: key.to_string(), generation: 0.into() };
        v.update(content);
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).expect("the key's symlink");
        v
    }

    fn file(&self) -> PathBuf {
        self.dir.join(&self.key)
    }

    fn update(&self, content: &[u8]) {
        self.update_with(&[(&self.key, content)]);
    }

    fn update_with(&self, files: &[(&str, &[u8])]) {
        let n = self.generation.get() + 1;
        self.generation.set(n);
        let stamp = format!("..2026_12_04_01_00_{n:02}.{}", 100 + n);
        std::fs::create_dir(self.dir.join(&stamp)).expect("timestamped dir");
        for (name, content) in files {
            std::fs::write(self.dir.join(&stamp).join(name), content).expect("file");
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &tmp).expect("new ..data");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
    }
}

#[test]
fn a_module_in_a_configmap_volume_follows_kubelet_updates_and_a_pin_holds_it() {
    let dir = Scratch::new("fleet-configmap");
    let volume = SecretVolume::new(&dir.0.join("module"), "module.wasm", &variant("v1"));
    let module = volume.file();
    let server = Server::start_with(&corefile(&dir), &["-module", module.to_str().expect("path")]);
    let v2 = variant("v2");
    let (asked, bad) = crate::shadow::under_load(&server, &[WEB], || {
        volume.update(&v2);
        server.wait_for(&format!("sha256 {}", sha256_hex(&v2)));
        server.wait_for("module swapped in 1 server block(s)");
    });
    assert!(asked > 20 && bad.is_empty(), "{asked} asked; lost or failed: {bad:?}");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    drop(server);

    // Pinned by digest: another module in the volume is refused, the pinned one keeps serving.
    let pin = sha256_hex(&v2);
    let server =
        Server::start_with(&corefile(&dir), &["-module", module.to_str().expect("path"), "-module.sha256", &pin]);
    volume.update(&variant("v3"));
    let refused = server.wait_for("module refused");
    assert!(refused.contains(&format!("not the {pin} that -module.sha256 pins")), "{refused}");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    let out = refused_start(&corefile(&dir), &["-module", module.to_str().expect("path"), "-module.sha256", &pin]);
    assert!(out.contains("-module.sha256 pins"), "a start with another module is refused: {out}");
}

#[test]
fn signatures_are_demanded_of_every_candidate_a_file_or_an_upload() {
    let dir = Scratch::new("fleet-signed");
    let trusted = keypair(&dir, "trusted");
    keypair(&dir, "other");
    let module = dir.0.join("module.wasm");
    std::fs::write(&module, variant("signed-1")).expect("module");
    let args = |extra: &[&str]| {
        let mut v = vec!["-module", module.to_str().expect("path"), "-module.pubkey", trusted.to_str().expect("path")];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let out = refused_start(&corefile(&dir), &args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("carries no signature"), "unsigned: {out}");
    sign(&dir, "other", &module);
    let out = refused_start(&corefile(&dir), &args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("not by any of the 1 trusted key(s)"), "signed by another key: {out}");

    sign(&dir, "trusted", &module);
    let argv = args(&[]);
    let server = Server::start_with(&corefile(&dir), &argv.iter().map(String::as_str).collect::<Vec<_>>());
    let metrics = crate::peers::url_in(&server.wait_for("plugin/prometheus: serving"));
    let addr = admin_addr(&server);
    // A new module signed by another key, on SIGHUP, under load: refused, nothing lost.
    let (asked, bad) = crate::shadow::under_load(&server, &[WEB], || {
        let staged = dir.0.join("next.wasm");
        std::fs::write(&staged, variant("signed-2")).expect("next");
        sign(&dir, "other", &staged);
        std::fs::rename(dir.0.join("next.wasm.minisig"), dir.0.join("module.wasm.minisig")).expect("sig");
        std::fs::rename(&staged, &module).expect("module");
        let line = server.wait_for("module refused");
        assert!(line.contains("not by any of the 1 trusted key(s)") && line.contains("sha256"), "{line}");
    });
    assert!(asked > 20 && bad.is_empty(), "{asked} asked; lost or failed: {bad:?}");
    // An upload without a signature, and one with the trusted key's.
    let bytes = variant("posted");
    let (status, text) = request(&addr, "POST", "/module/shadow", &[], &bytes);
    assert!(status == 409 && text.contains("carries no signature"), "{status} {text}");
    let posted = dir.0.join("posted.wasm");
    std::fs::write(&posted, &bytes).expect("posted");
    sign(&dir, "trusted", &posted);
    let minisig = std::fs::read(dir.0.join("posted.wasm.minisig")).expect("minisig");
    use base64::Engine;
    let header = format!("Kubernetai-Minisig: {}", base64::engine::general_purpose::STANDARD.encode(minisig));
    let (status, text) = request(&addr, "POST", "/module/shadow", &[header], &bytes);
    assert!(status == 200 && text.contains("shadowing the module posted"), "{status} {text}");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    let (_, text) = crate::peers::curl(&metrics);
    let refused = |reason: &str| {
        crate::peers::metric(&text, "kubernetai_module_provenance_refused_total", &format!("reason=\"{reason}\""))
    };
    assert!(refused("signature") >= 1.0 && refused("unsigned") >= 1.0, "{text}");
    assert!(
        text.contains("kubernetai_module_provenance_refused_total{reason=\"digest\"} 0"),
        "every reason has a series: {text}"
    );
    for kind in ["rcode", "flags", "answer", "authority", "additional", "outcome", "candidate_error"] {
        let series = format!("kubernetai_shadow_differences_total{{kind=\"{kind}\"}} 0");
        assert!(text.contains(&series), "{series} from the start (nothing differed yet): {text}");
    }
}

/// Debian's docker-registry (the CNCF distribution registry) on a loopback port, its storage in
/// `dir`; with `tls` (certificate, key) and `htpasswd` when given.
struct Registry {
    child: Child,
    host: String,
}

impl Registry {
    fn start(dir: &Scratch, name: &str, tls: Option<(&Path, &Path)>, htpasswd: Option<&Path>) -> Registry {
        Self::start_at(dir, name, crate::peers::free_port(), tls, htpasswd)
    }

    fn start_at(
        dir: &Scratch,
        name: &str,
        port: u16,
        tls: Option<(&Path, &Path)>,
        htpasswd: Option<&Path>,
    ) -> Registry {
        let storage = dir.0.join(format!("{name}-storage"));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((cert, key)) = tls {
            config += &format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display());
        }
        if let Some(file) = htpasswd {
            config += &format!("auth:\n  htpasswd:\n    realm: kubernetai\n    path: {}\n", file.display());
        }
        let file = dir.write(&format!("{name}.yml"), &config);
        let child = Command::new("docker-registry")
            .args(["serve", file.to_str().expect("path")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/peers.sh installs it)");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, host: format!("127.0.0.1:{port}") }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubernetai module push FILE REF FLAGS…`: what it printed, and whether it succeeded.
fn push(file: &Path, reference: &str, flags: &[&str]) -> (bool, String) {
    let out = Command::new(harness::binary())
        .args(["module", "push", file.to_str().expect("path"), reference])
        .args(flags)
        .output()
        .expect("push");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn modules_from_a_registry_are_pulled_pinned_signed_swapped_on_a_tag_move_and_kept() {
    let dir = Scratch::new("fleet-registry");
    let port = crate::peers::free_port();
    let registry = Registry::start_at(&dir, "plain", port, None, None);
    let trusted = keypair(&dir, "trusted");
    keypair(&dir, "other");
    let tag = format!("oci://{}/kubernetai/module:stable", registry.host);
    let publish = |name: &str, key: Option<&str>| -> String {
        let file = dir.0.join(format!("{name}.wasm"));
        std::fs::write(&file, variant(name)).expect("module");
        let _ = std::fs::remove_file(dir.0.join(format!("{name}.wasm.minisig")));
        if let Some(key) = key {
            sign(&dir, key, &file);
        }
        let (ok, out) = push(&file, &tag, &["-module.plain-http"]);
        assert!(ok && out.contains("pushed") && out.contains("sha256:"), "{out}");
        out.rsplit("sha256:").next().expect("digest").trim().to_string()
    };
    let v1 = publish("v1", Some("trusted"));
    let cache = dir.0.join("cache");
    let argv = [
        "-module",
        &tag,
        "-module.plain-http",
        "-module.poll",
        "200ms",
        "-module.cache",
        cache.to_str().expect("path"),
        "-module.pubkey",
        trusted.to_str().expect("path"),
    ];
    let server = Server::start_with(&corefile(&dir), &argv);
    assert!(server.said_at_start(&format!("sha256:{v1}")).is_some(), "pulled the tag's manifest");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);

    // The tag moves three times under UDP and TCP load: a module signed by the trusted key is
    // swapped in; one signed by another key, and an unsigned one, are refused.
    let mut moved_in = Duration::ZERO;
    let (asked, bad) = crate::shadow::under_load(&server, &[WEB, "db.shop.svc.cluster.local."], || {
        let started = Instant::now();
        let v2 = publish("v2", Some("trusted"));
        server.wait_for(&format!("sha256:{v2}"));
        server.wait_for("module swapped in 1 server block(s)");
        moved_in = started.elapsed();
        publish("v3", Some("other"));
        let line = server.wait_for("module refused");
        assert!(line.contains("not by any of the 1 trusted key(s)"), "{line}");
        publish("v4", None);
        let line = server.wait_for("module refused");
        assert!(line.contains("carries no signature"), "{line}");
    });
    assert!(asked > 50 && bad.is_empty(), "{asked} asked; lost or failed: {bad:?}");
    println!("tag move to the new module serving: {} ms", moved_in.as_millis());
    drop(server);

    // A pinned digest the registry does not hold is refused at start; the one it holds starts.
    let pinned = format!("oci://{}/kubernetai/module@sha256:{}", registry.host, "0".repeat(64));
    let out = refused_start(&corefile(&dir), &["-module", &pinned, "-module.plain-http"]);
    assert!(out.contains("pulling") && out.contains("the registry"), "{out}");
    let at_v1 = format!("oci://{}/kubernetai/module@sha256:{v1}", registry.host);
    let server = Server::start_with(
        &corefile(&dir),
        &["-module", &at_v1, "-module.plain-http", "-module.cache", cache.to_str().expect("path")],
    );
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    drop(server);

    // A pin on the module's bytes: the tag's next move is refused under load.
    let v5_bytes = variant("v5");
    let pin = sha256_hex(&variant("v4"));
    let server = Server::start_with(
        &corefile(&dir),
        &["-module", &tag, "-module.plain-http", "-module.poll", "200ms", "-module.sha256", &pin],
    );
    let (asked, bad) = crate::shadow::under_load(&server, &[WEB], || {
        let file = dir.0.join("v5.wasm");
        std::fs::write(&file, &v5_bytes).expect("module");
        assert!(push(&file, &tag, &["-module.plain-http"]).0);
        let line = server.wait_for("module refused");
        assert!(line.contains("-module.sha256 pins"), "{line}");
    });
    assert!(asked > 20 && bad.is_empty(), "{asked} asked; lost or failed: {bad:?}");
    drop(server);

    // The registry gone: a restart starts from the blob kept by digest.
    drop(registry);
    let server = Server::start_with(&corefile(&dir), &argv);
    assert!(server.said_at_start("using the copy kept from").is_some(), "started from the cache");
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
}

#[test]
fn a_registry_with_tls_and_basic_auth_is_reached_with_a_pull_secret() {
    let dir = Scratch::new("fleet-registry-tls");
    crate::credentials::certificates(&dir);
    let out =
        Command::new("htpasswd").args(["-Bbn", "puller", "s3cret-pass"]).output().expect("htpasswd (apache2-utils)");
    assert!(out.status.success());
    let htpasswd = dir.0.join("htpasswd");
    std::fs::write(&htpasswd, &out.stdout).expect("htpasswd");
    let (cert, key) = (dir.0.join("server.crt"), dir.0.join("server.key"));
    let registry = Registry::start(&dir, "tls", Some((&cert, &key)), Some(&htpasswd));
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("puller:s3cret-pass");
    let secret = dir.write(".dockerconfigjson", &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host));
    let wrong = dir.write(
        "wrong.json",
        &format!(r#"{{"auths":{{"{}":{{"username":"puller","password":"nope"}}}}}}"#, registry.host),
    );
    let ca = dir.0.join("ca.crt");
    let tag = format!("oci://{}/team/kubernetai:v1", registry.host);
    let file = dir.0.join("m.wasm");
    std::fs::write(&file, variant("tls")).expect("module");
    let flags = |secret: &Path| {
        vec![
            "-module.ca".to_string(),
            ca.display().to_string(),
            "-module.pull-secret".into(),
            secret.display().to_string(),
        ]
    };
    let (ok, out) = push(&file, &tag, &flags(&wrong).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok, "a wrong password is refused: {out}");
    let (ok, out) = push(&file, &tag, &["-module.pull-secret", secret.to_str().expect("path")]);
    assert!(!ok && out.to_lowercase().contains("certificate"), "an unknown CA is refused: {out}");
    let good = flags(&secret);
    let (ok, out) = push(&file, &tag, &good.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out}");

    let mut argv = vec!["-module".to_string(), tag.clone()];
    argv.extend(good.clone());
    let server = Server::start_with(&corefile(&dir), &argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(web(&server), ["web.shop.svc.cluster.local. A 10.96.10.10"]);
    drop(server);
    let out = refused_start(&corefile(&dir), &["-module", &tag, "-module.ca", ca.to_str().expect("path")]);
    assert!(out.contains("pulling") && out.to_lowercase().contains("auth"), "no credentials: {out}");
}
