//! The `file` plugin: authoritative answers from RFC 1035 zone files, as CoreDNS's `file`
//! gives them — exact matches with the apex NS in authority and in-zone addresses of MX/SRV
//! targets in additional, CNAMEs chased inside the zone (and through the server past it),
//! referrals below a delegation, wildcards (RFC 4592), NXDOMAIN and NODATA with the SOA, and
//! the zone to `transfer`. The file is read by hickory-proto's zone parser and read again every
//! `reload` interval when its SOA serial (or, with `reload_by_mtime`, its mtime) changed; a
//! file that no longer parses keeps the last good zone. DNSSEC records are served as written,
//! but no NSEC denial is built and DNAME is not synthesised.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use futures::future::BoxFuture;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::args::{parse_duration, zone_of};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};
use crate::observe::debug;

const BY: &str = "file";
/// CoreDNS's default: the file is checked every minute.
const DEFAULT_RELOAD: Duration = Duration::from_secs(60);
/// CNAMEs followed inside the zone before the answer is given as it stands (CoreDNS's bound).
const MAX_CHASE: usize = 8;
/// Records per message of a transfer (each well under 64 KiB).
const TRANSFER_CHUNK: usize = 200;

/// One zone of a `file` directive: where it is read from and what was read.
struct ZoneSource {
    origin: String,
    path: PathBuf,
    zone: ArcSwapOption<Zone>,
    /// The mtime of the file the zone was read from.
    read_at: std::sync::Mutex<Option<SystemTime>>,
}

/// The `file` directives of a block, read: one plugin for all their zones, as in CoreDNS.
#[derive(Clone)]
pub struct Options {
    zones: Vec<Arc<ZoneSource>>,
    reload: Duration,
    by_mtime: bool,
    /// `fallthrough`'s zones (the root when it names none).
    fall: Option<Vec<String>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origins: Vec<&str> = self.zones.iter().map(|z| z.origin.as_str()).collect();
        f.debug_struct("file").field("zones", &origins).field("reload", &self.reload).finish()
    }
}

/// A zone as read: its records by lowercase owner name.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    soa: Record,
    serial: u32,
    ns: Vec<Record>,
    names: HashMap<Name, Vec<Record>>,
    /// Every name with a name below it (empty non-terminals among them).
    parents: HashSet<Name>,
    /// Every record in file order of owner names, SOA first: the transfer.
    all: Vec<Record>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Found {
    Success,
    NoData,
    NameError,
    Delegation,
    /// A CNAME chain past the chase bound: SERVFAIL with the chain so far, as CoreDNS.
    ServerFailure,
}

/// The three sections of an answer and what it is.
struct Lookup {
    answer: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
    found: Found,
    /// A CNAME target outside the zone, for the server to resolve.
    external: Option<Name>,
}

