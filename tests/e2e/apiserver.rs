//! A fake Kubernetes API server for tests, speaking the real list/watch wire protocol over
//! HTTP/1.1: discovery documents, paged lists (`limit`/`continue`) with a `resourceVersion`,
//! label selectors, chunked watch streams with bookmarks, and `410 Gone` ("Expired") for a
//! resourceVersion older than the compacted history. Tests change objects and inject faults
//! through [`FakeApi`]; `kubectl` is pointed at it to prove the protocol is the real one. Over
//! HTTPS ([`FakeApi::start_tls`]) it presents a certificate, and can demand a client certificate
//! signed by a given CA and a bearer token, as a real API server's authentication does.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kubernetai_guest::selector::Selector;
use serde_json::{Value, json};

/// A resource the fake server serves: (plural, group/version path prefix, kind, namespaced).
const RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("namespaces", "/api/v1", "Namespace", false),
    ("services", "/api/v1", "Service", true),
    ("pods", "/api/v1", "Pod", true),
    ("endpointslices", "/apis/discovery.k8s.io/v1", "EndpointSlice", true),
    ("serviceimports", "/apis/multicluster.x-k8s.io/v1alpha1", "ServiceImport", true),
    ("serviceexports", "/apis/multicluster.x-k8s.io/v1alpha1", "ServiceExport", true),
];
/// How often an idle watch stream gets a bookmark.
const BOOKMARK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Store {
    /// The last resourceVersion handed out.
    rv: u64,
    /// (plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    /// (resourceVersion, plural, event type, object), oldest first.
    log: Vec<(u64, String, &'static str, Value)>,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
    /// Bumped to cut every open watch stream mid-event.
    epoch: u64,
    /// Watch streams opened so far; those numbered below `stalled_below` stay open and silent
    /// (no event, no bookmark), as behind a load balancer or VPN that stopped forwarding.
    streams: u64,
    /// The plural of each watch stream opened so far, in order.
    opened: Vec<String>,
    stalled_below: u64,
    /// While down, connections are dropped unanswered.
    down: bool,
    /// Requests served, by path (without query), for tests that check what clients asked.
    requests: Vec<String>,
    /// How long each list takes to answer, and how many lists were being answered at once: now
    /// and at most (for tests of a client's in-flight limit).
    list_delay: Duration,
    lists_now: usize,
    lists_most: usize,
    /// Resources whose CRD is not installed: 404 Not Found, as a real API server answers.
    absent: std::collections::BTreeSet<String>,
}

type Shared = Arc<(Mutex<Store>, Condvar)>;

/// A running fake API server.
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Shared,
    tls: bool,
}

/// How the HTTPS server authenticates: its certificate and key (PEM files), the CA a client
/// certificate must be signed by (None: none asked), the bearer token every request must carry.
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: Option<std::path::PathBuf>,
    pub token: Option<String>,
}

/// A connection, plain or TLS: read as a stream, written, and cut.
trait Conn: Read + Write + Send {
    fn cut(&mut self);
}

impl Conn for TcpStream {
    fn cut(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn cut(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

pub fn server_config(tls: &Tls) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.cert).expect("server cert").map(|c| c.expect("a certificate")).collect();
    let key = PrivateKeyDer::from_pem_file(&tls.key).expect("server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).expect("client CA") {
                roots.add(c.expect("a certificate")).expect("a CA certificate");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(certs, key).expect("server certificate and key"))
}

impl FakeApi {
    pub fn start() -> FakeApi {
        Self::serving(None)
    }

    /// The same server over HTTPS, authenticating clients as `tls` says.
    pub fn start_tls(tls: Tls) -> FakeApi {
        Self::serving(Some(tls))
    }

