//! Just enough HTTP/1.1 for the endpoints this server exposes (admin, health, ready, metrics):
//! one request per connection, no request bodies, a text answer.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

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
}

/// Answers a request from its method and path.
pub type Handler = Arc<dyn Fn(String, String) -> BoxFuture<'static, Response> + Send + Sync>;

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, name: &'static str, handler: Handler) {
    while let Ok((conn, _)) = listener.accept().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = request(conn, handler).await {
                eprintln!("[WARNING] {name}: {e}");
            }
        });
    }
}

async fn request(conn: TcpStream, handler: Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    // Headers are read and ignored; no request here carries a body.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or_default().to_string(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default().to_string();
    let response = handler(method, path).await;
    let reason = match response.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
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
