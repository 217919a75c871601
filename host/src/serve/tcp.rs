//! DNS over TCP: accepting connections (retrying when accept fails, as when descriptors run
//! out), and several length-framed queries per connection within CoreDNS's time bounds and our
//! own bounds on connections and queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::dns::Proto;
use crate::observe::metrics;
use crate::serve::router::Current;

/// TCP bounds. Idle, read and write times are CoreDNS's defaults: a connection waiting this long
/// for the next query is closed, a query must arrive whole within the read time once its length
/// has, and a client that does not take its answer within the write time is dropped. CoreDNS sets
/// no bound on connections or on queries per connection; we do, so a client cannot hold the
/// server's memory or one connection forever.
const TCP_IDLE: Duration = Duration::from_secs(10);
const TCP_READ: Duration = Duration::from_secs(3);
const TCP_WRITE: Duration = Duration::from_secs(5);
/// Connections open at once per listener; past this, new ones are closed at once and counted.
pub const TCP_MAX_CONNECTIONS: usize = 1024;
/// Queries answered on one connection before the server closes it (the client reconnects).
pub const TCP_MAX_QUERIES: usize = 1000;

/// Serves TCP on `listener`: several length-framed queries per connection, within the bounds above.
pub async fn serve(listener: TcpListener, router: Current) {
    let slots = Arc::new(tokio::sync::Semaphore::new(TCP_MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    router.load().counters.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                    metrics::screened("tcp_connections");
                    drop(stream);
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    connection(stream, peer, router).await;
                    drop(slot);
                });
            }
            Err(e) => {
                metrics::screened("tcp_accept_error");
                println!("[WARNING] tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, router: Current) {
    let mut buf = Vec::new();
    for _ in 0..TCP_MAX_QUERIES {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len[..1])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        match tokio::time::timeout(TCP_READ, stream.read_exact(&mut len[1..])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(TCP_READ, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let answers = router.load_full().answer(&buf, peer, Proto::Tcp).await;
        let mut framed = Vec::new();
        for answer in answers {
            let Ok(len) = u16::try_from(answer.len()) else {
                return;
            };
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&answer);
        }
        match tokio::time::timeout(TCP_WRITE, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
