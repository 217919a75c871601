//! The HTTP/1.1 endpoints this server exposes (admin, health, ready, metrics), on hyper: one
//! request per connection, a body only where the listener takes one (the admin endpoint's
//! module uploads), a text or JSON answer. Bounded, because a probe port
//! is reachable by anything in the pod network: a request's head (request line and headers) is
//! at most [`MAX_HEAD`] bytes and must arrive within [`READ_TIMEOUT`], and at most
//! [`MAX_CONNECTIONS`] are served at once per listener (more are closed at once). A listener
//! with a [`Gate`] checks the head before any body is read (401 otherwise), and reads one body
//! at a time, as it arrives, within [`BODY_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request head read; a longer one is answered 431 and closed.
pub const MAX_HEAD: usize = 8192;
/// How long a client may take to send its request's head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once per listener.
pub const MAX_CONNECTIONS: usize = 64;

/// A response: status code, body, content type.
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl HttpResponse {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        HttpResponse { status, body: body.into(), content_type: "text/plain; charset=utf-8" }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        HttpResponse { status, body: body.into(), content_type: "application/json" }
    }
}

/// A request as handlers see it.
pub struct HttpRequest {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// Header names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// Empty unless the listener takes bodies.
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Answers a request.
pub type Handler = Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, HttpResponse> + Send + Sync>;

/// Decides from a request's headers whether it may go on, before its body is read.
pub type Gate = Arc<dyn Fn(&[(String, String)]) -> bool + Send + Sync>;

/// What a listener takes beyond a request head.
#[derive(Clone, Default)]
pub struct Accepts {
    /// The largest body; 0 takes none.
    pub max_body: usize,
    /// None: every request is let in.
    pub gate: Option<Gate>,
}

/// How long a client may take to send a body once its head has arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The first wait after a failed accept; doubled on each failure in a row, up to a second.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves `listener` until the task is dropped; request bodies are refused (413) unless
/// `accepts.max_body` is above zero, and bodies larger than it always are.
pub async fn serve(listener: TcpListener, name: &'static str, accepts: Accepts, handler: Handler) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let uploads = Arc::new(Semaphore::new(1));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(false)
        .max_header_size(MAX_HEAD)
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT);
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => {
                backoff = ACCEPT_BACKOFF;
                conn
            }
            // Out of descriptors (or another passing fault): the listener itself is fine, so
            // wait for connections to close rather than end serving.
            Err(e) => {
                crate::observe::metrics::screened("http_accept_error");
                println!("[WARNING] {name}: accepting a connection: {e}; trying again in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::observe::metrics::screened("http_connections");
            drop(conn);
            continue;
        };
        let (handler, accepts, uploads) = (handler.clone(), accepts.clone(), uploads.clone());
        let service = hyper::service::service_fn(move |req| {
            let (handler, accepts, uploads) = (handler.clone(), accepts.clone(), uploads.clone());
            async move { Ok::<_, std::convert::Infallible>(respond(answer(req, &accepts, &uploads, handler).await)) }
        });
        let connection = builder.serve_connection(TokioIo::new(conn), service);
        tokio::spawn(async move {
            match connection.await {
                Ok(()) => {}
                Err(e) if e.is_timeout() => crate::observe::metrics::screened("http_timeout"),
                // hyper has answered 431 already.
                Err(e) if e.is_parse_too_large() => crate::observe::metrics::screened("http_too_large"),
                Err(e) if e.is_incomplete_message() => {}
                Err(e) => println!("[WARNING] {name}: {e}"),
            }
            drop(slot);
        });
    }
}

/// The answer to one request: refused on its head alone (401, 413) when it must be, its body
/// read within the bounds, then the handler's.
async fn answer(req: hyper::Request<Incoming>, accepts: &Accepts, uploads: &Semaphore, handler: Handler) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string()))
        .collect();
    if accepts.gate.as_ref().is_some_and(|gate| !gate(&headers)) {
        crate::observe::metrics::screened("http_unauthorized");
        return HttpResponse::text(401, "a valid bearer token is required (Authorization: Bearer TOKEN)\n");
    }
    let max_body = accepts.max_body;
    let too_large = || {
        crate::observe::metrics::screened("http_too_large");
        HttpResponse::text(413, format!("request body too large (at most {max_body} bytes here)\n"))
    };
    // An unreadable length is as good as a huge one.
    let length = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap_or(usize::MAX));
    if length > max_body {
        return too_large();
    }
    let (method, path) = (req.method().as_str().to_string(), req.uri().path().to_string());
    let mut incoming = req.into_body();
    let mut body = Vec::new();
    if !hyper::body::Body::is_end_stream(&incoming) {
        // One body at a time, grown as it arrives: a client announcing a large body and
        // sending nothing holds no memory, and many cannot add up.
        let Ok(_upload) = uploads.try_acquire() else {
            return HttpResponse::text(429, "another upload is being read; try again\n");
        };
        let limited = Limited::new(&mut incoming, max_body);
        match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
            Ok(Ok(collected)) => body = collected.to_bytes().to_vec(),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
            Ok(Err(e)) => return HttpResponse::text(400, format!("reading the request body: {e}\n")),
            Err(_) => {
                crate::observe::metrics::screened("http_timeout");
                return HttpResponse::text(408, "the request body did not arrive in time\n");
            }
        }
    }
    handler(HttpRequest { method, path, headers, body }).await
}

fn respond(response: HttpResponse) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE);
    let headers = out.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(response.content_type));
    if response.status == 401 {
        headers.insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer realm=\"kubernetai\""));
    }
    out
}
