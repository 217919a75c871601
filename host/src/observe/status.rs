//! The HTTP endpoints of the `health` (/health), `ready` (/ready) and `prometheus` (/metrics)
//! plugins. Listeners are kept by address across reloads, as CoreDNS keeps them; what each
//! address serves, and which plugins must be ready, follow the current Corefile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::corefile::{Directive, Error};
use crate::observe::http::{self, HttpResponse};

/// What `ready` asks of each kubernetai plugin (implemented by the module of a block).
pub trait Readiness: Send + Sync {
    fn ready(&self) -> bool;
}

/// What `ready` waits for: the plugins, and whether it asks one again after it was ready
/// (`monitor continuously`) or takes its first ready as final (`until-ready`, the default).
#[derive(Default)]
pub struct Waited {
    pub plugins: Vec<Arc<dyn Readiness>>,
    pub continuously: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Health,
    Ready,
    Metrics,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Health => "/health",
            Endpoint::Ready => "/ready",
            Endpoint::Metrics => "/metrics",
        }
    }

    fn plugin(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::Ready => "ready",
            Endpoint::Metrics => "prometheus",
        }
    }

    fn default_addr(self) -> &'static str {
        match self {
            Endpoint::Health => ":8080",
            Endpoint::Ready => ":8181",
            Endpoint::Metrics => "localhost:9153",
        }
    }
}

/// The address a directive's endpoint listens on: its argument or the plugin's default, with
/// an empty host meaning every address.
pub fn parse_addr(d: &Directive, endpoint: Endpoint) -> Result<String, Error> {
    let text = match d.arg_texts().as_slice() {
        [] => endpoint.default_addr(),
        [addr] => addr,
        _ => return Err(d.error(format!("{}: takes at most one address", endpoint.plugin()))),
    };
    let addr = if text.starts_with(':') { format!("0.0.0.0{text}") } else { text.to_string() };
    let addr = addr.replace("localhost:", "127.0.0.1:");
    if addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(d.error(format!("{}: {text:?} is not a HOST:PORT address", endpoint.plugin())));
    }
    Ok(addr)
}

/// What the endpoints serve now.
#[derive(Default)]
struct Routes {
    /// Address as configured → endpoints served there.
    at: BTreeMap<String, BTreeSet<Endpoint>>,
    /// The kubernetai plugins `ready` waits for.
    waited: Waited,
    /// Which of them were ready once (`until-ready` asks those no more).
    were_ready: Vec<AtomicBool>,
}

impl Routes {
    fn ready(&self) -> bool {
        self.waited.plugins.iter().zip(&self.were_ready).all(|(p, was)| {
            if !self.waited.continuously && was.load(Ordering::Relaxed) {
                return true;
            }
            let now = p.ready();
            was.store(now, Ordering::Relaxed);
            now
        })
    }
}

#[derive(Default)]
pub struct Status {
    routes: Arc<ArcSwap<Routes>>,
    /// Addresses already listening, as configured.
    bound: Mutex<BTreeSet<String>>,
    /// Shutting down but still answering: /ready fails, as CoreDNS's does in lameduck.
    lameduck: Arc<AtomicBool>,
}

impl Status {
    /// From now on /ready answers 503: the server is going away.
    pub fn enter_lameduck(&self) {
        self.lameduck.store(true, Ordering::Relaxed);
    }

    /// Serves `wanted` from now on, binding the addresses not yet listening.
    pub async fn configure(&self, wanted: &[(String, Endpoint)], waited: Waited) -> anyhow::Result<()> {
        let mut at: BTreeMap<String, BTreeSet<Endpoint>> = BTreeMap::new();
        for (addr, e) in wanted {
            at.entry(addr.clone()).or_default().insert(*e);
        }
        let fresh: Vec<String> = {
            let bound = self.bound.lock().unwrap_or_else(|p| p.into_inner());
            at.keys().filter(|a| !bound.contains(*a)).cloned().collect()
        };
        let mut listeners = Vec::new();
        for addr in fresh {
            let listener = TcpListener::bind(&addr).await.map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
            listeners.push((addr, listener));
        }
        let were_ready = waited.plugins.iter().map(|_| AtomicBool::new(false)).collect();
        self.routes.store(Arc::new(Routes { at: at.clone(), waited, were_ready }));
        for (addr, listener) in listeners {
            let local = listener.local_addr()?;
            for e in &at[&addr] {
                println!("[INFO] plugin/{}: serving {} on http://{local}{}", e.plugin(), e.path(), e.path());
            }
            self.bound.lock().unwrap_or_else(|p| p.into_inner()).insert(addr.clone());
            let routes = self.routes.clone();
            let lameduck = self.lameduck.clone();
            let handler: http::Handler = Arc::new(move |request: http::HttpRequest| {
                let path = request.path;
                let routes = routes.load_full();
                let addr = addr.clone();
                let lameduck = lameduck.load(Ordering::Relaxed);
                Box::pin(async move {
                    let started = std::time::Instant::now();
                    let response = respond(&routes, &addr, &path, lameduck);
                    if path == Endpoint::Health.path() {
                        let took = started.elapsed().as_secs_f64();
                        crate::observe::metrics::registry().observe(
                            "coredns_health_request_duration_seconds",
                            &[],
                            took,
                        );
                    }
                    response
                })
            });
            tokio::spawn(http::serve(listener, "status", http::Accepts::default(), handler));
        }
        Ok(())
    }
}

fn respond(routes: &Routes, addr: &str, path: &str, lameduck: bool) -> HttpResponse {
    let served = routes.at.get(addr);
    let endpoint = [Endpoint::Health, Endpoint::Ready, Endpoint::Metrics]
        .into_iter()
        .find(|e| e.path() == path && served.is_some_and(|s| s.contains(e)));
    match endpoint {
        Some(Endpoint::Health) => HttpResponse::text(200, "OK"),
        Some(Endpoint::Ready) if lameduck => HttpResponse::text(503, "lameduck"),
        Some(Endpoint::Ready) => {
            if routes.ready() {
                HttpResponse::text(200, "OK")
            } else {
                // CoreDNS lists the plugins that are not ready yet.
                HttpResponse::text(503, "kubernetai")
            }
        }
        Some(Endpoint::Metrics) => HttpResponse {
            status: 200,
            body: crate::observe::metrics::registry().render(),
            content_type: "text/plain; version=0.0.4; charset=utf-8",
        },
        None => HttpResponse::text(404, "404 page not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin whose readiness the test sets.
    struct Flag(AtomicBool);

    impl Readiness for Flag {
        fn ready(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn until_ready_keeps_a_first_ready_and_continuously_asks_again() {
        for continuously in [false, true] {
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let routes = Routes {
                at: BTreeMap::new(),
                waited: Waited { plugins: vec![flag.clone()], continuously },
                were_ready: vec![AtomicBool::new(false)],
            };
            assert!(!routes.ready());
            flag.0.store(true, Ordering::Relaxed);
            assert!(routes.ready());
            flag.0.store(false, Ordering::Relaxed);
            assert_eq!(routes.ready(), !continuously, "continuously = {continuously}");
        }
    }
}