impl Zone {
    /// Reads `text` as the zone `origin` (`path` names it in errors and resolves `$INCLUDE`).
    pub fn parse(text: &str, path: &Path, origin: &str) -> Result<Zone, String> {
        let origin_name = Name::from_ascii(origin).map_err(|e| format!("zone {origin}: {e}"))?.to_lowercase();
        let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(origin_name.clone()))
            .parse()
            .map_err(|e| match error_line(text, path, &origin_name) {
                Some(line) => format!("{}:{line}: {e}", path.display()),
                None => format!("{}: {e}", path.display()),
            })?;
        let mut names: HashMap<Name, Vec<Record>> = HashMap::new();
        let mut all = Vec::new();
        for (_, set) in sets {
            for record in set.records_without_rrsigs().chain(set.rrsigs()) {
                let owner = record.name.to_lowercase();
                if !origin_name.zone_of(&owner) {
                    // CoreDNS refuses out-of-zone data too.
                    return Err(format!("{}: {owner} is not in zone {origin_name}", path.display()));
                }
                names.entry(owner).or_default().push(record.clone());
                all.push(record.clone());
            }
        }
        let at_apex = names.get(&origin_name).map(Vec::as_slice).unwrap_or_default();
        let soa = at_apex
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .cloned()
            .ok_or_else(|| format!("{}: no SOA record for zone {origin_name}", path.display()))?;
        let serial = match &soa.data {
            RData::SOA(s) => s.serial,
            _ => 0,
        };
        let ns = at_apex.iter().filter(|r| r.record_type() == RecordType::NS).cloned().collect();
        let mut parents = HashSet::new();
        for owner in names.keys() {
            let mut up = owner.clone();
            while up.num_labels() > origin_name.num_labels() {
                up = up.base_name();
                if !parents.insert(up.clone()) {
                    break;
                }
            }
        }
        all.retain(|r| r.record_type() != RecordType::SOA || r.name.to_lowercase() != origin_name);
        all.insert(0, soa.clone());
        Ok(Zone { origin: origin_name, soa, serial, ns, names, parents, all })
    }

    fn exists(&self, name: &Name) -> bool {
        self.names.contains_key(name) || self.parents.contains(name)
    }

    fn records(&self, name: &Name, qtype: RecordType) -> Vec<Record> {
        self.names
            .get(name)
            .map(|rs| rs.iter().filter(|r| r.record_type() == qtype).cloned().collect())
            .unwrap_or_default()
    }

    /// In-zone addresses of the names `rrs` point at (MX exchanges, SRV targets, NS hosts).
    fn additional(&self, rrs: &[Record]) -> Vec<Record> {
        let mut out = Vec::new();
        for r in rrs {
            let target = match &r.data {
                RData::MX(mx) => mx.exchange.clone(),
                RData::SRV(srv) => srv.target.clone(),
                RData::NS(ns) => ns.0.clone(),
                _ => continue,
            };
            let target = target.to_lowercase();
            if self.origin.zone_of(&target) {
                out.extend(self.records(&target, RecordType::A));
                out.extend(self.records(&target, RecordType::AAAA));
            }
        }
        out
    }

    /// The delegation at or above `qname`, below the apex: its NS and their glue.
    fn delegation(&self, qname: &Name, qtype: RecordType) -> Option<Lookup> {
        let mut cut = self.origin.clone();
        let labels: Vec<&[u8]> = qname.iter().collect();
        for i in (0..labels.len() - usize::from(self.origin.num_labels())).rev() {
            cut = cut.prepend_label(labels[i]).ok()?;
            // A DS is the parent's answer at the cut itself.
            if cut == *qname && qtype == RecordType::DS {
                return None;
            }
            let ns = self.records(&cut, RecordType::NS);
            if !ns.is_empty() {
                let additional = self.additional(&ns);
                return Some(Lookup {
                    answer: vec![],
                    authority: ns,
                    additional,
                    found: Found::Delegation,
                    external: None,
                });
            }
        }
        None
    }

    /// The wildcard that synthesises `qname` (RFC 4592): `*.` under its closest encloser.
    fn wildcard(&self, qname: &Name) -> Option<Name> {
        let mut encloser = qname.base_name();
        while encloser.num_labels() >= self.origin.num_labels() {
            if self.exists(&encloser) {
                let wild = encloser.prepend_label("*").ok()?;
                return self.exists(&wild).then_some(wild);
            }
            encloser = encloser.base_name();
        }
        None
    }

    /// Answers `qname`/`qtype` from the zone.
    fn lookup(&self, qname: &Name, qtype: RecordType) -> Lookup {
        let negative = |found| Lookup {
            answer: vec![],
            authority: vec![self.soa.clone()],
            additional: vec![],
            found,
            external: None,
        };
        if *qname == self.origin {
            match qtype {
                RecordType::SOA => {
                    return Lookup {
                        answer: vec![self.soa.clone()],
                        authority: self.ns.clone(),
                        additional: vec![],
                        found: Found::Success,
                        external: None,
                    };
                }
                RecordType::NS => {
                    return Lookup {
                        answer: self.ns.clone(),
                        authority: vec![],
                        additional: self.additional(&self.ns),
                        found: Found::Success,
                        external: None,
                    };
                }
                _ => {}
            }
        }
        if let Some(referral) = self.delegation(qname, qtype) {
            return referral;
        }
        let mut answer = Vec::new();
        let mut name = qname.clone();
        let mut owner = qname.clone();
        for _ in 0..=MAX_CHASE {
            let source = if self.names.contains_key(&name) {
                name.clone()
            } else if let Some(wild) = self.wildcard(&name).filter(|_| !self.parents.contains(&name)) {
                wild
            } else if answer.is_empty() {
                return negative(if self.parents.contains(&name) { Found::NoData } else { Found::NameError });
            } else {
                // A CNAME to a name the zone does not have: its rcode, the chain so far.
                let mut l = negative(if self.parents.contains(&name) { Found::NoData } else { Found::NameError });
                l.answer = answer;
                return l;
            };
            let synthesise = |rs: Vec<Record>| -> Vec<Record> {
                rs.into_iter()
                    .map(|mut r| {
                        r.name = owner.clone();
                        r
                    })
                    .collect()
            };
            let cname = self.records(&source, RecordType::CNAME);
            if !cname.is_empty() && qtype != RecordType::CNAME {
                let target = match &cname[0].data {
                    RData::CNAME(c) => c.0.to_lowercase(),
                    _ => break,
                };
                answer.extend(synthesise(cname));
                if !self.origin.zone_of(&target) {
                    return Lookup {
                        answer,
                        authority: vec![],
                        additional: vec![],
                        found: Found::Success,
                        external: Some(target),
                    };
                }
                if let Some(mut referral) = self.delegation(&target, qtype) {
                    referral.answer = answer;
                    return referral;
                }
                (name, owner) = (target.clone(), target);
                continue;
            }
            let rrs = synthesise(self.records(&source, qtype));
            if rrs.is_empty() {
                let mut l = negative(Found::NoData);
                l.answer = answer;
                return l;
            }
            let additional = self.additional(&rrs);
            answer.extend(rrs);
            return Lookup { answer, authority: self.ns.clone(), additional, found: Found::Success, external: None };
        }
        Lookup { answer, authority: vec![], additional: vec![], found: Found::ServerFailure, external: None }
    }

    /// The zone as AXFR sends it: the SOA, every record, the SOA again, in messages.
    fn transfer(&self, q: &Query) -> Vec<Vec<u8>> {
        let mut records = self.all.clone();
        records.push(self.soa.clone());
        records
            .chunks(TRANSFER_CHUNK)
            .filter_map(|chunk| {
                let mut m = Message::new(q.message.metadata.id, MessageType::Response, OpCode::Query);
                m.metadata.authoritative = true;
                m.queries = q.message.queries.clone();
                m.answers = chunk.to_vec();
                m.to_vec().ok()
            })
            .collect()
    }
}

