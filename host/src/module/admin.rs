//! The admin endpoint: plain HTTP, bound to localhost by default (`-admin ADDR`, `-admin none`
//! to turn it off). `POST /module/swap` swaps the module as SIGHUP does and answers with the
//! outcome: 200 and "module swapped…", or 409 and the step that refused the candidate.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::module::swap;
use crate::observe::http::{self, Response};

/// The default address: reachable from this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9155";

pub async fn serve(listener: TcpListener, swaps: mpsc::Sender<swap::Request>) {
    let handler: http::Handler = Arc::new(move |method, path| {
        let swaps = swaps.clone();
        Box::pin(async move {
            match (method.as_str(), path.as_str()) {
                ("POST", "/module/swap") => {
                    let (tx, rx) = oneshot::channel();
                    if swaps.send(tx).await.is_err() {
                        return Response::text(503, "swaps are not running\n");
                    }
                    match rx.await {
                        Ok(Ok(text)) => Response::text(200, format!("{text}\n")),
                        Ok(Err(text)) => Response::text(409, format!("{text}\n")),
                        Err(_) => Response::text(503, "the swap was dropped\n"),
                    }
                }
                (_, "/module/swap") => Response::text(405, "use POST\n"),
                _ => Response::text(404, "not found; POST /module/swap\n"),
            }
        })
    });
    http::serve(listener, "admin", handler).await
}
