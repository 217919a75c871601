//! Just enough HTTP/1.1 for the endpoints this server exposes (admin, health, ready, metrics):
//! one request per connection, a body only where the listener takes one (the admin endpoint's
//! module uploads), a text or JSON answer. Bounded, because a probe port
//! is reachable by anything in the pod network: a request's head (request line and headers) is
//! at most [`MAX_HEAD`] bytes and must arrive within [`READ_TIMEOUT`], and at most
//! [`MAX_CONNECTIONS`] are served at once per listener (more are closed at once).

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
    /// Empty unless the listener takes bodies.
    pub body: Vec<u8>,
}

/// Answers a request.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// How long a client may take to send a body once its head has arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` until the task is dropped; request bodies are refused (413) unless
/// `max_body` is above zero, and bodies larger than it always are.
pub async fn serve(listener: TcpListener, name: &'static str, max_body: usize, handler: Handler) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    while let Ok((conn, _)) = listener.accept().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::observe::metrics::screened("http_connections");
            drop(conn);
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = request(conn, max_body, handler).await {
                println!("[WARNING] {name}: {e}");
            }
            drop(slot);
        });
    }
}

/// What became of reading a request's head.
enum Head {
    /// The request line and the body's announced length.
    Read(String, usize),
    TooLarge,
}

/// Reads the request line, and the headers up to the blank line (only Content-Length is read),
/// within [`MAX_HEAD`] bytes.
async fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Head> {
    let mut bounded = reader.take(MAX_HEAD);
    let mut line = String::new();
    let mut length = 0;
    bounded.read_line(&mut line).await?;
    loop {
        if !line.ends_with('\n') {
            return Ok(if bounded.limit() == 0 { Head::TooLarge } else { Head::Read(line, length) });
        }
        let mut header = String::new();
        if bounded.read_line(&mut header).await? == 0 {
            return Ok(if bounded.limit() == 0 { Head::TooLarge } else { Head::Read(line, length) });
        }
        if header.trim().is_empty() {
            return Ok(Head::Read(line, length));
        }
        if !header.ends_with('\n') && bounded.limit() == 0 {
            return Ok(Head::TooLarge);
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            // An unreadable length is as good as a huge one: refused below.
            length = value.trim().parse().unwrap_or(usize::MAX);
        }
    }
}

async fn request(conn: TcpStream, max_body: usize, handler: Handler) -> std::io::Result<()> {
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
        Ok(Ok(Head::Read(_, length))) if length > max_body => {
            crate::observe::metrics::screened("http_too_large");
            Response::text(413, format!("request body too large (at most {max_body} bytes here)\n"))
        }
        Ok(Ok(Head::Read(line, length))) => {
            let mut words = line.split_whitespace();
            let (method, target) = (words.next().unwrap_or_default().to_string(), words.next().unwrap_or_default());
            let path = target.split('?').next().unwrap_or_default().to_string();
            let mut body = vec![0; length];
            match tokio::time::timeout(BODY_TIMEOUT, reader.read_exact(&mut body)).await {
                Ok(Ok(_)) => handler(Request { method, path, body }).await,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    crate::observe::metrics::screened("http_timeout");
                    return Ok(());
                }
            }
        }
    };
    let reason = match response.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut conn = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(response.body.as_bytes()).await?;
    conn.shutdown().await
}
