//! The `cache` plugin: answers kept for their TTL (capped and floored per class), success and
//! denial in separate capacities, SERVFAIL for a short while, and stale answers served past their
//! TTL when `serve_stale` allows, as CoreDNS's cache does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use futures::future::BoxFuture;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::args::parse_duration;
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};
use crate::observe::debug;
use crate::observe::metrics::registry;

const DEFAULT_CAPACITY: usize = 9984;
const SUCCESS_MAX_TTL: Duration = Duration::from_secs(3600);
const DENIAL_MAX_TTL: Duration = Duration::from_secs(1800);
const MIN_TTL: Duration = Duration::from_secs(5);
const SERVFAIL_TTL: Duration = Duration::from_secs(5);
/// How long a stale answer may be served when `serve_stale` names no duration.
const STALE_DEFAULT: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Class {
    Success,
    Denial,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Success => "success",
            Class::Denial => "denial",
        }
    }
}

#[derive(Clone, Debug)]
struct Limits {
    capacity: usize,
    max_ttl: Duration,
    min_ttl: Duration,
    /// `disable`: zones whose answers of this class are not cached (empty: none disabled).
    disabled: Option<Vec<String>>,
}

/// How a stale answer is refreshed: `immediate` serves it and refreshes behind the client's
/// back; `verify` asks the next plugin first and serves stale only if that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refresh {
    Immediate,
    Verify,
}

