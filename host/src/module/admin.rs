//! The admin endpoint: plain HTTP, bound to localhost by default (`-admin ADDR`, `-admin none`
//! to turn it off), optionally behind a bearer token (`-admin.token FILE`). Module operations,
//! each answered with its outcome (200, or 409 and the step that refused the candidate):
//! - `POST /module/swap` swaps the module as SIGHUP does;
//! - `POST /module/shadow` starts shadowing a candidate: the body is the module's bytes (a
//!   binary component; its minisign signature, base64, in the `Kubernetai-Minisig` header), or
//!   empty for what `-module` names; `DELETE` ends it; `GET` reports it as JSON;
//! - `POST /module/promote` makes the shadowing candidate the running module.
//!
//! The endpoint never reads a path a request names: what it compiles arrives in the request or
//! is the configured source, and a refusal is reported in this host's words, never by quoting
//! the candidate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::file_stamp::FileStamp;
use crate::module::bounded::MAX_MODULE;
use crate::module::source::Fetched;
use crate::module::swap::{Candidate, Command, Request};
use crate::observe::http::{self, HttpResponse};

/// The default address: reachable from this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9155";
/// The header carrying a posted module's `.minisig` file, base64-encoded.
pub const SIGNATURE_HEADER: &str = "kubernetai-minisig";
/// A token file is a few dozen bytes; a Secret key holds at most 1 MiB.
const MAX_TOKEN: u64 = 4096;

const ROUTES: &str = "POST /module/swap, POST|GET|DELETE /module/shadow, POST /module/promote";

/// `-admin.token FILE`: the token a request must present, re-read when the file changes (a
/// rotated Secret), and compared in constant time.
pub struct Token {
    file: PathBuf,
    /// The file's stamp when read, and the SHA-256 of the token it held.
    held: Mutex<(Option<FileStamp>, [u8; 32])>,
}

impl Token {
    /// Reads the token file; an unreadable or empty one stops the start.
    pub fn read(file: &Path) -> Result<Token, String> {
        let stamp = FileStamp::of(file);
        let digest = Self::digest_of(file).map_err(|e| format!("-admin.token {}: {e}", file.display()))?;
        Ok(Token { file: file.to_path_buf(), held: Mutex::new((stamp, digest)) })
    }

    fn digest_of(file: &Path) -> Result<[u8; 32], String> {
        let bytes = crate::module::bounded::read_bounded(file, MAX_TOKEN).map_err(|e| e.to_string())?;
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err("the file holds no token".to_string());
        }
        Ok(sha256(token))
    }

    /// Whether `headers` carry `Authorization: Bearer TOKEN` with the token the file holds now.
    pub fn admits(&self, headers: &[(String, String)]) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = FileStamp::of(&self.file);
        if now != held.0 {
            match Self::digest_of(&self.file) {
                Ok(digest) => {
                    *held = (now, digest);
                    println!("[INFO] admin: the token in {} changed; the new one is in force", self.file.display());
                }
                // Kept until a readable token replaces it: a half-updated Secret opens nothing.
                Err(e) => println!(
                    "[WARNING] admin: -admin.token {}: {e}; the previous token stays in force",
                    self.file.display()
                ),
            }
        }
        let presented = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .and_then(|(_, v)| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        // Comparing digests keeps the length out of the timing; the fold looks at every byte.
        presented
            .is_some_and(|p| sha256(p.as_bytes()).iter().zip(held.1.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

pub async fn serve(listener: TcpListener, token: Option<Arc<Token>>, requests: mpsc::Sender<Request>) {
    let handler: http::Handler = Arc::new(move |request: http::HttpRequest| {
        let requests = requests.clone();
        Box::pin(async move {
            let route = (request.method.clone(), request.path.clone());
            let command = match (route.0.as_str(), route.1.as_str()) {
                ("POST", "/module/shadow") => match candidate(request) {
                    Ok(candidate) => Command::Shadow(candidate),
                    Err(why) => return HttpResponse::text(409, format!("shadow refused, nothing changed: {why}\n")),
                },
                ("POST", "/module/swap") => Command::Swap,
                ("DELETE", "/module/shadow") => Command::Unshadow,
                ("GET", "/module/shadow") => Command::Report,
                ("POST", "/module/promote") => Command::Promote,
                (_, "/module/swap" | "/module/shadow" | "/module/promote") => {
                    return HttpResponse::text(405, format!("method not allowed; {ROUTES}\n"));
                }
                _ => return HttpResponse::text(404, format!("not found; {ROUTES}\n")),
            };
            let report = matches!(command, Command::Report);
            let (tx, rx) = oneshot::channel();
            if requests.send((command, tx)).await.is_err() {
                return HttpResponse::text(503, "module operations are not running\n");
            }
            match rx.await {
                Ok(Ok(json)) if report => HttpResponse::json(200, format!("{json}\n")),
                Ok(Ok(text)) => HttpResponse::text(200, format!("{text}\n")),
                Ok(Err(text)) if report => HttpResponse::text(404, format!("{text}\n")),
                Ok(Err(text)) => HttpResponse::text(409, format!("{text}\n")),
                Err(_) => HttpResponse::text(503, "the request was dropped\n"),
            }
        })
    });
    let gate = token.map(|t| -> http::Gate { Arc::new(move |headers: &[(String, String)]| t.admits(headers)) });
    http::serve(listener, "admin", http::Accepts { max_body: MAX_MODULE as usize, gate }, handler).await
}

/// A shadow request's candidate: its body's bytes, or what `-module` names when it has none.
fn candidate(request: http::HttpRequest) -> Result<Candidate, String> {
    if request.body.is_empty() {
        return Ok(Candidate::Source);
    }
    let signature = match request.header(SIGNATURE_HEADER) {
        None => None,
        Some(b64) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| format!("the {SIGNATURE_HEADER} header is not base64"))?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|_| format!("the {SIGNATURE_HEADER} header is not a .minisig text"))?,
            )
        }
    };
    let origin = format!("the module posted ({} bytes)", request.body.len());
    Ok(Candidate::Posted(Fetched::new(request.body, signature, origin)))
}
