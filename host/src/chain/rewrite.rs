//! The `rewrite` plugin, as CoreDNS's: a query's name, type or class is rewritten before the
//! rest of the chain sees it, and the answer goes back under the question the client asked
//! (with `answer auto|name|value`, the records' names and values too). A `ttl` rule sets the
//! answer's TTLs. Each `rewrite` directive is one rule; rules run in Corefile order, and a rule
//! in `stop` mode (the default) that matched ends the rewriting, as CoreDNS's rule list does.
//! Not here yet: the `edns0`, `cname` and `rcode` fields (refused by name at start).

use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use regex::Regex;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

const BY: &str = "rewrite";

/// How a rule matches the query name.
#[derive(Clone, Debug)]
enum Match {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Substring(String),
    Regex(Regex),
}

impl Match {
    /// Reads `[TYPE] FROM`: the type given (`exact` when `args` is the pattern alone).
    fn read(kind: &str, from: &str) -> Result<Match, String> {
        // CoreDNS normalizes every pattern but a regex as a name: lowercase, fully qualified.
        let name = || kubernetai_guest::name::normalize_zone(from);
        Ok(match kind {
            "exact" => Match::Exact(name()),
            "prefix" => Match::Prefix(name()),
            "suffix" => Match::Suffix(name()),
            "substring" => Match::Substring(name()),
            "regex" => {
                if from.len() > 10_000 {
                    return Err("regex patterns must not exceed 10000 characters".into());
                }
                Match::Regex(Regex::new(from).map_err(|e| format!("invalid regex pattern {from:?}: {e}"))?)
            }
            other => {
                return Err(format!(
                    "name rule supports only exact, prefix, suffix, substring, and regex name matching, received: {other}"
                ));
            }
        })
    }

    fn matches(&self, qname: &str) -> bool {
        match self {
            Match::Exact(n) => qname == n,
            Match::Prefix(p) => qname.starts_with(p.as_str()),
            Match::Suffix(s) => qname.ends_with(s.as_str()),
            Match::Substring(s) => qname.contains(s.as_str()),
            Match::Regex(r) => r.is_match(qname),
        }
    }

    /// `qname` rewritten to `to`, or None when the rule does not match it.
    fn rewrite(&self, qname: &str, to: &str) -> Option<String> {
        match self {
            Match::Exact(n) => (qname == n).then(|| to.to_string()),
            Match::Prefix(p) => qname.strip_prefix(p.as_str()).map(|rest| format!("{to}{rest}")),
            Match::Suffix(s) => qname.strip_suffix(s.as_str()).map(|rest| format!("{rest}{to}")),
            Match::Substring(s) => qname.contains(s.as_str()).then(|| qname.replace(s.as_str(), to)),
            Match::Regex(r) => r.captures(qname).map(|c| groups(&c, to)),
        }
    }
}

/// `to` with `{N}` replaced by the regex's group N.
fn groups(captures: &regex::Captures<'_>, to: &str) -> String {
    let mut out = to.to_string();
    for (i, group) in captures.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), group.map_or("", |m| m.as_str()));
    }
    out
}

/// A rewrite of names in the answer: a regex and its replacement with `{N}` groups.
#[derive(Clone, Debug)]
struct Regexed {
    from: Regex,
    to: String,
}

impl Regexed {
    fn apply(&self, name: &str) -> Option<String> {
        let c = self.from.captures(name)?;
        Some(kubernetai_guest::name::normalize_zone(&groups(&c, &self.to)))
    }
}

/// How the answer's records are written back for a name rule.
#[derive(Clone, Debug, Default)]
struct Answer {
    /// `answer auto`: the rewritten name mapped back wherever it appears, owners and values.
    auto: bool,
    names: Vec<Regexed>,
    values: Vec<Regexed>,
}

#[derive(Clone, Debug)]
enum Field {
    Name { matcher: Match, to: String, answer: Answer },
    Type { from: RecordType, to: RecordType },
    Class { from: DNSClass, to: DNSClass },
    Ttl { matcher: Match, min: u32, max: u32 },
}

/// One `rewrite` directive.
#[derive(Clone, Debug)]
pub struct Rule {
    stop: bool,
    field: Field,
}