    fn serving(tls: Option<Tls>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake apiserver");
        let addr = listener.local_addr().expect("addr");
        let state: Shared = Arc::new((Mutex::new(Store { rv: 100, ..Store::default() }), Condvar::new()));
        let shared = state.clone();
        let secure = tls.is_some();
        let config = tls.as_ref().map(server_config);
        let token = tls.and_then(|t| t.token);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (shared, config, token) = (shared.clone(), config.clone(), token.clone());
                std::thread::spawn(move || match config {
                    Some(config) => match rustls::ServerConnection::new(config) {
                        Ok(session) => serve(rustls::StreamOwned::new(session, conn), shared, token.as_deref()),
                        Err(_) => {}
                    },
                    None => serve(conn, shared, None),
                });
            }
        });
        FakeApi { addr, state, tls: secure }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    fn change<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let (lock, cv) = &*self.state;
        let out = f(&mut lock.lock().expect("store"));
        cv.notify_all();
        out
    }

    /// Creates or replaces an object (JSON with kind and metadata).
    pub fn apply(&self, mut obj: Value) {
        let kind = obj["kind"].as_str().expect("kind").to_string();
        let plural = RESOURCES.iter().find(|r| r.2 == kind).expect("a served kind").0.to_string();
        self.change(|s| {
            s.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            let key = key_of(&plural, &obj);
            let kind = if s.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
            s.objects.insert(key, obj.clone());
            let rv = s.rv;
            s.log.push((rv, plural, kind, obj));
        });
    }

    /// Deletes an object.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let plural = RESOURCES.iter().find(|r| r.2 == kind).expect("a served kind").0.to_string();
        self.change(|s| {
            if let Some(mut obj) = s.objects.remove(&(plural.clone(), namespace.to_string(), name.to_string())) {
                s.rv += 1;
                obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
                let rv = s.rv;
                s.log.push((rv, plural, "DELETED", obj));
            }
        });
    }

    /// Sends `obj` to the watches of its kind as a `event_type` event without storing it: for
    /// what a healthy API server would not send (an object without a name, an ADDED twice).
    pub fn inject(&self, event_type: &'static str, mut obj: Value) {
        let kind = obj["kind"].as_str().expect("kind").to_string();
        let plural = RESOURCES.iter().find(|r| r.2 == kind).expect("a served kind").0.to_string();
        self.change(|s| {
            s.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            let rv = s.rv;
            s.log.push((rv, plural, event_type, obj));
        });
    }

    /// Forgets the history: every watch resuming from before now gets 410 Gone.
    pub fn compact(&self) {
        self.change(|s| s.compacted = s.rv + 1);
    }

    /// Every watch stream open now goes silent for good (the connection stays open); streams
    /// opened later are served as usual.
    pub fn stall_streams(&self) {
        self.change(|s| s.stalled_below = s.streams);
    }

    /// Waits until a watch stream of each of `plurals` has been opened.
    pub fn wait_for_watches(&self, plurals: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !plurals.iter().all(|p| self.state.0.lock().expect("store").opened.iter().any(|o| o == p)) {
            assert!(Instant::now() < deadline, "no watch of each of {plurals:?} opened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts every open watch stream in the middle of an event.
    pub fn cut_streams(&self) {
        self.change(|s| s.epoch += 1);
    }

    /// Goes away (connections dropped unanswered) or comes back.
    pub fn set_down(&self, down: bool) {
        self.change(|s| {
            s.down = down;
            s.epoch += 1;
        });
    }

    /// A restart with a new history: resourceVersions jump and nothing before them can be resumed.
    pub fn restart(&self) {
        self.change(|s| {
            s.rv += 1000;
            s.compacted = s.rv + 1;
            s.log.clear();
            s.epoch += 1;
        });
    }

    /// Takes the CRD of `plural` away (or installs it again): its paths answer 404 meanwhile.
    pub fn set_crd_installed(&self, plural: &str, installed: bool) {
        self.change(|s| {
            if installed {
                s.absent.remove(plural);
            } else {
                s.absent.insert(plural.to_string());
            }
            s.epoch += 1;
        });
    }

    /// Answers every list only after `delay`, so concurrent lists overlap.
    pub fn slow_lists(&self, delay: Duration) {
        self.change(|s| s.list_delay = delay);
    }

    /// The most lists that were being answered at once.
    pub fn most_lists_at_once(&self) -> usize {
        self.state.0.lock().expect("store").lists_most
    }

    /// How many requests asked for `path` with a query containing `needle`.
    pub fn requests_matching(&self, needle: &str) -> usize {
        self.state.0.lock().expect("store").requests.iter().filter(|r| r.contains(needle)).count()
    }
}

fn key_of(plural: &str, obj: &Value) -> (String, String, String) {
    let meta = &obj["metadata"];
    let text = |f: &str| meta[f].as_str().unwrap_or_default().to_string();
    (plural.to_string(), text("namespace"), text("name"))
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// Serves requests on one connection until it closes (keep-alive); with `token`, a request
/// without `Authorization: Bearer TOKEN` gets 401, as an API server answers.
fn serve<C: Conn>(conn: C, shared: Shared, token: Option<&str>) {
    if shared.0.lock().map(|s| s.down).unwrap_or(true) {
        return;
    }
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0usize;
        let mut auth = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("authorization") {
                    auth = v.trim().to_string();
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<String, String> =
            query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), decode(v))).collect();
        shared.0.lock().expect("store").requests.push(format!("{target} authorization={auth}"));
        let conn = reader.get_mut();
        if token.is_some_and(|t| auth != format!("Bearer {t}")) {
            respond(conn, 401, &status(401, "Unauthorized", "Unauthorized").to_string());
            return;
        }
        let is_list = !params.get("watch").is_some_and(|w| w == "true" || w == "1")
            && RESOURCES.iter().any(|r| path.trim_end_matches('/') == format!("{}/{}", r.1, r.0));
        if is_list {
            let delay = {
                let mut s = shared.0.lock().expect("store");
                s.lists_now += 1;
                s.lists_most = s.lists_most.max(s.lists_now);
                s.list_delay
            };
            std::thread::sleep(delay);
        }
        let response = route(path, &params, &shared);
        // Done before a byte of the answer goes out: the client's next request may follow the
        // headers at once, and must not be counted as overlapping this one.
        if is_list {
            shared.0.lock().expect("store").lists_now -= 1;
        }
        let keep = match response {
            Response::Json(code, value) => respond(conn, code, &value.to_string()),
            Response::Watch(plural, from, selector) => {
                watch(conn, &shared, &plural, from, selector.as_ref());
                false
            }
        };
        if !keep {
            return;
        }
    }
}

