//! DNS over UDP: one worker thread per core, each on its own SO_REUSEPORT socket (the kernel
//! spreads queries over them), reading and answering in batches (`udp_batch`). A query the
//! chain answers without waiting is answered on the worker's thread; one that must wait
//! (forward) goes on as a task of the runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::dns::Proto;
use crate::observe::metrics;
use crate::serve::router::{Current, First};
use crate::serve::udp_batch::{BATCH, Inbox, Outbox};

/// How often an idle UDP worker checks whether it should stop.
const UDP_STOP_CHECK: Duration = Duration::from_millis(200);

/// Serves UDP on `socket` from a thread of its own (one per core, each on its own SO_REUSEPORT
/// socket, so the kernel spreads queries over them) until `stop` is set. A query the chain
/// answers without waiting — every answer of the module, every cache hit — is answered on this
/// thread with no task and no hand-off; one that must wait (forward) goes on as a task of the
/// runtime, and is answered from there.
pub fn worker(
    socket: std::net::UdpSocket,
    router: Current,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    crate::module::block::off_runtime_thread();
    // Tokio's sockets and timers made by the chain (forward) need the runtime's context.
    let _context = runtime.enter();
    if let Err(e) = socket.set_read_timeout(Some(UDP_STOP_CHECK)) {
        println!("[WARNING] udp worker: {e}");
    }
    let mut inbox = Inbox::default();
    let mut outbox = Outbox::default();
    let waker = futures::task::noop_waker();
    while !stop.load(Ordering::Relaxed) {
        match inbox.recv(&socket) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems: not fatal.
                println!("[WARNING] udp receive: {e}");
                continue;
            }
        }
        let current = router.load_full();
        for i in 0..BATCH {
            let Some((packet, peer, truncated)) = inbox.get(i) else {
                break;
            };
            if truncated {
                // Larger than any query: counted as dropped, as the router would count it.
                current.counters.queries.fetch_add(1, Ordering::Relaxed);
                current.counters.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::screened("oversized");
                continue;
            }
            let from = outbox.bytes.len();
            let pending = match current.answer_first(packet, peer, Proto::Udp, &mut outbox.bytes) {
                First::Answered => {
                    outbox.commit(from, peer);
                    continue;
                }
                First::Dropped => continue,
                First::Chain(pending) => pending,
            };
            // Only a query the chain must see is copied and made a task.
            let (packet, router) = (packet.to_vec(), current.clone());
            let mut answering =
                Box::pin(async move { router.answer_full(&packet, peer, Proto::Udp, pending).await });
            match answering.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
                std::task::Poll::Ready(answers) => answers.iter().for_each(|a| outbox.push(a, peer)),
                std::task::Poll::Pending => {
                    // Out of descriptors: this query's answer has no socket to leave by.
                    let Ok(sender) = socket.try_clone() else {
                        metrics::screened("udp_no_socket");
                        continue;
                    };
                    // Spawning polls it again at once, with the task's own waker.
                    runtime.spawn(async move {
                        let messages = answering.await;
                        let mut answers = Outbox::default();
                        messages.iter().for_each(|a| answers.push(a, peer));
                        answers.send(&sender);
                    });
                }
            }
        }
        outbox.send(&socket);
    }
}

/// `count` UDP sockets on `addr` sharing its port with SO_REUSEPORT; port 0 picks one free port
/// for all of them.
pub fn reuseport_sockets(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut addr = addr;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        let bound: std::net::UdpSocket = socket.into();
        addr = bound.local_addr()?;
        out.push(bound);
    }
    Ok(out)
}

