//! The server's own totals, printed on one line when it stops (and on SIGQUIT).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the server counted, printed when it stops.
#[derive(Default)]
pub struct Counters {
    pub queries: AtomicU64,
    pub answered: AtomicU64,
    pub formerr: AtomicU64,
    pub dropped: AtomicU64,
    pub servfail: AtomicU64,
    /// Module swaps carried out, and candidates refused.
    pub swaps: AtomicU64,
    pub refused: AtomicU64,
    /// TCP connections closed at once because the listener had its maximum open.
    pub tcp_rejected: AtomicU64,
}

impl Counters {
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "queries={} answered={} formerr={} dropped={} servfail={} swaps={} refused={} tcp_rejected={}",
            g(&self.queries),
            g(&self.answered),
            g(&self.formerr),
            g(&self.dropped),
            g(&self.servfail),
            g(&self.swaps),
            g(&self.refused),
            g(&self.tcp_rejected)
        )
    }
}
