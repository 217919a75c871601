//! The `hosts` plugin, as CoreDNS's: A, AAAA and PTR answers from an `/etc/hosts`-style file
//! and lines written inline in the Corefile (k3s ships its nodes' names this way). The file is
//! checked every `reload` (5 s by default) and read again when its modification time or size
//! changes; a file that goes away keeps the inline lines answering. `*.name` matches one label
//! below `name`. A name the data does not hold falls through with `fallthrough`, and is a
//! SERVFAIL without it (no SOA to say NXDOMAIN with), as CoreDNS answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use kubernetai_guest::name::{is_subdomain, longest_zone, normalize_zone};

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::args::{parse_duration, zone_of};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};
use crate::file_stamp::FileStamp;
use crate::observe::metrics::registry;

const BY: &str = "hosts";
const DEFAULT_FILE: &str = "/etc/hosts";
const DEFAULT_TTL: u32 = 3600;
const DEFAULT_RELOAD: Duration = Duration::from_secs(5);

/// `hosts [FILE [ZONES...]] { INLINE... ttl no_reverse reload fallthrough fallthrough_unsupported }`, read.
#[derive(Clone, Debug)]
pub struct Options {
    file: PathBuf,
    zones: Vec<String>,
    inline: Vec<String>,
    ttl: u32,
    reverse: bool,
    /// Zero: never read again.
    reload: Duration,
    /// `fallthrough`'s zones (the root when it names none).
    fall: Option<Vec<String>>,
    fall_unsupported: bool,
}

/// Reads `hosts`.
pub fn setup(d: &Directive, block_zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    let mut o = Options {
        file: PathBuf::from(DEFAULT_FILE),
        zones: block_zones.to_vec(),
        inline: Vec::new(),
        ttl: DEFAULT_TTL,
        reverse: true,
        reload: DEFAULT_RELOAD,
        fall: None,
        fall_unsupported: false,
    };
    if let Some((file, zones)) = d.args.split_first() {
        o.file = PathBuf::from(&file.text);
        if !zones.is_empty() {
            o.zones = zones.iter().map(zone_of).collect::<Result<_, _>>()?;
        }
        match std::fs::metadata(&o.file) {
            Ok(m) if m.is_dir() => println!("[WARNING] plugin/hosts: Hosts file {:?} is a directory", file.text),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("[WARNING] plugin/hosts: File does not exist: {}", file.text)
            }
            Err(e) => return Err(Error::token(file, format!("unable to access hosts file '{}': {e}", file.text))),
        }
    }
    for opt in d.block.as_deref().unwrap_or_default() {
        let args = opt.arg_texts();
        match opt.name.text.as_str() {
            "fallthrough" => {
                o.fall = Some(if args.is_empty() {
                    vec![".".to_string()]
                } else {
                    opt.args.iter().map(zone_of).collect::<Result<_, _>>()?
                });
            }
            "fallthrough_unsupported" if args.is_empty() => o.fall_unsupported = true,
            "fallthrough_unsupported" => return Err(opt.error("hosts: fallthrough_unsupported takes no arguments")),
            "no_reverse" => o.reverse = false,
            "ttl" => {
                let ttl = args.first().ok_or_else(|| opt.error("hosts: ttl needs a time in second"))?;
                let ttl: i64 = ttl.parse().map_err(|_| opt.error("hosts: ttl needs a number of second"))?;
                if !(1..=65535).contains(&ttl) {
                    return Err(opt.error("hosts: ttl provided is invalid"));
                }
                o.ttl = ttl as u32;
            }
            "reload" => {
                let [t] = args.as_slice() else {
                    return Err(opt.error("hosts: reload needs a duration (zero seconds to disable)"));
                };
                o.reload =
                    parse_duration(t).ok_or_else(|| opt.error(format!("hosts: invalid duration for reload '{t}'")))?;
            }
            // Before `fallthrough`, any other line is a hosts-file line, as CoreDNS reads it.
            other if o.fall.is_none() => {
                o.inline.push(std::iter::once(other).chain(args.iter().copied()).collect::<Vec<_>>().join(" "))
            }
            other => return Err(opt.error(format!("hosts: unknown property '{other}'"))),
        }
    }
    if o.fall_unsupported && o.fall.is_none() {
        return Err(d.error("hosts: fallthrough_unsupported requires fallthrough"));
    }
    Ok(Arc::new(o))
}