/// Reads one `rewrite` directive: `rewrite [continue|stop] FIELD …`, or its words in a block
/// (`rewrite stop { name … \n answer … }`).
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    let mut words: Vec<String> = d.arg_texts().iter().map(|w| w.to_string()).collect();
    if words.len() < 2 {
        for line in d.block.as_deref().unwrap_or_default() {
            words.push(line.name.text.clone());
            words.extend(line.arg_texts().iter().map(|w| w.to_string()));
        }
    }
    rule(&words).map(|r| Arc::new(r) as Arc<dyn Setup>).map_err(|m| d.error(format!("rewrite: {m}")))
}

fn rule(words: &[String]) -> Result<Rule, String> {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let (stop, rest) = match lower.first().map(String::as_str) {
        None => return Err("no rule type specified for rewrite".into()),
        Some(mode @ ("continue" | "stop")) if words.len() < 2 => {
            return Err(format!("{mode} rule must begin with a rule type"));
        }
        Some("continue") => (false, &words[1..]),
        Some("stop") => (true, &words[1..]),
        Some(_) => (true, words),
    };
    let kind = rest[0].to_ascii_lowercase();
    let args = &rest[1..];
    let field = match kind.as_str() {
        "answer" => return Err("response rewrites must begin with a name rule".into()),
        "name" => name_rule(args)?,
        "type" | "class" if args.len() != 2 => return Err(format!("{kind} rules must have exactly two arguments")),
        "type" => {
            let t = |s: &str| s.to_ascii_uppercase().parse::<RecordType>().map_err(|_| format!("invalid type {s:?}"));
            Field::Type { from: t(&args[0])?, to: t(&args[1])? }
        }
        "class" => {
            let c = |s: &str| match s.to_ascii_uppercase().as_str() {
                "IN" => Ok(DNSClass::IN),
                "CH" => Ok(DNSClass::CH),
                "HS" => Ok(DNSClass::HS),
                _ => Err(format!("invalid class {s:?}")),
            };
            Field::Class { from: c(&args[0])?, to: c(&args[1])? }
        }
        "ttl" => ttl_rule(args)?,
        "edns0" | "cname" | "rcode" => return Err(format!("the {kind} field is not supported by this server yet")),
        _ => return Err(format!("invalid rule type {:?}", rest[0])),
    };
    Ok(Rule { stop, field })
}

fn name_rule(args: &[String]) -> Result<Field, String> {
    let (kind, from, to, options) = match args {
        [from, to] => ("exact".to_string(), from, to, &[][..]),
        [kind, from, to, options @ ..] => (kind.to_ascii_lowercase(), from, to, options),
        _ => return Err("too few arguments for a name rule".into()),
    };
    let matcher = Match::read(&kind, from)?;
    let to = kubernetai_guest::name::normalize_zone(to);
    let mut answer = Answer { auto: matches!(matcher, Match::Exact(_)), ..Answer::default() };
    let mut rest = options;
    while let Some((word, more)) = rest.split_first() {
        if !word.eq_ignore_ascii_case("answer") {
            return Err(format!("rewrite answer rules must begin with 'answer', got {word:?}"));
        }
        match more {
            [auto, tail @ ..] if auto.eq_ignore_ascii_case("auto") => {
                answer.auto = true;
                rest = tail;
            }
            [which, from, to, tail @ ..]
                if which.eq_ignore_ascii_case("name") || which.eq_ignore_ascii_case("value") =>
            {
                let from = Regex::new(from).map_err(|e| format!("invalid regex pattern {from:?}: {e}"))?;
                let r = Regexed { from, to: to.clone() };
                if which.eq_ignore_ascii_case("name") {
                    answer.names.push(r)
                } else {
                    answer.values.push(r)
                }
                rest = tail;
            }
            _ => return Err("an answer rule is 'answer auto', 'answer name FROM TO' or 'answer value FROM TO'".into()),
        }
    }
    if answer.auto && !answer.names.is_empty() && !matches!(matcher, Match::Exact(_)) {
        return Err("auto name answer rule cannot be combined with explicit name answer rules".into());
    }
    Ok(Field::Name { matcher, to, answer })
}

fn ttl_rule(args: &[String]) -> Result<Field, String> {
    let (kind, from, ttl) = match args {
        [from, ttl] => ("exact".to_string(), from, ttl),
        [kind, from, ttl] => (kind.to_ascii_lowercase(), from, ttl),
        _ => return Err(format!("too few ({}) arguments for a ttl rule", args.len())),
    };
    let invalid = || format!("invalid TTL '{ttl}' for a ttl rule");
    let num = |s: &str| s.parse::<u32>().map_err(|_| invalid());
    let (min, max) = match ttl.split_once('-') {
        None => (num(ttl)?, num(ttl)?),
        Some(("", max)) => (0, num(max)?),
        Some((min, "")) => (num(min)?, u32::MAX),
        Some((min, max)) => (num(min)?, num(max)?),
    };
    if min > max {
        return Err(invalid());
    }
    Ok(Field::Ttl { matcher: Match::read(&kind, from)?, min, max })
}

