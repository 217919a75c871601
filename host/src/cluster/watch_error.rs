//! What went wrong talking to an API server, said the way an operator needs it: the whole cause
//! chain on one line (kube-rs wraps the real cause — an unknown certificate authority, a refused
//! connection, a 403 with the API server's message — several layers deep), one of a few fixed
//! reasons for the `kubernetai_watch_errors_total{stanza,reason}` metric, and a limit on how
//! often one stanza's watch logs while it keeps failing.

use std::time::{Duration, Instant};

/// The reasons a watch fails, as the metric labels them.
pub const REASONS: [&str; 7] = ["tls", "connect", "timeout", "unauthorized", "forbidden", "gone", "other"];

/// `error` and every error under it, outermost first, joined by ": ", with each layer that only
/// repeats the one under it left out.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        // A layer whose text ends with its cause's adds nothing but its own prefix.
        if let Some(last) = parts.last_mut()
            && let Some(prefix) = last.strip_suffix(&text)
        {
            *last = prefix.trim_end_matches([':', ' ']).to_string();
        }
        parts.push(text);
        next = e.source();
    }
    parts.retain(|p| !p.is_empty());
    parts.join(": ")
}

/// The fixed reason of a failure, read from its cause chain.
pub fn reason(chain: &str) -> &'static str {
    let text = chain.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["certificate", "tls", "handshake", "unknownissuer", "invalidcertificate", "notvalidforname"]) {
        "tls"
    } else if has(&["401", "unauthorized"]) {
        "unauthorized"
    } else if has(&["403", "forbidden"]) {
        "forbidden"
    } else if has(&["410", "gone", "too old resource version", "expired"]) {
        "gone"
    } else if has(&["timed out", "timeout", "deadline"]) {
        "timeout"
    } else if has(&["connect", "refused", "unreachable", "reset by peer", "dns error", "broken pipe"]) {
        "connect"
    } else {
        "other"
    }
}

/// How often one watch logs while it keeps failing: the first failure at once, then at most one
/// line per period saying how many were left out.
pub struct Throttle {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    pub fn new(period: Duration) -> Self {
        Throttle { period, last: None, held: 0 }
    }

    /// Whether to log now, and how many failures were held back since the last line.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < self.period) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_cause_chain_is_one_line_and_names_its_reason() {
        let e = Layer(
            "failed to perform initial object list",
            Some(Box::new(Layer(
                "ServiceError: client error (Connect)",
                Some(Box::new(Layer("invalid peer certificate: UnknownIssuer", None))),
            ))),
        );
        let text = chain(&e);
        assert_eq!(
            text,
            "failed to perform initial object list: ServiceError: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(reason(&text), "tls");
        assert!(REASONS.contains(&reason(&text)));
        assert_eq!(reason("error trying to connect: tcp connect error: Connection refused (os error 111)"), "connect");
        assert_eq!(reason("ApiError: forbidden: User \"x\" cannot list resource \"pods\" (403)"), "forbidden");
        assert_eq!(reason("ApiError: Unauthorized (401)"), "unauthorized");
        assert_eq!(reason("watch stream failed: too old resource version: 1 (2) (410)"), "gone");
        assert_eq!(reason("operation timed out"), "timeout");
        assert_eq!(reason("something else"), "other");
        let repeated = Layer("outer: inner", Some(Box::new(Layer("inner", None))));
        assert_eq!(chain(&repeated), "outer: inner");
    }

    #[test]
    fn a_failing_watch_logs_once_a_period() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.admit(start), Some(0));
        assert_eq!(t.admit(start + Duration::from_secs(1)), None);
        assert_eq!(t.admit(start + Duration::from_secs(2)), None);
        assert_eq!(t.admit(start + Duration::from_secs(11)), Some(2));
    }
}