impl Setup for Options {
    fn build(&self, _block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        let inline = Entries::parse(&self.inline.join("\n"), &self.zones, self.reverse);
        let hosts = Arc::new(Hosts { options: self.clone(), inline, file: RwLock::new(FileState::default()) });
        hosts.read_file();
        if !self.reload.is_zero() {
            tokio::spawn(watch(Arc::downgrade(&hosts), self.reload));
        }
        Ok(hosts)
    }
}

/// The names and addresses of one source (the file or the inline lines).
#[derive(Default, Debug)]
struct Entries {
    v4: HashMap<String, Vec<IpAddr>>,
    v6: HashMap<String, Vec<IpAddr>>,
    wild4: HashMap<String, Vec<IpAddr>>,
    wild6: HashMap<String, Vec<IpAddr>>,
    names: HashMap<IpAddr, Vec<String>>,
}

impl Entries {
    /// Reads hosts-file text: `ADDRESS NAME...` per line, `#` comments; names outside `zones`
    /// are left out, as are lines whose address does not parse.
    fn parse(text: &str, zones: &[String], reverse: bool) -> Entries {
        let mut e = Entries::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let Some(addr) = fields.next() else { continue };
            // A zone index (`fe80::1%eth0`) is no part of the address.
            let Ok(ip) = addr.split('%').next().unwrap_or_default().parse::<IpAddr>() else { continue };
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            for name in fields {
                let name = normalize_zone(name);
                if longest_zone(&name, zones).is_none() {
                    continue;
                }
                let wild = name.starts_with("*.");
                let map = match (ip.is_ipv4(), wild) {
                    (true, false) => &mut e.v4,
                    (false, false) => &mut e.v6,
                    (true, true) => &mut e.wild4,
                    (false, true) => &mut e.wild6,
                };
                map.entry(name.clone()).or_default().push(ip);
                if reverse && !wild {
                    e.names.entry(ip).or_default().push(name);
                }
            }
        }
        e
    }

    /// The addresses of `name` of one family: its own, else a wildcard one label above it.
    fn addresses(&self, name: &str, v4: bool) -> &[IpAddr] {
        let (exact, wild) = if v4 { (&self.v4, &self.wild4) } else { (&self.v6, &self.wild6) };
        if let Some(ips) = exact.get(name) {
            return ips;
        }
        let pattern = name.split_once('.').map(|(_, parent)| format!("*.{parent}"));
        pattern.and_then(|p| wild.get(&p)).map_or(&[], Vec::as_slice)
    }

    fn len(&self) -> usize {
        [&self.v4, &self.v6, &self.wild4, &self.wild6].iter().flat_map(|m| m.values()).map(Vec::len).sum::<usize>()
            + self.names.values().map(Vec::len).sum::<usize>()
    }
}

#[derive(Default)]
struct FileState {
    entries: Entries,
    /// The modification time and size last read: either changing means a reload.
    stamp: Option<FileStamp>,
}

pub struct Hosts {
    options: Options,
    inline: Entries,
    file: RwLock<FileState>,
}

/// Checks the file every `period` while the plugin is in use (a Corefile reload drops it).
async fn watch(hosts: Weak<Hosts>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(hosts) = hosts.upgrade() else { return };
        // A small file read off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || hosts.read_file()).await;
    }
}

impl Hosts {
    /// Reads the file again when it changed; a file that cannot be read keeps what was read.
    fn read_file(&self) {
        let path = &self.options.file;
        let Some(stamp) = FileStamp::of(path) else { return };
        if self.file.read().unwrap_or_else(|p| p.into_inner()).stamp == Some(stamp) {
            return;
        }
        let Ok(text) = std::fs::read_to_string(path) else { return };
        let entries = Entries::parse(&text, &self.options.zones, self.options.reverse);
        let file = path.display().to_string();
        registry().set("coredns_hosts_entries", &[&file], (entries.len() + self.inline.len()) as f64);
        let at = stamp.modified.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        registry().set("coredns_hosts_reload_timestamp_seconds", &[], at);
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = FileState { entries, stamp: Some(stamp) };
    }