enum Response {
    Json(u16, Value),
    Watch(String, u64, Option<Selector>),
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn route(path: &str, params: &BTreeMap<String, String>, shared: &Shared) -> Response {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => {
            return Response::Json(
                200,
                json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}),
            );
        }
        "/api" => {
            return Response::Json(
                200,
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            );
        }
        "/apis" => {
            let groups: Vec<Value> = [("discovery.k8s.io", "v1"), ("multicluster.x-k8s.io", "v1alpha1")]
                .iter()
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            return Response::Json(200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        }
        _ => {}
    }
    if let Some((_, prefix, _, _)) = RESOURCES.iter().find(|r| r.1 == path) {
        let resources: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.1 == *prefix)
            .map(|(plural, _, kind, namespaced)| {
                let short: Vec<&str> = match *plural { "services" => vec!["svc"], "pods" => vec!["po"], "namespaces" => vec!["ns"], _ => vec![] };
                json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind, "verbs": ["get", "list", "watch"], "shortNames": short})
            })
            .collect();
        let gv = prefix.trim_start_matches("/apis/").trim_start_matches("/api/");
        return Response::Json(
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        );
    }
    let served = RESOURCES.iter().find(|r| path == format!("{}/{}", r.1, r.0));
    let absent = served.is_some_and(|r| shared.0.lock().expect("store").absent.contains(r.0));
    let Some((plural, prefix, kind, _)) = served.filter(|_| !absent) else {
        return Response::Json(
            404,
            status(404, "NotFound", &format!("the server could not find the requested resource ({path})")),
        );
    };
    let selector = match params.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(text) => match Selector::parse(text) {
            Ok(s) => Some(s),
            Err(e) => {
                return Response::Json(400, status(400, "BadRequest", &format!("unable to parse requirement: {e}")));
            }
        },
        None => None,
    };
    let store = shared.0.lock().expect("store");
    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let from: u64 = params.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(store.rv);
        return Response::Watch(plural.to_string(), from, selector);
    }
    // A paged list: `continue` carries the offset and the resourceVersion the list started at.
    let (offset, list_rv) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (o, rv) = token.split_once('-').unwrap_or(("0", "0"));
            let rv: u64 = rv.parse().unwrap_or(0);
            if rv < store.compacted {
                return Response::Json(
                    410,
                    status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result.",
                    ),
                );
            }
            (o.parse().unwrap_or(0), rv)
        }
        None => (0, store.rv),
    };
    let items: Vec<&Value> = store
        .objects
        .iter()
        .filter(|((p, _, _), _)| p == plural)
        .map(|(_, v)| v)
        .filter(|v| selector.as_ref().is_none_or(|s| s.matches(&labels_of(v))))
        .collect();
    let limit: usize = params.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let page: Vec<Value> = items.iter().skip(offset).take(limit).map(|v| (*v).clone()).collect();
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if offset + page.len() < items.len() {
        meta["continue"] = json!(format!("{}-{list_rv}", offset + page.len()));
    }
    let api_version = prefix.trim_start_matches("/apis/").trim_start_matches("/api/");
    Response::Json(
        200,
        json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": meta, "items": page}),
    )
}

