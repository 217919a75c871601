//! Shadowing: a candidate module runs beside the serving one, fed the same events, and answers a
//! sample of live queries off the serving path, on a thread of its own, after the running
//! module's answer is already on its way. Its answers are compared with the running module's
//! (`dns::compare`), counted by kind and shown; it answers nobody. A candidate that traps, loops
//! or runs out of memory is contained by the sandbox and dropped from shadowing; the clients
//! never wait for it.
//!
//! A [`Session`] is one candidate across every server block: its settings, counters and the last
//! differences. Each block's plugin holds a [`ShadowInstance`]: the candidate's instance for that block.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::dns::compare::{self, Difference};
use crate::module::{Instance, Module, ModuleError, wit};
use crate::observe::metrics::registry;

/// How a shadow samples and when it promotes itself.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The share of the kubernetai plugin's queries the candidate also answers, 0 < rate ≤ 1.
    pub rate: f64,
    /// Promote after this many shadowed queries without a difference.
    pub promote_after: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { rate: 0.1, promote_after: None }
    }
}

/// `-module.shadow-rate`: `10%`, `100%` or a fraction such as `0.25`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    };
    value
        .ok()
        .filter(|r| *r > 0.0 && *r <= 1.0)
        .ok_or_else(|| format!("invalid -module.shadow-rate {text:?} (above 0%, at most 100%)"))
}

/// Sampled queries waiting for the candidate; past this the candidate is behind and the query
/// is counted as skipped, never queued without bound.
const QUEUE: usize = 4096;
/// How often the comparing thread takes the waiting queries. Serving threads only push onto a
/// list: waking a thread per sampled query cost more than the candidate's answer did.
const COLLECT_EVERY: Duration = Duration::from_millis(2);
/// Differences kept for `GET /module/shadow`.
const KEPT: usize = 20;
/// The first differences of each kind are logged; after that one per kind per minute.
const LOG_FIRST: u64 = 3;
const LOG_EVERY: Duration = Duration::from_secs(60);

const ACTIVE: u8 = 0;
const ENDED: u8 = 1;
const FAILED: u8 = 2;
const PROMOTED: u8 = 3;

/// One difference, as shown in the log and the report.
#[derive(Clone, Debug)]
pub struct Shown {
    pub query: String,
    pub kinds: Vec<Difference>,
    pub running: String,
    pub candidate: String,
}

/// A candidate module shadowing the running one in every server block.
pub struct Session {
    pub module: Module,
    /// Where the candidate came from, for the log and the report.
    pub origin: String,
    pub settings: Settings,
    started: Instant,
    state: AtomicU8,
    /// Offline (`module diff`): wait for the candidate instead of skipping a query.
    blocking: bool,
    /// Sampled queries waiting for the comparing thread.
    jobs: Arc<Mutex<Vec<Job>>>,
    /// Queries offered to the sampler; sampled and compared; sampled but skipped.
    seen: AtomicU64,
    compared: AtomicU64,
    skipped: AtomicU64,
    differing: AtomicU64,
    /// Sampled queries not yet compared.
    pending: AtomicU64,
    by_kind: [AtomicU64; Difference::ALL.len()],
    kept: Mutex<VecDeque<Shown>>,
    keep: usize,
    logged: Mutex<[(u64, Option<Instant>); Difference::ALL.len()]>,
    failure: Mutex<Option<String>>,
    /// Whether automatic promotion was cancelled by a difference, or already asked for.
    promotion_cancelled: AtomicBool,
    promotion_asked: AtomicBool,
    /// Asks for the promotion when `promote_after` clean queries were shadowed.
    promote: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

/// A sampled query on its way to the candidate.
struct Job {
    candidate: Arc<ShadowInstance>,
    query: wit::Query,
    running: wit::Outcome,
}

impl Session {
    /// A session for `module`; its comparing thread runs until the session is dropped. `promote`
    /// is called once when automatic promotion is due.
    pub fn new(
        module: Module,
        origin: String,
        settings: Settings,
        promote: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    ) -> Result<Arc<Session>, ModuleError> {
        Self::build(module, origin, settings, promote, false, KEPT)
    }

    /// A session that waits for the candidate on every query and keeps every difference, for
    /// comparing modules offline.
    pub fn offline(module: Module, origin: String) -> Result<Arc<Session>, ModuleError> {
        Self::build(module, origin, Settings { rate: 1.0, promote_after: None }, None, true, usize::MAX)
    }