    /// The file's addresses of `name`, then the inline lines'.
    fn addresses(&self, name: &str, v4: bool) -> Vec<IpAddr> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        file.entries.addresses(name, v4).iter().chain(self.inline.addresses(name, v4)).copied().collect()
    }

    fn names(&self, ip: IpAddr) -> Vec<String> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        let of = |e: &Entries| e.names.get(&ip).cloned().unwrap_or_default();
        let mut names = of(&file.entries);
        names.extend(of(&self.inline));
        names
    }

    fn falls(&self, qname: &str) -> bool {
        self.options.fall.as_ref().is_some_and(|zones| zones.iter().any(|z| is_subdomain(qname, z)))
    }

    async fn answer<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        let qname = q.qname.as_str();
        if longest_zone(qname, &self.options.zones).is_none() && q.qtype != RecordType::PTR {
            return next.run(q).await;
        }
        let Ok(owner) = Name::from_ascii(qname) else { return next.run(q).await };
        let ttl = self.options.ttl;
        let answers: Vec<Record> = match q.qtype {
            RecordType::PTR => {
                // PTR zones need not be named: a reverse name with no entry is always passed on.
                let names = kubernetai_guest::name::reverse_address(qname).map(|ip| self.names(ip)).unwrap_or_default();
                if names.is_empty() {
                    return next.run(q).await;
                }
                names
                    .iter()
                    .filter_map(|n| Name::from_ascii(n).ok())
                    .map(|n| Record::from_rdata(owner.clone(), ttl, RData::PTR(PTR(n))))
                    .collect()
            }
            RecordType::A => self
                .addresses(qname, true)
                .into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(Record::from_rdata(owner.clone(), ttl, RData::A(A(v4)))),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            RecordType::AAAA => self
                .addresses(qname, false)
                .into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(v6) => Some(Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(v6)))),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            _ if self.options.fall_unsupported && self.falls(qname) => return next.run(q).await,
            _ => Vec::new(),
        };
        let known =
            !answers.is_empty() || !self.addresses(qname, true).is_empty() || !self.addresses(qname, false).is_empty();
        if !known {
            if self.falls(qname) {
                return next.run(q).await;
            }
            // No SOA to say NXDOMAIN with: CoreDNS answers SERVFAIL.
            return Reply::Fail {
                rcode: ResponseCode::ServFail,
                reason: format!("hosts: no entry for {qname}"),
                by: BY,
            };
        }
        q.respond(BY, ResponseCode::NoError, [answers, vec![], vec![]])
    }
}

impl Plugin for Hosts {
    fn name(&self) -> &'static str {
        BY
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.answer(next, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_text_reads_as_coredns_reads_it() {
        let zones = vec![".".to_string()];
        let e = Entries::parse(
            "# comment\n127.0.0.1 localhost\n192.168.1.10 Example.COM example # trailing\n::1 localhost ip6-localhost\n\
             fe80::1%eth0 link\n::ffff:10.0.0.1 mapped\nnot-an-ip name\n10.9.9.9\n192.168.1.20 *.apps.example.com\n",
            &zones,
            true,
        );
        let v4 = |n: &str| e.addresses(n, true).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(v4("example.com."), ["192.168.1.10"]);
        assert_eq!(v4("example."), ["192.168.1.10"]);
        assert_eq!(v4("mapped."), ["10.0.0.1"]);
        assert_eq!(e.addresses("localhost.", false).iter().map(ToString::to_string).collect::<Vec<_>>(), ["::1"]);
        assert_eq!(e.addresses("link.", false).len(), 1);
        // One label below the wildcard only, never the apex.
        assert_eq!(v4("web.apps.example.com."), ["192.168.1.20"]);
        assert!(v4("apps.example.com.").is_empty() && v4("a.web.apps.example.com.").is_empty());
        assert_eq!(
            e.names.get(&"192.168.1.10".parse().expect("ip")).cloned().unwrap_or_default(),
            ["example.com.", "example."]
        );
        // Only names within the zones are kept.
        let scoped = Entries::parse("10.0.0.1 a.example.org b.example.net\n", &["example.org.".to_string()], false);
        assert_eq!(scoped.v4.keys().collect::<Vec<_>>(), ["a.example.org."]);
        assert!(scoped.names.is_empty(), "no_reverse");
    }
}