/// The line of `text` at which the zone stops parsing: the first record boundary (outside
/// parentheses) whose prefix fails, by bisection. hickory's errors carry no position.
fn error_line(text: &str, path: &Path, origin: &Name) -> Option<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut depth = 0i32;
    let mut cuts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split(';').next().unwrap_or_default();
        depth += code.matches('(').count() as i32 - code.matches(')').count() as i32;
        if depth <= 0 {
            cuts.push(i + 1);
        }
    }
    let fails = |n: usize| {
        let prefix: String = lines[..n].concat();
        Parser::new(prefix.as_str(), Some(path.to_path_buf()), Some(origin.clone())).parse().is_err()
    };
    let (mut lo, mut hi) = (0usize, cuts.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(cuts[mid]) { hi = mid } else { lo = mid + 1 }
    }
    cuts.get(lo).copied()
}

impl ZoneSource {
    /// Reads the file again when it changed: a new SOA serial (or mtime, `by_mtime`) replaces
    /// the zone; a file that cannot be read or parsed keeps the last good one.
    fn reload(&self, by_mtime: bool) {
        let Ok(modified) = std::fs::metadata(&self.path).and_then(|m| m.modified()) else { return };
        let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
        if *read_at == Some(modified) {
            return;
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => {
                println!("[ERROR] plugin/file: reading {}: {e}", self.path.display());
                return;
            }
        };
        match Zone::parse(&text, &self.path, &self.origin) {
            Ok(zone) => {
                *read_at = Some(modified);
                let serial = self.zone.load().as_ref().map(|z| z.serial);
                if !by_mtime && serial == Some(zone.serial) {
                    debug::line(BY, || format!("{}: serial {} unchanged", self.origin, zone.serial));
                    return;
                }
                println!(
                    "[INFO] plugin/file: Successfully reloaded zone {:?} in {:?} with {} SOA serial",
                    self.origin,
                    self.path.display().to_string(),
                    zone.serial
                );
                self.zone.store(Some(Arc::new(zone)));
            }
            Err(e) => println!("[ERROR] plugin/file: {e}; keeping the last good zone"),
        }
    }
}

