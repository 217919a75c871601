//! Just enough HTTP/1.1 for the endpoints this server exposes (admin, health, ready, metrics):
//! one request per connection, a body only where the listener takes one (the admin endpoint's
//! module uploads), a text or JSON answer. Bounded, because a probe port
//! is reachable by anything in the pod network: a request's head (request line and headers) is
//! at most [`MAX_HEAD`] bytes and must arrive within [`READ_TIMEOUT`], and at most
//! [`MAX_CONNECTIONS`] are served at once per listener (more are closed at once). A listener
//! with a [`Gate`] checks the head before any body is read (401 otherwise), and reads one body
//! at a time, as it arrives, within [`BODY_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read; a longer one is answered 431 and closed.
pub const MAX_HEAD: u64 = 8192;
/// How long a client may take to send its request's head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once per listener.
pub const MAX_CONNECTIONS: usize = 64;

/// A response: status code, body, content type.
pub struct Response {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response { status, body: body.into(), content_type: "text/plain; charset=utf-8" }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response { status, body: body.into(), content_type: "application/json" }
    }
}

/// A request as handlers see it.
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// Header names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// Empty unless the listener takes bodies.
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Answers a request.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

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

/// Serves `listener` until the task is dropped; request bodies are refused (413) unless
/// `accepts.max_body` is above zero, and bodies larger than it always are.
pub async fn serve(listener: TcpListener, name: &'static str, accepts: Accepts, handler: Handler) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let uploads = Arc::new(tokio::sync::Semaphore::new(1));
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            // Out of descriptors (or another passing fault): the listener itself is fine, so
            // wait a moment for connections to close rather than end serving.
            Err(e) => {
                crate::observe::metrics::screened("http_accept_error");
                println!("[WARNING] {name}: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::observe::metrics::screened("http_connections");
            drop(conn);
            continue;
        };
        let (handler, accepts, uploads) = (handler.clone(), accepts.clone(), uploads.clone());
        tokio::spawn(async move {
            if let Err(e) = request(conn, &accepts, &uploads, handler).await {
                println!("[WARNING] {name}: {e}");
            }
            drop(slot);
        });
    }
}

/// What became of reading a request's head.
enum Head {
    /// The request line, the headers and the body's announced length.
    Read(String, Vec<(String, String)>, usize),
    TooLarge,
}

/// Reads the request line, and the headers up to the blank line, within [`MAX_HEAD`] bytes.
async fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Head> {
    let mut bounded = reader.take(MAX_HEAD);
    let mut line = String::new();
    let mut headers = Vec::new();
    bounded.read_line(&mut line).await?;
    loop {
        if !line.ends_with('\n') {
            break;
        }
        let mut header = String::new();
        if bounded.read_line(&mut header).await? == 0 {
            if bounded.limit() == 0 {
                return Ok(Head::TooLarge);
            }
            break;
        }
        if header.trim().is_empty() {
            break;
        }
        if !header.ends_with('\n') && bounded.limit() == 0 {
            return Ok(Head::TooLarge);
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !line.ends_with('\n') && bounded.limit() == 0 {
        return Ok(Head::TooLarge);
    }
    // An unreadable length is as good as a huge one: refused by the caller.
    let length = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap_or(usize::MAX));
    Ok(Head::Read(line, headers, length))
}

async fn request(
    conn: TcpStream,
    accepts: &Accepts,
    uploads: &tokio::sync::Semaphore,
    handler: Handler,
) -> std::io::Result<()> {
    let max_body = accepts.max_body;
    let mut reader = BufReader::new(conn);
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut reader)).await {
        Err(_) => {
            crate::observe::metrics::screened("http_timeout");
            return Ok(());
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Head::TooLarge)) => {
            crate::observe::metrics::screened("http_too_large");
            Response::text(431, "request header fields too large\n")
        }
        Ok(Ok(Head::Read(_, headers, _))) if accepts.gate.as_ref().is_some_and(|gate| !gate(&headers)) => {
            crate::observe::metrics::screened("http_unauthorized");
            Response::text(401, "a valid bearer token is required (Authorization: Bearer TOKEN)\n")
        }
        Ok(Ok(Head::Read(_, _, length))) if length > max_body => {
            crate::observe::metrics::screened("http_too_large");
            Response::text(413, format!("request body too large (at most {max_body} bytes here)\n"))
        }
        Ok(Ok(Head::Read(line, headers, length))) => {
            let mut words = line.split_whitespace();
            let (method, target) = (words.next().unwrap_or_default().to_string(), words.next().unwrap_or_default());
            let path = target.split('?').next().unwrap_or_default().to_string();
            // One body at a time, grown as it arrives: a client announcing a large body and
            // sending nothing holds no memory, and many cannot add up.
            let upload = if length > 0 { uploads.try_acquire().ok() } else { None };
            if length > 0 && upload.is_none() {
                Response::text(429, "another upload is being read; try again\n")
            } else {
                let mut body = Vec::new();
                let mut limited = (&mut reader).take(length as u64);
                match tokio::time::timeout(BODY_TIMEOUT, limited.read_to_end(&mut body)).await {
                    Ok(Ok(n)) if n == length => {
                        drop(upload);
                        handler(Request { method, path, headers, body }).await
                    }
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        crate::observe::metrics::screened("http_timeout");
                        return Ok(());
                    }
                }
            }
        }
    };
    let reason = match response.status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut conn = reader.into_inner();
    let challenge = if response.status == 401 { "WWW-Authenticate: Bearer realm=\"kubernetai\"\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\n{challenge}Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(response.body.as_bytes()).await?;
    conn.shutdown().await
}
