//! The listening sockets, kept by the address the Corefile asks for so a reload keeps serving
//! on them: bound (UDP per worker with SO_REUSEPORT, and TCP, on one port), pointed at the
//! router of the running configuration, and closed when a configuration no longer needs them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::serve::router::Current;
use crate::serve::running::{ListenKey, Running};
use crate::serve::{tcp, udp};

/// The sockets, kept by the address the Corefile asks for, so a reload keeps serving on them.
#[derive(Default)]
pub struct Listeners {
    open: BTreeMap<ListenKey, Listener>,
}

struct Listener {
    local: SocketAddr,
    router: Current,
    tasks: Vec<tokio::task::AbortHandle>,
    /// Tells the UDP worker threads to stop.
    stop: Arc<AtomicBool>,
    /// Bound but not yet serving (a reload binds first, then switches).
    pending: Option<(Vec<std::net::UdpSocket>, TcpListener)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::AbortHandle::abort);
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// UDP worker threads per listening address: one per core.
fn udp_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Listeners {
    /// Binds the addresses `instance` needs that are not open yet.
    pub async fn bind_missing(&mut self, instance: &Running) -> anyhow::Result<()> {
        for (key, router) in &instance.routers {
            if self.open.contains_key(key) {
                continue;
            }
            let (udp, tcp) = bind_pair(SocketAddr::new(key.0, key.1), udp_workers()).await?;
            let local = udp[0].local_addr()?;
            let router = Arc::new(arc_swap::ArcSwap::new(router.clone()));
            let stop = Arc::new(AtomicBool::new(false));
            self.open.insert(*key, Listener { local, router, tasks: vec![], stop, pending: Some((udp, tcp)) });
        }
        Ok(())
    }

    /// Points every listener `instance` needs at its router, serving new ones, and closes the
    /// ones it does not need.
    pub async fn serve(&mut self, instance: &Running) -> anyhow::Result<()> {
        self.bind_missing(instance).await?;
        self.open.retain(|key, _| instance.routers.contains_key(key));
        for (key, router) in &instance.routers {
            let Some(l) = self.open.get_mut(key) else {
                continue;
            };
            l.router.store(router.clone());
            let Some((udp, tcp)) = l.pending.take() else {
                continue;
            };
            println!("[INFO] listening on udp+tcp {}", l.local);
            for socket in udp {
                let (router, runtime, stop) = (l.router.clone(), tokio::runtime::Handle::current(), l.stop.clone());
                std::thread::Builder::new()
                    .name("udp".into())
                    .spawn(move || udp::worker(socket, router, runtime, stop))
                    .context("starting a udp worker")?;
            }
            l.tasks.push(tokio::spawn(tcp::serve(tcp, l.router.clone())).abort_handle());
        }
        Ok(())
    }

    /// Tells each block's plugins that its first address listens (the `loop` probe goes there).
    pub fn probe_loops(&self, instance: &Running) {
        for (key, chain) in &instance.listening {
            let Some(l) = self.open.get(key) else {
                continue;
            };
            let ip = if l.local.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { l.local.ip() };
            for plugin in chain.iter() {
                plugin.listening(SocketAddr::new(ip, l.local.port()));
            }
        }
    }
}

/// One SO_REUSEPORT UDP socket per UDP worker and a TCP listener, on the same address. Port 0
/// picks a port free for both.
async fn bind_pair(addr: SocketAddr, workers: usize) -> anyhow::Result<(Vec<std::net::UdpSocket>, TcpListener)> {
    let mut last_err = None;
    for _ in 0..20 {
        let udp = udp::reuseport_sockets(addr, workers).with_context(|| format!("binding udp {addr}"))?;
        let port = udp[0].local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // With port 0 the TCP side of a free UDP port may be taken: try another.
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e).with_context(|| format!("binding tcp {addr}")),
        }
    }
    bail!("no port free for both udp and tcp on {}: {:?}", addr.ip(), last_err)
}

