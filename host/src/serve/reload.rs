//! The `reload` plugin: the Corefile is checked every interval (with jitter, so replicas do not
//! reload in step) and, when its text changed, read again and put in place. A Corefile that does
//! not parse, or whose servers cannot start, is refused: the running configuration keeps serving.

use std::path::Path;
use std::time::Duration;

use crate::corefile::args::parse_duration;
use crate::corefile::{Directive, Error};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_JITTER: Duration = Duration::from_secs(15);
const MIN_INTERVAL: Duration = Duration::from_secs(2);
const MIN_JITTER: Duration = Duration::from_secs(1);

/// Parses `reload [INTERVAL] [JITTER]`.
pub fn parse(d: &Directive) -> Result<(Duration, Duration), Error> {
    let args = d.arg_texts();
    if args.len() > 2 || d.block.is_some() {
        return Err(d.error("reload: takes [INTERVAL] [JITTER]"));
    }
    let duration = |t: &str| parse_duration(t).ok_or_else(|| d.error(format!("reload: invalid duration {t:?}")));
    let interval = args.first().map_or(Ok(DEFAULT_INTERVAL), |t| duration(t))?;
    if interval < MIN_INTERVAL {
        return Err(d.error(format!(
            "reload: interval value must be greater or equal to {}",
            crate::corefile::args::go_duration(MIN_INTERVAL)
        )));
    }
    let jitter = args.get(1).map_or(Ok(DEFAULT_JITTER), |t| duration(t))?;
    if !jitter.is_zero() && jitter < MIN_JITTER {
        return Err(d.error(format!(
            "reload: jitter value must be 0 or greater or equal to {}",
            crate::corefile::args::go_duration(MIN_JITTER)
        )));
    }
    Ok((interval, jitter.min(interval / 2)))
}

/// The wait before the next check: the interval moved by up to half the jitter either way.
pub fn next_wait(interval: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return interval;
    }
    let span = jitter.as_millis() as u64;
    let offset = crate::random::below(span) as i64 - (span / 2) as i64;
    Duration::from_millis((interval.as_millis() as i64 + offset).max(0) as u64)
}

/// The Corefile's text, compared between checks (CoreDNS compares a hash of it).
pub fn fingerprint(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}
