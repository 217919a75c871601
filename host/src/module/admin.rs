//! The admin endpoint: plain HTTP, bound to localhost by default (`-admin ADDR`, `-admin none`
//! to turn it off). Module operations, each answered with its outcome (200, or 409 and the step
//! that refused the candidate):
//! - `POST /module/swap` swaps the module as SIGHUP does;
//! - `POST /module/shadow` starts shadowing a candidate (body: a module file's path, the module's
//!   bytes, or nothing for what `-module` names); `DELETE` ends it; `GET` reports it as JSON;
//! - `POST /module/promote` makes the shadowing candidate the running module.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::module::swap::{Candidate, Command, Request};
use crate::observe::http::{self, Response};

/// The default address: reachable from this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9155";

/// The largest module accepted in a request body.
const MAX_MODULE: usize = 64 << 20;

const ROUTES: &str = "POST /module/swap, POST|GET|DELETE /module/shadow, POST /module/promote";

pub async fn serve(listener: TcpListener, requests: mpsc::Sender<Request>) {
    let handler: http::Handler = Arc::new(move |request: http::Request| {
        let requests = requests.clone();
        Box::pin(async move {
            let command = match (request.method.as_str(), request.path.as_str()) {
                ("POST", "/module/swap") => Command::Swap,
                ("POST", "/module/shadow") => Command::Shadow(candidate(request.body)),
                ("DELETE", "/module/shadow") => Command::Unshadow,
                ("GET", "/module/shadow") => Command::Report,
                ("POST", "/module/promote") => Command::Promote,
                (_, "/module/swap" | "/module/shadow" | "/module/promote") => {
                    return Response::text(405, format!("method not allowed; {ROUTES}\n"));
                }
                _ => return Response::text(404, format!("not found; {ROUTES}\n")),
            };
            let report = matches!(command, Command::Report);
            let (tx, rx) = oneshot::channel();
            if requests.send((command, tx)).await.is_err() {
                return Response::text(503, "module operations are not running\n");
            }
            match rx.await {
                Ok(Ok(json)) if report => Response::json(200, format!("{json}\n")),
                Ok(Ok(text)) => Response::text(200, format!("{text}\n")),
                Ok(Err(text)) if report => Response::text(404, format!("{text}\n")),
                Ok(Err(text)) => Response::text(409, format!("{text}\n")),
                Err(_) => Response::text(503, "the request was dropped\n"),
            }
        })
    });
    http::serve(listener, "admin", MAX_MODULE, handler).await
}

/// A shadow request's body: a component (binary, or WAT text) or the path of one; nothing names
/// the `-module` source.
fn candidate(body: Vec<u8>) -> Candidate {
    let text = std::str::from_utf8(&body).map(str::trim).unwrap_or_default();
    if body.starts_with(b"\0asm") || text.starts_with("(component") {
        Candidate::Bytes(body)
    } else if text.is_empty() && body.is_empty() {
        Candidate::Source
    } else if text.is_empty() {
        // Bytes that are neither UTF-8 nor wasm: the compiler says why it refuses them.
        Candidate::Bytes(body)
    } else {
        Candidate::Path(PathBuf::from(text))
    }
}