    fn build(
        module: Module,
        origin: String,
        settings: Settings,
        promote: Option<Box<dyn Fn() -> bool + Send + Sync>>,
        blocking: bool,
        keep: usize,
    ) -> Result<Arc<Session>, ModuleError> {
        let jobs = Arc::new(Mutex::new(Vec::with_capacity(QUEUE)));
        let (queue, runtime) = (Arc::downgrade(&jobs), tokio::runtime::Handle::try_current().ok());
        std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || compare_all(queue, runtime))
            .map_err(|e| ModuleError::Instantiate(e.into()))?;
        Ok(Arc::new(Session {
            module,
            origin,
            settings,
            started: Instant::now(),
            state: AtomicU8::new(ACTIVE),
            blocking,
            jobs,
            seen: AtomicU64::new(0),
            compared: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            differing: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            by_kind: Default::default(),
            kept: Mutex::new(VecDeque::new()),
            keep,
            logged: Mutex::new([(0, None); Difference::ALL.len()]),
            failure: Mutex::new(None),
            promotion_cancelled: AtomicBool::new(false),
            promotion_asked: AtomicBool::new(false),
            promote,
        }))
    }

    pub fn active(&self) -> bool {
        self.state.load(Ordering::Relaxed) == ACTIVE
    }

    /// Ends shadowing (the candidate is dropped by the plugins); false if it had already ended.
    pub fn end(&self) -> bool {
        self.state.compare_exchange(ACTIVE, ENDED, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Marks the candidate as the running module now.
    pub fn promoted(&self) {
        self.state.store(PROMOTED, Ordering::Relaxed);
    }

    /// Whether a difference was seen: a promotion then needs an operator's request.
    pub fn differences(&self) -> u64 {
        self.differing.load(Ordering::Relaxed)
    }

    /// Queries compared so far.
    pub fn compared(&self) -> u64 {
        self.compared.load(Ordering::Relaxed)
    }

    /// The candidate failed: counted, logged, and shadowing stops everywhere.
    pub fn fail(&self, error: &ModuleError) {
        self.count(Difference::CandidateError);
        // Held across the state change: a report that sees "failed" then waits here for why.
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if self.state.compare_exchange(ACTIVE, FAILED, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let text = error.to_string();
            println!(
                "[ERROR] plugin/kubernetai: shadow: the candidate {} failed, shadowing stopped: {text}",
                self.origin
            );
            *failure = Some(text);
        }
    }

    /// Waits until every sampled query has been compared (offline use).
    pub fn drain(&self) {
        while self.pending.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether this query is one of the sample: spread evenly, `rate` of them.
    fn sample(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        let rate = self.settings.rate;
        rate >= 1.0 || ((n + 1.0) * rate).floor() > (n * rate).floor()
    }

    fn count(&self, kind: Difference) {
        self.by_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
        registry().inc("kubernetai_shadow_differences_total", &[kind.name()]);
    }

    /// Records the comparison of one query's two outcomes.
    fn record(&self, query: &wit::Query, running: &wit::Outcome, candidate: &wit::Outcome) {
        let kinds = outcomes(running, candidate);
        let compared = self.compared.fetch_add(1, Ordering::Relaxed) + 1;
        registry().inc("kubernetai_shadow_queries_total", &[]);
        if kinds.is_empty() {
            if let Some(n) = self.settings.promote_after
                && compared >= n
                && self.differing.load(Ordering::Relaxed) == 0
                && !self.promotion_cancelled.load(Ordering::Relaxed)
                && !self.promotion_asked.swap(true, Ordering::Relaxed)
                && let Some(promote) = &self.promote
            {
                if promote() {
                    println!(
                        "[INFO] plugin/kubernetai: shadow: {compared} queries shadowed without a difference; promoting {}",
                        self.origin
                    );
                } else {
                    self.promotion_asked.store(false, Ordering::Relaxed);
                }
            }
            return;
        }
        self.differing.fetch_add(1, Ordering::Relaxed);
        kinds.iter().for_each(|k| self.count(*k));
        let shown = Shown {
            query: question(&query.packet),
            kinds: kinds.clone(),
            running: outcome_text(running),
            candidate: outcome_text(candidate),
        };
        if self.settings.promote_after.is_some()
            && !self.promotion_asked.load(Ordering::Relaxed)
            && !self.promotion_cancelled.swap(true, Ordering::Relaxed)
        {
            println!(
                "[WARNING] plugin/kubernetai: shadow: automatic promotion of {} cancelled: {} differs ({})",
                self.origin,
                shown.query,
                names(&kinds)
            );
        }
        // Offline, the caller prints every difference itself.
        if !self.blocking && self.should_log(&kinds) {
            println!(
                "[WARNING] plugin/kubernetai: shadow: {} differs ({}):\n;; running module:\n{}\n;; candidate {}:\n{}",
                shown.query,
                names(&kinds),
                shown.running.trim_end(),
                self.origin,
                shown.candidate.trim_end()
            );
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == self.keep {
            kept.pop_front();
        }
        kept.push_back(shown);
    }

    /// Rate-limits the log: the first few of each kind, then one per kind per minute.
    fn should_log(&self, kinds: &[Difference]) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut any = false;
        for kind in kinds {
            let (count, last) = &mut logged[*kind as usize];
            if *count < LOG_FIRST || last.is_none_or(|l| now.duration_since(l) >= LOG_EVERY) {
                *count += 1;
                *last = Some(now);
                any = true;
            }
        }
        any
    }

    /// The differences kept, oldest first.
    pub fn shown(&self) -> Vec<Shown> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// The report of `GET /module/shadow`.
    pub fn report(&self) -> serde_json::Value {
        let state = match self.state.load(Ordering::Relaxed) {
            ACTIVE => "shadowing",
            ENDED => "ended",
            FAILED => "failed",
            _ => "promoted",
        };
        let by_kind: serde_json::Map<String, serde_json::Value> = Difference::ALL
            .iter()
            .map(|k| (k.name().to_string(), self.by_kind[*k as usize].load(Ordering::Relaxed).into()))
            .collect();
        let last: Vec<serde_json::Value> = self
            .shown()
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "query": s.query,
                    "kinds": s.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
                    "running": s.running,
                    "candidate": s.candidate,
                })
            })
            .collect();
        let promotion = match self.settings.promote_after {
            None => "manual".to_string(),
            Some(_) if self.promotion_cancelled.load(Ordering::Relaxed) => "cancelled by a difference".to_string(),
            Some(_) if self.promotion_asked.load(Ordering::Relaxed) => "asked".to_string(),
            Some(n) => format!("after {n} queries without a difference"),
        };
        serde_json::json!({
            "state": state,
            "module": self.origin,
            "rate": self.settings.rate,
            "seconds": self.started.elapsed().as_secs_f64(),
            "offered": self.seen.load(Ordering::Relaxed),
            "queries": self.compared(),
            "skipped": self.skipped.load(Ordering::Relaxed),
            "differing_queries": self.differences(),
            "differences": by_kind,
            "promotion": promotion,
            "failure": self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            "last": last,
        })
    }

    /// One line for the log and the admin endpoint's answers.
    pub fn summary(&self) -> String {
        format!(
            "{} queries shadowed, {} differing, {} skipped (candidate behind)",
            self.compared(),
            self.differences(),
            self.skipped.load(Ordering::Relaxed)
        )
    }
}