/// What a matched rule does to the answer on its way back.
enum Back<'r> {
    /// The question restored; with a name rule, its answer rules applied (`asked`: the name
    /// rewritten to, mapped back to `original` by `answer auto`).
    Question {
        rule: &'r Rule,
        asked: String,
        original: String,
    },
    Ttl {
        min: u32,
        max: u32,
    },
}

impl Rule {
    async fn answer<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        if q.rewrite_stopped {
            return next.run(q).await;
        }
        let question = &q.message.queries[0];
        let (asked, back) = match &self.field {
            Field::Name { matcher, to, .. } => match matcher.rewrite(&q.qname, to) {
                Some(name) => {
                    let Ok(new) = Name::from_ascii(&name) else {
                        return Reply::servfail(BY, format!("invalid name after rewrite: {name}"));
                    };
                    let back = Back::Question { rule: self, asked: name, original: q.qname.clone() };
                    (q.asked_as(new, q.qtype, question.query_class()), back)
                }
                None => return next.run(q).await,
            },
            Field::Type { from, to } if q.qtype == *from => {
                let back = Back::Question { rule: self, asked: String::new(), original: String::new() };
                (q.asked_as(question.name().clone(), *to, question.query_class()), back)
            }
            Field::Class { from, to } if question.query_class() == *from => {
                let back = Back::Question { rule: self, asked: String::new(), original: String::new() };
                (q.asked_as(question.name().clone(), q.qtype, *to), back)
            }
            Field::Ttl { matcher, min, max } if matcher.matches(&q.qname) => (None, Back::Ttl { min: *min, max: *max }),
            _ => return next.run(q).await,
        };
        let reply = match asked {
            Some(mut rewritten) => {
                rewritten.rewrite_stopped = self.stop;
                next.run(&rewritten).await
            }
            None if matches!(back, Back::Ttl { .. }) => {
                let mut same = q.clone();
                same.rewrite_stopped = self.stop;
                next.run(&same).await
            }
            None => return Reply::servfail(BY, "the rewritten query could not be written"),
        };
        match reply {
            Reply::Answer { bytes, by } => match Message::from_vec(&bytes) {
                Ok(mut m) => {
                    back.apply(&mut m, q);
                    match m.to_vec() {
                        Ok(bytes) => Reply::Answer { bytes, by },
                        Err(e) => Reply::servfail(BY, e.to_string()),
                    }
                }
                Err(_) => Reply::Answer { bytes, by },
            },
            other => other,
        }
    }
}

impl Back<'_> {
    fn apply(&self, m: &mut Message, q: &Query) {
        match self {
            Back::Ttl { min, max } => {
                for r in m.answers.iter_mut().chain(m.authorities.iter_mut()).chain(m.additionals.iter_mut()) {
                    r.ttl = r.ttl.clamp(*min, *max);
                }
            }
            Back::Question { rule, asked, original } => {
                m.queries = q.message.queries.clone();
                let Field::Name { answer, matcher, to } = &rule.field else { return };
                // A suffix rule maps any name under the new suffix back; others the name asked.
                let remap = match matcher {
                    Match::Suffix(from) => (to.as_str(), from.as_str(), true),
                    _ => (asked.as_str(), original.as_str(), false),
                };
                for r in m.answers.iter_mut().chain(m.authorities.iter_mut()).chain(m.additionals.iter_mut()) {
                    rewrite_record(r, answer, remap);
                }
            }
        }
    }
}