async fn watch(options: Weak<File>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(file) = options.upgrade() else { return };
        let _ = tokio::task::spawn_blocking(move || {
            for z in &file.options.zones {
                z.reload(file.options.by_mtime);
            }
        })
        .await;
    }
}

/// Reads every `file` directive of a block (in Corefile order, CoreDNS makes one plugin of them).
pub fn setup_all(ds: &[&Directive], block_zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    let mut o = Options { zones: vec![], reload: DEFAULT_RELOAD, by_mtime: false, fall: None };
    for d in ds {
        let Some((file, origins)) = d.args.split_first() else {
            return Err(d.error("file: needs a DBFILE"));
        };
        let origins: Vec<String> = if origins.is_empty() {
            block_zones.to_vec()
        } else {
            origins.iter().map(zone_of).collect::<Result<_, _>>()?
        };
        for opt in d.block.as_deref().unwrap_or_default() {
            let args = opt.arg_texts();
            match (opt.name.text.as_str(), args.as_slice()) {
                ("reload", [t]) => {
                    o.reload = parse_duration(t).ok_or_else(|| opt.error(format!("file: invalid duration {t:?}")))?;
                }
                ("reload", _) => return Err(opt.error("file: reload duration value is expected")),
                ("reload_by_mtime", []) => o.by_mtime = true,
                ("fallthrough", _) => {
                    o.fall = Some(if args.is_empty() {
                        vec![".".to_string()]
                    } else {
                        opt.args.iter().map(zone_of).collect::<Result<_, _>>()?
                    });
                }
                // Deprecated in CoreDNS and ignored there: CNAME targets go through the server.
                ("upstream", _) => {}
                (other, _) => return Err(opt.error(format!("file: unknown property '{other}'"))),
            }
        }
        let path = PathBuf::from(&file.text);
        let read = std::fs::read_to_string(&path).map(|text| (text, std::fs::metadata(&path).and_then(|m| m.modified()).ok()));
        for origin in origins {
            let (zone, read_at) = match &read {
                Ok((text, modified)) => {
                    let zone = Zone::parse(text, &path, &origin).map_err(|e| Error::token(file, format!("file: {e}")))?;
                    (Some(Arc::new(zone)), *modified)
                }
                // As CoreDNS: with reload on, a missing file is waited for (SERVFAIL until then).
                Err(e) if !o.reload.is_zero() => {
                    println!("[WARNING] plugin/file: Failed to open {:?}: trying again in {:?}", path.display().to_string(), o.reload);
                    let _ = e;
                    (None, None)
                }
                Err(e) => return Err(Error::token(file, format!("file: {}: {e}", path.display()))),
            };
            o.zones.push(Arc::new(ZoneSource {
                origin,
                path: path.clone(),
                zone: ArcSwapOption::new(zone),
                read_at: std::sync::Mutex::new(read_at),
            }));
        }
    }
    Ok(Arc::new(o))
}

impl Setup for Options {
    fn build(&self, _block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        let file = Arc::new(File { options: self.clone() });
        if !self.reload.is_zero() {
            tokio::spawn(watch(Arc::downgrade(&file), self.reload));
        }
        Ok(file)
    }
}

/// The `file` plugin of a block.
pub struct File {
    options: Options,
}

impl File {
    /// The zone source with the longest origin holding `qname`.
    fn source(&self, qname: &str) -> Option<&Arc<ZoneSource>> {
        self.options
            .zones
            .iter()
            .filter(|z| kubernetai_guest::name::longest_zone(qname, std::slice::from_ref(&z.origin)).is_some())
            .max_by_key(|z| z.origin.len())
    }

    fn falls(&self, qname: &str) -> bool {
        self.options.fall.as_ref().is_some_and(|zones| kubernetai_guest::name::longest_zone(qname, zones).is_some())
    }