fn respond<C: Conn>(conn: &mut C, code: u16, body: &str) -> bool {
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        410 => "Gone",
        _ => "Error",
    };
    let head =
        format!("HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(body.as_bytes())).and_then(|_| conn.flush()).is_ok()
}

fn chunk<C: Conn>(conn: &mut C, data: &str) -> bool {
    conn.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes()).and_then(|_| conn.flush()).is_ok()
}

/// A watch stream: events after `from`, bookmarks while idle, cut when the epoch moves.
fn watch<C: Conn>(conn: &mut C, shared: &Shared, plural: &str, from: u64, selector: Option<&Selector>) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let (lock, cv) = &**shared;
    let mut store = lock.lock().expect("store");
    if from < store.compacted {
        let gone = json!({"type": "ERROR", "object": status(410, "Expired", &format!("too old resource version: {from} ({})", store.compacted))});
        chunk(conn, &format!("{gone}\n"));
        let _ = conn.write_all(b"0\r\n\r\n");
        return;
    }
    let epoch = store.epoch;
    let stream = store.streams;
    store.streams += 1;
    store.opened.push(plural.to_string());
    let mut sent = from;
    let started = Instant::now();
    loop {
        if stream < store.stalled_below {
            // Silent: nothing more is written, whatever changes, until the process ends.
            store = cv.wait(store).expect("store");
            continue;
        }
        if store.epoch != epoch || store.down {
            // Cut mid-event: half an object, then the connection drops.
            let _ = conn.write_all(b"40\r\n{\"type\":\"MODIFIED\",\"object\":{\"kind\":");
            conn.cut();
            return;
        }
        let pending: Vec<(u64, &'static str, Value)> = store
            .log
            .iter()
            .filter(|(rv, p, _, _)| *rv > sent && p == plural)
            .map(|(rv, _, t, o)| (*rv, *t, o.clone()))
            .collect();
        for (rv, kind, obj) in pending {
            sent = rv;
            if selector.is_some_and(|s| !s.matches(&labels_of(&obj))) {
                continue;
            }
            // "type" before "object", as the API server writes a watch event (Go's field order);
            // a sorted-key map would put the object first.
            if !chunk(conn, &format!("{{\"type\":{},\"object\":{obj}}}\n", json!(kind))) {
                return;
            }
        }
        sent = sent.max(store.rv);
        if started.elapsed() > Duration::from_secs(290) {
            let _ = conn.write_all(b"0\r\n\r\n");
            return;
        }
        let (next, timeout) = cv.wait_timeout(store, BOOKMARK_EVERY).expect("store");
        store = next;
        if timeout.timed_out() {
            let kind = RESOURCES.iter().find(|r| r.0 == plural).map(|r| r.2).unwrap_or_default();
            let bookmark = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": sent.to_string()}}});
            if !chunk(conn, &format!("{bookmark}\n")) {
                return;
            }
        }
    }
}

/// Percent-decoding of a query parameter.
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