#[derive(Clone, Debug)]
pub struct Options {
    zones: Vec<String>,
    success: Limits,
    denial: Limits,
    servfail: Duration,
    stale: Option<(Duration, Refresh)>,
    keepttl: bool,
    prefetch: Option<Prefetch>,
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`: an answer asked AMOUNT times within DURATION
/// (1 m) is fetched again behind the client's back once less than PERCENTAGE (10 %) of its
/// TTL is left, so popular names never expire in the cache.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Prefetch {
    amount: u32,
    window: Duration,
    percentage: u32,
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct Key {
    qname: String,
    qtype: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

/// What a kept answer is good for at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Stale,
    Expired,
}

struct Item {
    message: Message,
    stored: Instant,
    ttl: Duration,
    class: Class,
    /// Hits since `window` began, for `prefetch`; and whether a prefetch is under way.
    hits: u32,
    window: Instant,
    prefetching: bool,
}

pub struct Cache {
    options: Options,
    /// The `server` and `zones` labels of the cache metrics.
    server: String,
    zones_label: String,
    items: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    map: HashMap<Key, Item>,
    /// Entries per class.
    counts: HashMap<Class, usize>,
}

fn limits(max_ttl: Duration) -> Limits {
    Limits { capacity: DEFAULT_CAPACITY, max_ttl, min_ttl: MIN_TTL, disabled: None }
}

/// Parses `cache [TTL] [ZONES...] { success|denial CAPACITY [TTL [MINTTL]]; prefetch ...;
/// serve_stale [DURATION [immediate|verify]]; servfail DURATION; disable success|denial
/// [ZONES...]; keepttl }`.
pub fn parse(d: &Directive, block_zones: &[String]) -> Result<Options, Error> {
    let mut o = Options {
        zones: block_zones.to_vec(),
        success: limits(SUCCESS_MAX_TTL),
        denial: limits(DENIAL_MAX_TTL),
        servfail: SERVFAIL_TTL,
        stale: None,
        keepttl: false,
        prefetch: None,
    };
    let mut args = d.args.iter().peekable();
    if let Some(first) = args.peek()
        && let Ok(ttl) = first.text.parse::<u64>()
    {
        if ttl == 0 {
            return Err(Error::token(first, "cache: cache TTL can not be zero"));
        }
        o.success.max_ttl = Duration::from_secs(ttl);
        o.denial.max_ttl = Duration::from_secs(ttl);
        args.next();
    }
    let zones: Vec<String> = args.map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?;
    if !zones.is_empty() {
        o.zones = zones;
    }
    for opt in d.block.as_deref().unwrap_or_default() {
        let a = opt.arg_texts();
        let err = |m: &str| opt.error(format!("cache: {} {m}", opt.name.text));
        let secs = |t: &str| {
            t.parse::<u64>().map(Duration::from_secs).map_err(|_| err(&format!("{t:?} is not a number of seconds")))
        };
        match opt.name.text.as_str() {
            which @ ("success" | "denial") => {
                if a.is_empty() || a.len() > 3 {
                    return Err(err("takes CAPACITY [TTL [MINTTL]]"));
                }
                let l = if which == "success" { &mut o.success } else { &mut o.denial };
                l.capacity = a[0].parse().map_err(|_| err(&format!("capacity {:?} is not a number", a[0])))?;
                if let Some(t) = a.get(1) {
                    l.max_ttl = secs(t)?;
                }
                if let Some(t) = a.get(2) {
                    l.min_ttl = secs(t)?;
                }
            }
            "prefetch" => {
                if a.is_empty() || a.len() > 3 {
                    return Err(err("takes AMOUNT [[DURATION] [PERCENTAGE%]]"));
                }
                let amount: u32 =
                    a[0].parse().map_err(|_| err(&format!("prefetch amount should be a number: {:?}", a[0])))?;
                let window = match a.get(1) {
                    Some(t) => parse_duration(t).ok_or_else(|| err(&format!("invalid duration {t:?}")))?,
                    None => Duration::from_secs(60),
                };
                let percentage = match a.get(2) {
                    Some(p) => {
                        let n = p.strip_suffix('%').ok_or_else(|| {
                            err(&format!("last character of percentage should be `%`, but is: {p:?}"))
                        })?;
                        let n: u32 = n.parse().map_err(|_| err(&format!("invalid percentage {p:?}")))?;
                        if !(10..=90).contains(&n) {
                            return Err(err(&format!("percentage should fall in range [10, 90]: {n}")));
                        }
                        n
                    }
                    None => 10,
                };
                o.prefetch = Some(Prefetch { amount: amount.max(1), window, percentage });
            }
            "serve_stale" => {
                let duration = match a.first() {
                    Some(t) => parse_duration(t).ok_or_else(|| err(&format!("invalid duration {t:?}")))?,
                    None => STALE_DEFAULT,
                };
                let refresh = match a.get(1).copied() {
                    None | Some("immediate") => Refresh::Immediate,
                    Some("verify") => Refresh::Verify,
                    Some(other) => {
                        return Err(err(&format!("invalid refresh mode {other:?}: use immediate or verify")));
                    }
                };
                o.stale = Some((duration, refresh));
            }
            "servfail" => {
                let t = a.first().ok_or_else(|| err("takes a DURATION"))?;
                o.servfail = parse_duration(t).ok_or_else(|| err(&format!("invalid duration {t:?}")))?;
                if o.servfail > Duration::from_secs(300) {
                    return Err(err("caching SERVFAIL responses over 5 minutes is not permitted"));
                }
            }
            "disable" => {
                let l = match a.first().copied() {
                    Some("success") => &mut o.success,
                    Some("denial") => &mut o.denial,
                    _ => return Err(err("takes success or denial, then optional zones")),
                };
                let zones = if a.len() > 1 {
                    opt.args[1..].iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
                } else {
                    o.zones.clone()
                };
                l.disabled = Some(zones);
            }
            "keepttl" => o.keepttl = true,
            other => return Err(opt.error(format!("cache: unknown property '{other}'"))),
        }
    }
    Ok(o)
}

impl Cache {
    pub fn new(options: Options, server: &str) -> Self {
        let zones_label = options.zones.join(",");
        Cache { options, server: server.to_string(), zones_label, items: Mutex::new(Store::default()) }
    }

    fn key(q: &Query) -> Key {
        let edns = q.message.edns.as_ref();
        Key {
            qname: q.qname.clone(),
            qtype: u16::from(q.qtype),
            dnssec_ok: edns.is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: q.message.metadata.checking_disabled,
        }
    }

    fn covers(&self, q: &Query) -> bool {
        !matches!(q.qtype, RecordType::AXFR | RecordType::IXFR)
            && kubernetai_guest::name::longest_zone(&q.qname, &self.options.zones).is_some()
    }

    pub async fn serve<'a>(self: &'a Arc<Self>, next: Next<'a>, q: &'a Query) -> Reply {
        if !self.covers(q) {
            return next.run(q).await;
        }
        let labels = [self.server.as_str(), self.zones_label.as_str(), ""];
        registry().inc("coredns_cache_requests_total", &labels);
        let key = Self::key(q);
        let now = Instant::now();
        let mut prefetch = false;
        let found = {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            items.map.get_mut(&key).map(|item| {
                let state = self.state(item, now);
                prefetch = state == State::Fresh && self.due_for_prefetch(item, now);
                (self.answer(item, q, now), item.class, state)
            })
        };
        match found {
            Some((bytes, class, State::Fresh)) => {
                registry().inc("coredns_cache_hits_total", &[&self.server, class.label(), &self.zones_label, ""]);
                if prefetch {
                    debug::line("cache", || format!("prefetching {} {}", q.qname, q.qtype));
                    registry().inc("coredns_cache_prefetch_total", &labels);
                    let cache = self.clone();
                    next.refresh(q.clone(), move |q, bytes| cache.store_reply(q, bytes));
                }
                return Reply::Answer { bytes, by: "cache" };
            }
            Some((stale, _, State::Stale)) => {
                let (_, refresh) = self.options.stale.unwrap_or((Duration::ZERO, Refresh::Verify));
                if refresh == Refresh::Verify {
                    let reply = next.run(q).await;
                    match &reply {
                        Reply::Answer { bytes, .. } if !is_servfail(bytes) => {
                            self.store(key, bytes);
                            return reply;
                        }
                        _ => {}
                    }
                } else {
                    let cache = self.clone();
                    next.refresh(q.clone(), move |q, bytes| cache.store_reply(q, bytes));
                }
                debug::line("cache", || format!("serving {} {} stale", q.qname, q.qtype));
                registry().inc("coredns_cache_served_stale_total", &labels);
                return Reply::Answer { bytes: stale, by: "cache" };
            }
            _ => {}
        }
        registry().inc("coredns_cache_misses_total", &labels);
        let reply = next.run(q).await;
        if let Reply::Answer { bytes, .. } = &reply {
            self.store(key, bytes);
        }
        reply
    }

    /// Counts a hit on `item`; true once when it is popular enough and close enough to its
    /// expiry to be fetched again (the prefetch then under way).
    fn due_for_prefetch(&self, item: &mut Item, now: Instant) -> bool {
        let Some(p) = self.options.prefetch else { return false };
        if now.duration_since(item.window) > p.window {
            (item.window, item.hits) = (now, 0);
        }
        item.hits = item.hits.saturating_add(1);
        let left = item.ttl.saturating_sub(now.duration_since(item.stored));
        let due = !item.prefetching && item.hits >= p.amount && left <= item.ttl * p.percentage / 100;
        item.prefetching |= due;
        due
    }

    /// Whether a kept answer may be served at `now`: within its TTL; past it, for `serve_stale`'s
    /// duration (never a SERVFAIL, which is only ever a short pause); after that, not at all.
    fn state(&self, item: &Item, now: Instant) -> State {
        let age = now.duration_since(item.stored);
        if age < item.ttl {
            return State::Fresh;
        }
        match self.options.stale {
            Some((window, _))
                if age < item.ttl + window && item.message.metadata.response_code != ResponseCode::ServFail =>
            {
                State::Stale
            }
            _ => State::Expired,
        }
    }

    /// Takes a fresh answer from below into the cache, if its class and zone allow.
    pub fn store_reply(&self, q: &Query, bytes: &[u8]) {
        self.store(Self::key(q), bytes);
    }

    /// The cached answer for `q`: its id and question as asked, TTLs less the time spent here
    /// (zero once stale).
    fn answer(&self, item: &Item, q: &Query, now: Instant) -> Vec<u8> {
        let mut m = item.message.clone();
        m.metadata.id = q.message.metadata.id;
        m.metadata.recursion_desired = q.message.metadata.recursion_desired;
        m.queries = q.message.queries.clone();
        if !self.options.keepttl {
            let elapsed = u32::try_from(now.duration_since(item.stored).as_secs()).unwrap_or(u32::MAX);
            for r in m.answers.iter_mut().chain(m.authorities.iter_mut()).chain(m.additionals.iter_mut()) {
                r.ttl = r.ttl.saturating_sub(elapsed);
            }
        }
        kubernetai_guest::message::encode(m, q.max_size)
    }

    fn store(&self, key: Key, bytes: &[u8]) {
        let Ok(m) = Message::from_vec(bytes) else {
            return;
        };
        // A truncated answer is no answer to keep: the client retries over TCP.
        if m.metadata.truncation {
            return;
        }
        let (class, limits, ttl) = match m.metadata.response_code {
            ResponseCode::NoError if !m.answers.is_empty() => {
                (Class::Success, &self.options.success, min_ttl(&m, false).unwrap_or(MIN_TTL))
            }
            ResponseCode::NoError | ResponseCode::NXDomain => {
                (Class::Denial, &self.options.denial, min_ttl(&m, true).unwrap_or(MIN_TTL))
            }
            ResponseCode::ServFail if !self.options.servfail.is_zero() => {
                (Class::Denial, &self.options.denial, self.options.servfail)
            }
            _ => return,
        };
        if limits.disabled.as_ref().is_some_and(|z| kubernetai_guest::name::longest_zone(&key.qname, z).is_some()) {
            return;
        }
        let ttl = if m.metadata.response_code == ResponseCode::ServFail {
            ttl
        } else {
            ttl.clamp(limits.min_ttl, limits.max_ttl.max(limits.min_ttl))
        };
        if ttl.is_zero() || limits.capacity == 0 {
            return;
        }
        let mut store = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let Store { map, counts } = &mut *store;
        if let Some(old) = map.remove(&key) {
            *counts.entry(old.class).or_default() -= 1;
        }
        let count = counts.get(&class).copied().unwrap_or_default();
        if count >= limits.capacity {
            // Full: evict one entry of this class at random, as CoreDNS does.
            let skip = crate::random::below(count as u64) as usize;
            if let Some(victim) = map.iter().filter(|(_, i)| i.class == class).map(|(k, _)| k.clone()).nth(skip) {
                map.remove(&victim);
                *counts.entry(class).or_default() -= 1;
                registry().inc("coredns_cache_evictions_total", &[&self.server, class.label(), &self.zones_label, ""]);
            }
        }
        let now = Instant::now();
        map.insert(key, Item { message: m, stored: now, ttl, class, hits: 0, window: now, prefetching: false });
        let entries = counts.entry(class).or_default();
        *entries += 1;
        registry().set("coredns_cache_entries", &[&self.server, class.label(), &self.zones_label, ""], *entries as f64);
    }
}

fn is_servfail(bytes: &[u8]) -> bool {
    bytes.get(3).is_some_and(|b| b & 0x0f == 2)
}

/// The smallest TTL of the answer and authority sections; for a denial the SOA's, bounded by
/// its MINIMUM field.
fn min_ttl(m: &Message, denial: bool) -> Option<Duration> {
    let ttl = if denial {
        m.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
    } else {
        m.answers.iter().chain(m.authorities.iter()).map(|r| r.ttl).min()
    };
    ttl.map(|t| Duration::from_secs(u64::from(t)))
}

/// Reads `cache`.
pub fn setup(d: &Directive, zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    Ok(Arc::new(parse(d, zones)?))
}

impl Setup for Options {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Cached(Arc::new(Cache::new(self.clone(), block.server)))))
    }
}