/// `answer auto` maps `asked` back to `original` (`remap`: the name itself or as a suffix after
/// a dot; a suffix rule's: any name ending in it); `answer name` and `answer value` apply
/// their regexes to owners and to values.
fn rewrite_record(r: &mut Record, answer: &Answer, remap: (&str, &str, bool)) {
    let (asked, original, any_suffix) = remap;
    let auto = |name: &str| -> Option<String> {
        if !answer.auto {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        if any_suffix {
            return lower.strip_suffix(asked).map(|head| format!("{head}{original}"));
        }
        if lower == asked {
            return Some(original.to_string());
        }
        let i = lower.len().checked_sub(asked.len())?;
        (i > 0 && lower.as_bytes()[i - 1] == b'.' && &lower[i..] == asked).then(|| format!("{}{original}", &lower[..i]))
    };
    let owner = r.name.to_ascii();
    let new_owner = auto(&owner).or_else(|| answer.names.iter().find_map(|n| n.apply(&owner.to_ascii_lowercase())));
    if let Some(n) = new_owner.and_then(|n| Name::from_ascii(n).ok()) {
        r.name = n;
    }
    let value = |name: &Name| -> Option<Name> {
        let text = name.to_ascii();
        let new = auto(&text).or_else(|| answer.values.iter().find_map(|v| v.apply(&text.to_ascii_lowercase())))?;
        Name::from_ascii(new).ok()
    };
    let data = match &r.data {
        RData::CNAME(CNAME(n)) => value(n).map(|n| RData::CNAME(CNAME(n))),
        RData::NS(NS(n)) => value(n).map(|n| RData::NS(NS(n))),
        RData::PTR(PTR(n)) => value(n).map(|n| RData::PTR(PTR(n))),
        RData::MX(mx) => value(&mx.exchange).map(|n| RData::MX(MX::new(mx.preference, n))),
        RData::SRV(srv) => value(&srv.target).map(|n| RData::SRV(SRV::new(srv.priority, srv.weight, srv.port, n))),
        _ => None,
    };
    if let Some(d) = data {
        r.data = d;
    }
}

impl Plugin for Rule {
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

    fn read(line: &str) -> Result<Rule, String> {
        rule(&line.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn name_rules_rewrite_as_coredns_matches() {
        let cases = [
            ("name example.net example.org", "example.net.", Some("example.org.")),
            ("name exact example.net example.org", "www.example.net.", None),
            ("name prefix foo bar", "foo.example.org.", Some("bar.example.org.")),
            ("name suffix .schmoogle.com. .google.com.", "www.schmoogle.com.", Some("www.google.com.")),
            (
                "name substring service.us-west-1.example.org service.us-west-1.consul",
                "ftp.service.us-west-1.example.org.",
                Some("ftp.service.us-west-1.consul."),
            ),
            (
                r"name regex (.*)-(us-west-1)\.example\.org {1}.service.{2}.consul",
                "ftp-us-west-1.example.org.",
                Some("ftp.service.us-west-1.consul."),
            ),
        ];
        for (line, qname, want) in cases {
            let Ok(Rule { field: Field::Name { matcher, to, .. }, .. }) = read(line) else { panic!("{line}") };
            let got = matcher.rewrite(qname, &to).map(|n| kubernetai_guest::name::normalize_zone(&n));
            assert_eq!(got.as_deref(), want, "{line}");
        }
    }

    #[test]
    fn bad_rules_say_why() {
        for (line, want) in [
            ("answer auto", "response rewrites must begin with a name rule"),
            ("name fuzzy a b", "name rule supports only exact"),
            ("type A", "type rules must have exactly two arguments"),
            ("ttl example.org. 10-5", "invalid TTL '10-5' for a ttl rule"),
            ("edns0 local set 0xffee abc", "the edns0 field is not supported by this server yet"),
            ("continue", "continue rule must begin with a rule type"),
            ("name regex ( x", "invalid regex pattern"),
        ] {
            let err = read(line).expect_err(line);
            assert!(err.contains(want), "{line}: {err}");
        }
        let Ok(Rule { stop: false, field: Field::Ttl { min: 30, max: 60, .. } }) =
            read("continue ttl suffix .org 30-60")
        else {
            panic!("a continue ttl rule with a range")
        };
    }

    #[test]
    fn answer_auto_maps_the_rewritten_name_back() {
        let answer = Answer { auto: true, ..Answer::default() };
        let mut r = Record::from_rdata(
            Name::from_ascii("db.shop.svc.cluster.local.").expect("name"),
            5,
            RData::CNAME(CNAME(Name::from_ascii("x.db.shop.svc.cluster.local.").expect("name"))),
        );
        rewrite_record(&mut r, &answer, ("db.shop.svc.cluster.local.", "db.shop.svc.dc1.example.", false));
        assert_eq!(r.name.to_ascii(), "db.shop.svc.dc1.example.");
        assert_eq!(r.data, RData::CNAME(CNAME(Name::from_ascii("x.db.shop.svc.dc1.example.").expect("name"))));
    }
}