/// The candidate's instance in one server block.
pub struct ShadowInstance {
    pub session: Arc<Session>,
    instance: Mutex<Option<Instance>>,
}

impl ShadowInstance {
    pub fn new(session: Arc<Session>, instance: Instance) -> Arc<ShadowInstance> {
        Arc::new(ShadowInstance { session, instance: Mutex::new(Some(instance)) })
    }

    /// Feeds the candidate the events the running module was just fed (the caller holds the
    /// plugin's objects' lock, so both see every event in the same order).
    pub fn apply(&self, stanza: u32, now: u64, events: &[wit::Event]) {
        if !self.session.active() {
            return;
        }
        let mut slot = self.instance.lock().unwrap_or_else(|p| p.into_inner());
        let Some(instance) = slot.as_mut() else { return };
        if let Err(e) = instance.apply_batched(stanza, now, events) {
            self.session.fail(&e);
            *slot = None;
        }
    }

    /// Hands a query the running module answered to the candidate, when it is in the sample.
    /// Never waits (except offline): a candidate that is behind loses the query, counted.
    /// `running` makes the running module's outcome, only for a query that is kept.
    pub fn offer(self: &Arc<Self>, query: &wit::Query, running: impl FnOnce() -> wit::Outcome) {
        let session = &self.session;
        if !session.active() || !session.sample() {
            return;
        }
        loop {
            let mut jobs = session.jobs.lock().unwrap_or_else(|p| p.into_inner());
            if jobs.len() < QUEUE {
                // Copied only once there is room: a skipped query costs no copy.
                session.pending.fetch_add(1, Ordering::AcqRel);
                jobs.push(Job { candidate: self.clone(), query: query.clone(), running: running() });
                return;
            }
            if !session.blocking {
                session.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            drop(jobs);
            std::thread::sleep(COLLECT_EVERY);
        }
    }

    /// The candidate's instance, taken out to serve (promotion); None if it failed.
    pub fn take(&self) -> Option<Instance> {
        self.instance.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn compare(&self, query: &wit::Query, running: &wit::Outcome) {
        if !self.session.active() {
            return;
        }
        let mut slot = self.instance.lock().unwrap_or_else(|p| p.into_inner());
        let Some(instance) = slot.as_mut() else { return };
        match instance.handle(query) {
            Ok(candidate) => {
                drop(slot);
                self.session.record(query, running, &candidate);
            }
            Err(e) => {
                *slot = None;
                drop(slot);
                self.session.fail(&e);
            }
        }
    }
}

/// The comparing thread: candidate calls happen here, never on a serving thread. It ends when
/// the session is gone.
fn compare_all(queue: Weak<Mutex<Vec<Job>>>, runtime: Option<tokio::runtime::Handle>) {
    // wasmtime-wasi reaches for tokio when a module writes to stderr (a panic message).
    let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
    let mut batch = Vec::with_capacity(QUEUE);
    loop {
        std::thread::sleep(COLLECT_EVERY);
        let Some(jobs) = queue.upgrade() else { return };
        std::mem::swap(&mut batch, &mut *jobs.lock().unwrap_or_else(|p| p.into_inner()));
        // Jobs hold the session, and the session the list: let go of it before they end.
        drop(jobs);
        for job in batch.drain(..) {
            job.candidate.compare(&job.query, &job.running);
            job.candidate.session.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// How two outcomes of one query differ.
pub fn outcomes(running: &wit::Outcome, candidate: &wit::Outcome) -> Vec<Difference> {
    use wit::Outcome::{Answer, Chase, Drop, Next};
    match (running, candidate) {
        (Answer(r), Answer(c)) => compare::answers(r, c),
        (Chase(r), Chase(c)) => {
            let mut kinds = compare::answers(&r.response, &c.response);
            if (!r.target.eq_ignore_ascii_case(&c.target) || r.qtype != c.qtype) && !kinds.contains(&Difference::Answer)
            {
                kinds.push(Difference::Answer);
                kinds.sort();
            }
            kinds
        }
        (Next, Next) | (Drop, Drop) => vec![],
        _ => vec![Difference::Outcome],
    }
}

/// `name TYPE` of a query's question.
fn question(packet: &[u8]) -> String {
    match hickory_proto::op::Message::from_vec(packet) {
        Ok(m) => m
            .queries
            .first()
            .map_or_else(|| "(no question)".to_string(), |q| format!("{} {}", q.name(), q.query_type())),
        Err(_) => "(unparseable query)".to_string(),
    }
}

fn outcome_text(outcome: &wit::Outcome) -> String {
    match outcome {
        wit::Outcome::Answer(bytes) => compare::dig_text(bytes),
        wit::Outcome::Chase(c) => {
            format!(";; chase {} (type {}) after:\n{}", c.target, c.qtype, compare::dig_text(&c.response))
        }
        wit::Outcome::Next => ";; next: passed to the next plugin".to_string(),
        wit::Outcome::Drop => ";; drop: not answered".to_string(),
    }
}

fn names(kinds: &[Difference]) -> String {
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_percentages_or_fractions() {
        assert_eq!(parse_rate("10%"), Ok(0.1));
        assert_eq!(parse_rate("100%"), Ok(1.0));
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("0%").is_err() && parse_rate("150%").is_err() && parse_rate("x").is_err());
    }

    #[test]
    fn a_sample_is_spread_evenly_over_the_queries() {
        let module = crate::module::Module::native();
        for (rate, want) in [(0.1, 100), (0.25, 250), (1.0, 1000)] {
            let s = Session::new(module.clone(), "native".into(), Settings { rate, promote_after: None }, None)
                .unwrap_or_else(|e| panic!("{e}"));
            let picked: Vec<bool> = (0..1000).map(|_| s.sample()).collect();
            assert_eq!(picked.iter().filter(|p| **p).count(), want, "rate {rate}");
            // Never two in a row below one half: a burst is not a sample.
            if rate < 0.5 {
                assert!(picked.windows(2).all(|w| !(w[0] && w[1])), "rate {rate}");
            }
        }
    }

    #[test]
    fn outcomes_differ_by_kind() {
        use wit::Outcome::{Answer, Drop, Next};
        assert_eq!(outcomes(&Next, &Next), []);
        assert_eq!(outcomes(&Next, &Drop), [Difference::Outcome]);
        assert_eq!(outcomes(&Answer(vec![1, 2]), &Next), [Difference::Outcome]);
        assert_eq!(outcomes(&Answer(vec![0; 12]), &Answer(vec![1])), [Difference::CandidateError]);
    }
}