    async fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        let Some(source) = self.source(&q.qname) else {
            return next.run(q).await;
        };
        let Some(zone) = source.zone.load_full() else {
            return Reply::servfail(BY, format!("zone {} is not loaded", source.origin));
        };
        if matches!(q.qtype, hickory_proto::rr::RecordType::AXFR | hickory_proto::rr::RecordType::IXFR) {
            return Reply::Fail { rcode: ResponseCode::Refused, reason: "no transfer for this zone".into(), by: BY };
        }
        let Ok(qname) = Name::from_ascii(&q.qname).map(|n| n.to_lowercase()) else {
            return Reply::servfail(BY, "unreadable name");
        };
        let mut l = zone.lookup(&qname, q.qtype);
        // CoreDNS falls through on NXDOMAIN and on an empty non-terminal only.
        let empty_non_terminal = !zone.names.contains_key(&qname) && zone.parents.contains(&qname);
        if l.answer.is_empty() && (l.found == Found::NameError || empty_non_terminal) && self.falls(&q.qname) {
            return next.run(q).await;
        }
        if let Some(target) = l.external.take()
            && let Some(sub) = next.lookup(&target.to_ascii(), q.qtype, q, q.depth + 1).await
        {
            l.answer.extend(sub.answers);
            if sub.metadata.response_code != ResponseCode::NoError {
                l.found = Found::NameError;
            }
        }
        let rcode = match l.found {
            Found::NameError => ResponseCode::NXDomain,
            Found::ServerFailure => ResponseCode::ServFail,
            _ => ResponseCode::NoError,
        };
        let authoritative = !(l.found == Found::Delegation && l.answer.is_empty());
        q.respond_as(BY, rcode, authoritative, [l.answer, l.authority, l.additional])
    }
}

