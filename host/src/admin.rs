//! The admin endpoint: plain HTTP, bound to localhost by default (`-admin ADDR`, `-admin none`
//! to turn it off). `POST /module/swap` swaps the module as SIGHUP does and answers with the
//! outcome: 200 and "module swapped…", or 409 and the step that refused the candidate.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::swap;

/// The default address: reachable from this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9155";

pub async fn serve(listener: TcpListener, swaps: mpsc::Sender<swap::Request>) {
    while let Ok((conn, _)) = listener.accept().await {
        let swaps = swaps.clone();
        tokio::spawn(async move {
            if let Err(e) = request(conn, swaps).await {
                eprintln!("[WARNING] admin: {e}");
            }
        });
    }
}

async fn request(conn: TcpStream, swaps: mpsc::Sender<swap::Request>) -> std::io::Result<()> {
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
    let (status, body) = match (words.next(), words.next()) {
        (Some("POST"), Some("/module/swap")) => {
            let (tx, rx) = oneshot::channel();
            match swaps.send(tx).await {
                Err(_) => (503, "swaps are not running\n".to_string()),
                Ok(()) => match rx.await {
                    Ok(Ok(text)) => (200, format!("{text}\n")),
                    Ok(Err(text)) => (409, format!("{text}\n")),
                    Err(_) => (503, "the swap was dropped\n".to_string()),
                },
            }
        }
        (Some(_), Some("/module/swap")) => (405, "use POST\n".to_string()),
        _ => (404, "not found; POST /module/swap\n".to_string()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Service Unavailable",
    };
    let mut conn = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}