/// The chain's hold on a cache, which refreshes behind a client's back outlive.
struct Cached(Arc<Cache>);

impl Plugin for Cached {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.0.serve(next, q))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::{MessageType, OpCode, Query as Question};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, Record};

    use super::*;
    use crate::dns::Proto;

    fn cache(text: &str) -> Cache {
        let blocks = crate::corefile::parse(&format!(". {{\n {text}\n}}\n"), Path::new("Corefile")).expect("parses");
        Cache::new(parse(&blocks[0].directives[0], &[".".to_string()]).expect("cache options"), "dns://:53")
    }

    fn query(name: &str) -> Query {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(Name::from_ascii(name).unwrap(), RecordType::A));
        Query::new(m.to_vec().unwrap(), m, ([127, 0, 0, 1], 5353).into(), Proto::Udp, 512).unwrap()
    }

    fn response(q: &Query, rcode: ResponseCode, ttl: u32) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.queries = q.message.queries.clone();
        let name = q.message.queries[0].name().clone();
        if rcode == ResponseCode::NoError {
            m.answers.push(Record::from_rdata(name, ttl, RData::A(A::new(192, 0, 2, 1))));
        } else {
            let soa = SOA::new(Name::root(), Name::root(), 1, 1, 1, 1, 60);
            m.authorities.push(Record::from_rdata(Name::root(), ttl, RData::SOA(soa)));
        }
        m.to_vec().unwrap()
    }

    fn stored(c: &Cache, q: &Query) -> Option<(Duration, Class)> {
        c.items.lock().unwrap().map.get(&Cache::key(q)).map(|i| (i.ttl, i.class))
    }

    #[test]
    fn ttls_are_capped_and_floored_per_class() {
        let c = cache("cache 30 {\n success 10 20 3\n denial 10 100 10\n }");
        let q = query("a.example.");
        c.store_reply(&q, &response(&q, ResponseCode::NoError, 3600));
        assert_eq!(stored(&c, &q), Some((Duration::from_secs(20), Class::Success)));
        c.store_reply(&q, &response(&q, ResponseCode::NoError, 1));
        assert_eq!(stored(&c, &q), Some((Duration::from_secs(3), Class::Success)));
        // A denial lives as long as its SOA says, bounded by the SOA's minimum (60) and the caps.
        let nx = query("b.example.");
        c.store_reply(&nx, &response(&nx, ResponseCode::NXDomain, 3600));
        assert_eq!(stored(&c, &nx), Some((Duration::from_secs(60), Class::Denial)));
        let sf = query("c.example.");
        c.store_reply(&sf, &response(&sf, ResponseCode::ServFail, 0));
        assert_eq!(stored(&c, &sf), Some((SERVFAIL_TTL, Class::Denial)));
        let refused = query("d.example.");
        c.store_reply(&refused, &response(&refused, ResponseCode::Refused, 300));
        assert_eq!(stored(&c, &refused), None);
    }

    #[test]
    fn capacity_evicts_and_disabled_zones_are_not_kept() {
        let c = cache("cache {\n success 2\n disable denial example.\n }");
        for name in ["a.example.", "b.example.", "c.example."] {
            let q = query(name);
            c.store_reply(&q, &response(&q, ResponseCode::NoError, 60));
        }
        assert_eq!(c.items.lock().unwrap().map.len(), 2, "one evicted");
        let nx = query("gone.example.");
        c.store_reply(&nx, &response(&nx, ResponseCode::NXDomain, 60));
        assert_eq!(stored(&c, &nx), None);
    }

    #[test]
    fn serve_stale_is_bounded_by_its_duration_and_never_serves_a_servfail() {
        let c = cache("cache 30 {\n serve_stale 10s\n servfail 2s\n }");
        let (ok, failed) = (query("a.example."), query("b.example."));
        c.store_reply(&ok, &response(&ok, ResponseCode::NoError, 5));
        c.store_reply(&failed, &response(&failed, ResponseCode::ServFail, 0));
        let items = c.items.lock().unwrap();
        let at = |q: &Query, secs: u64| {
            let item = items.map.get(&Cache::key(q)).unwrap();
            c.state(item, item.stored + Duration::from_secs(secs))
        };
        assert_eq!(
            (at(&ok, 4), at(&ok, 6), at(&ok, 14), at(&ok, 16)),
            (State::Fresh, State::Stale, State::Stale, State::Expired)
        );
        assert_eq!((at(&failed, 1), at(&failed, 3)), (State::Fresh, State::Expired), "a SERVFAIL is never stale");
        let plain = cache("cache 30");
        plain.store_reply(&ok, &response(&ok, ResponseCode::NoError, 5));
        let kept = plain.items.lock().unwrap();
        let item = kept.map.get(&Cache::key(&ok)).unwrap();
        assert_eq!(plain.state(item, item.stored + Duration::from_secs(6)), State::Expired, "no serve_stale");
    }

    #[test]
    fn a_popular_answer_is_due_for_prefetch_once_when_little_of_its_ttl_is_left() {
        let c = cache("cache 30 {\n prefetch 2 1m 50%\n }");
        let q = query("a.example.");
        c.store_reply(&q, &response(&q, ResponseCode::NoError, 10));
        let mut items = c.items.lock().unwrap();
        let item = items.map.get_mut(&Cache::key(&q)).unwrap();
        let stored = item.stored;
        let at = |secs: u64| stored + Duration::from_secs(secs);
        assert!(!c.due_for_prefetch(item, at(1)), "asked once: not popular yet");
        assert!(!c.due_for_prefetch(item, at(2)), "popular, but 8 s of 10 left");
        assert!(c.due_for_prefetch(item, at(6)), "popular, 4 s of 10 left");
        assert!(!c.due_for_prefetch(item, at(7)), "already under way");
        drop(items);
        // The prefetched answer replaces the item: a new TTL and a new count.
        c.store_reply(&q, &response(&q, ResponseCode::NoError, 10));
        let mut items = c.items.lock().unwrap();
        let item = items.map.get_mut(&Cache::key(&q)).unwrap();
        let stored = item.stored;
        assert!(!c.due_for_prefetch(item, stored + Duration::from_secs(6)), "the count began again");

        // Hits spread wider than the window never make an answer popular.
        let sparse = cache("cache 30 {\n prefetch 2 1s 50%\n }");
        sparse.store_reply(&q, &response(&q, ResponseCode::NoError, 10));
        let mut items = sparse.items.lock().unwrap();
        let item = items.map.get_mut(&Cache::key(&q)).unwrap();
        let stored = item.stored;
        for secs in [5, 7, 9] {
            assert!(!sparse.due_for_prefetch(item, stored + Duration::from_secs(secs)), "hit at {secs} s");
        }
    }

    #[test]
    fn a_hit_carries_the_askers_id_and_the_remaining_ttl() {
        let c = cache("cache");
        let q = query("a.example.");
        c.store_reply(&q, &response(&q, ResponseCode::NoError, 60));
        let items = c.items.lock().unwrap();
        let item = items.map.get(&Cache::key(&q)).unwrap();
        let mut asker = query("A.Example.");
        asker.message.metadata.id = 99;
        let later = item.stored + Duration::from_secs(25);
        let m = Message::from_vec(&c.answer(item, &asker, later)).unwrap();
        assert_eq!(m.metadata.id, 99);
        assert_eq!(m.queries[0].name().to_ascii(), "A.Example.");
        assert_eq!(m.answers[0].ttl, 35);
    }
}