impl Plugin for File {
    fn name(&self) -> &'static str {
        BY
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(File::serve(self, next, q))
    }

    fn transfer(&self, q: &Query) -> Option<Reply> {
        let source = self.source(&q.qname).filter(|z| z.origin == q.qname)?;
        Some(match source.zone.load_full() {
            Some(zone) => Reply::Stream { messages: zone.transfer(q), by: BY },
            None => Reply::servfail(BY, format!("zone {} is not loaded", source.origin)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CoreDNS's example.org test zone (plugin/file/example_org.go), cut to what the cases use.
    const EXAMPLE_ORG: &str = "\
$TTL    30M
$ORIGIN example.org.
@       IN      SOA     linode.atoom.net. miek.miek.nl. ( 1282630057 14400 3600 604800 14400 )
        IN      NS      a.iana-servers.net.
        IN      NS      b.iana-servers.net.
a       IN      A       139.162.196.78
        IN      AAAA    2a01:7e00::f03c:91ff:fef1:6735
www     IN      CNAME   a
archive IN      CNAME   a
ext     IN      CNAME   www.example.net.
loop    IN      CNAME   loop
*.wild  IN      TXT     \"wildcard\"
x.y.ent IN      A       10.0.0.1
mx      IN      MX      10 a
delegated IN    NS      ns.delegated
ns.delegated IN A       10.0.0.53
";

    fn zone() -> Zone {
        Zone::parse(EXAMPLE_ORG, Path::new("db.example.org"), "example.org.").expect("the example zone parses")
    }

    fn render(rs: &[Record]) -> Vec<String> {
        rs.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect()
    }

    /// (name, type) → (what, answer, authority types, additional count): CoreDNS's lookup
    /// tables, as data.
    #[test]
    fn lookups_answer_as_coredns_file_does() {
        type Case = (&'static str, RecordType, Found, &'static [&'static str], &'static [RecordType], usize);
        let cases: &[Case] = &[
            ("a.example.org.", RecordType::A, Found::Success, &["a.example.org. A 139.162.196.78"], &[RecordType::NS, RecordType::NS], 0),
            ("A.EXAMPLE.ORG.", RecordType::A, Found::Success, &["a.example.org. A 139.162.196.78"], &[RecordType::NS, RecordType::NS], 0),
            ("a.example.org.", RecordType::MX, Found::NoData, &[], &[RecordType::SOA], 0),
            ("nothere.example.org.", RecordType::A, Found::NameError, &[], &[RecordType::SOA], 0),
            (
                "www.example.org.",
                RecordType::A,
                Found::Success,
                &["www.example.org. CNAME a.example.org.", "a.example.org. A 139.162.196.78"],
                &[RecordType::NS, RecordType::NS],
                0,
            ),
            ("www.example.org.", RecordType::CNAME, Found::Success, &["www.example.org. CNAME a.example.org."], &[RecordType::NS, RecordType::NS], 0),
            ("example.org.", RecordType::SOA, Found::Success, &["example.org. SOA linode.atoom.net. miek.miek.nl. 1282630057 14400 3600 604800 14400"], &[RecordType::NS, RecordType::NS], 0),
            ("example.org.", RecordType::NS, Found::Success, &["example.org. NS a.iana-servers.net.", "example.org. NS b.iana-servers.net."], &[], 0),
            ("a.b.wild.example.org.", RecordType::TXT, Found::Success, &["a.b.wild.example.org. TXT wildcard"], &[RecordType::NS, RecordType::NS], 0),
            ("b.wild.example.org.", RecordType::A, Found::NoData, &[], &[RecordType::SOA], 0),
            // An empty non-terminal: NOERROR without data; below it nothing.
            ("y.ent.example.org.", RecordType::A, Found::NoData, &[], &[RecordType::SOA], 0),
            ("ent.example.org.", RecordType::A, Found::NoData, &[], &[RecordType::SOA], 0),
            ("z.ent.example.org.", RecordType::A, Found::NameError, &[], &[RecordType::SOA], 0),
            ("mx.example.org.", RecordType::MX, Found::Success, &["mx.example.org. MX 10 a.example.org."], &[RecordType::NS, RecordType::NS], 2),
            ("host.delegated.example.org.", RecordType::A, Found::Delegation, &[], &[RecordType::NS], 1),
            ("delegated.example.org.", RecordType::NS, Found::Delegation, &[], &[RecordType::NS], 1),
        ];
        let z = zone();
        for (name, qtype, found, answer, authority, additional) in cases {
            let l = z.lookup(&Name::from_ascii(name).expect("a name").to_lowercase(), *qtype);
            assert_eq!(l.found, *found, "{name} {qtype}");
            assert_eq!(render(&l.answer), *answer, "{name} {qtype}");
            let kinds: Vec<RecordType> = l.authority.iter().map(Record::record_type).collect();
            assert_eq!(kinds, *authority, "{name} {qtype}");
            assert_eq!(l.additional.len(), *additional, "{name} {qtype}");
        }
    }

    #[test]
    fn a_cname_out_of_the_zone_is_left_to_the_server_and_a_loop_ends() {
        let z = zone();
        let l = z.lookup(&Name::from_ascii("ext.example.org.").expect("a name"), RecordType::A);
        assert_eq!(l.external.map(|n| n.to_ascii()), Some("www.example.net.".to_string()));
        let l = z.lookup(&Name::from_ascii("loop.example.org.").expect("a name"), RecordType::A);
        assert_eq!((l.found, l.answer.len()), (Found::ServerFailure, MAX_CHASE + 1));
    }

    #[test]
    fn a_bad_zone_is_refused_with_its_line() {
        let bad = EXAMPLE_ORG.replace("a       IN      A       139.162.196.78", "a       IN      A       139.162.196");
        let e = Zone::parse(&bad, Path::new("db.example.org"), "example.org.").expect_err("refused");
        assert!(e.starts_with("db.example.org:6: "), "{e}");
        let e = Zone::parse("$ORIGIN example.org.\n$TTL 60\na IN A 10.0.0.1\n", Path::new("db"), "example.org.").expect_err("refused");
        assert_eq!(e, "db: no SOA record for zone example.org.");
    }

    #[test]
    fn the_transfer_starts_and_ends_with_the_soa() {
        let z = zone();
        assert_eq!(z.all.first().map(Record::record_type), Some(RecordType::SOA));
        assert_eq!(z.all.iter().filter(|r| r.record_type() == RecordType::SOA).count(), 1);
    }
}
