//! The `template` plugin, as CoreDNS's: a query of the template's class and type in its zones
//! whose name matches one of its regexes is answered from record templates filled from the
//! query (`answer`, `additional`, `authority`, `rcode`). A query in its zones that matches no
//! regex falls through with `fallthrough` (to the next template or plugin) and is a SERVFAIL
//! without it, as CoreDNS answers.
//!
//! Templates here are the part of Go's template language CoreDNS's examples use: `{{ .Name }}`,
//! `{{ .Zone }}`, `{{ .Class }}`, `{{ .Type }}`, `{{ .Remote }}`, `{{ index .Match N }}` and
//! `{{ .Group.NAME }}`; anything else in `{{ }}`, and the `var`, `expr` and `ederror` options,
//! are refused at start by name.

use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use kubernetai_guest::name::{is_subdomain, longest_zone};
use regex::Regex;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::args::zone_of;
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

const BY: &str = "template";

/// One piece of a record template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Name,
    Zone,
    Class,
    Type,
    Remote,
    Match(usize),
    Group(String),
}

/// Reads a record template, refusing what it cannot fill.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(rest[..open].to_string()));
        let close = rest[open..].find("}}").ok_or_else(|| format!("unclosed '{{{{' in template {text:?}"))? + open;
        let expr = rest[open + 2..close].trim().trim_start_matches('-').trim_end_matches('-').trim();
        let words: Vec<&str> = expr.split_whitespace().collect();
        out.push(match words.as_slice() {
            [".Name"] => Piece::Name,
            [".Zone"] => Piece::Zone,
            [".Class"] => Piece::Class,
            [".Type"] => Piece::Type,
            [".Remote"] => Piece::Remote,
            ["index", ".Match", n] => {
                Piece::Match(n.parse().map_err(|_| format!("index .Match needs a number: {expr:?}"))?)
            }
            [group] if group.starts_with(".Group.") => Piece::Group(group[".Group.".len()..].to_string()),
            _ => return Err(format!("template expression {{{{ {expr} }}}} is not supported by this server")),
        });
        rest = &rest[close + 2..];
    }
    out.push(Piece::Text(rest.to_string()));
    Ok(out)
}

/// `template CLASS TYPE [ZONE...] { ... }`, read.
#[derive(Clone, Debug)]
pub struct Template {
    class: Option<DNSClass>,
    qtype: Option<RecordType>,
    zones: Vec<String>,
    regexes: Vec<Regex>,
    /// answer, additional, authority.
    records: [Vec<Vec<Piece>>; 3],
    rcode: ResponseCode,
    fall: Option<Vec<String>>,
}

/// Reads one `template`.
pub fn setup(d: &Directive, block_zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    let args = d.arg_texts();
    let [class, qtype, zones @ ..] = args.as_slice() else {
        return Err(d.error("template: needs a CLASS and a TYPE"));
    };
    let class = match class.to_ascii_uppercase().as_str() {
        "ANY" => None,
        "IN" => Some(DNSClass::IN),
        "CH" => Some(DNSClass::CH),
        "HS" => Some(DNSClass::HS),
        other => return Err(d.error(format!("template: invalid query class {other:?}"))),
    };
    let qtype = match qtype.to_ascii_uppercase().as_str() {
        "ANY" => None,
        other => {
            Some(other.parse::<RecordType>().map_err(|_| d.error(format!("template: invalid RR type {other:?}")))?)
        }
    };
    let zones = if zones.is_empty() {
        block_zones.to_vec()
    } else {
        d.args[2..].iter().map(zone_of).collect::<Result<_, _>>()?
    };
    let mut t = Template {
        class,
        qtype,
        zones,
        regexes: Vec::new(),
        records: [Vec::new(), Vec::new(), Vec::new()],
        rcode: ResponseCode::NoError,
        fall: None,
    };
    for opt in d.block.as_deref().unwrap_or_default() {
        let words = opt.arg_texts();
        let name = opt.name.text.as_str();
        let err = |m: String| opt.error(format!("template: {m}"));
        match name {
            "match" => {
                for w in &words {
                    if w.len() > 10_000 {
                        return Err(err("regex patterns must not exceed 10000 characters".into()));
                    }
                    t.regexes.push(Regex::new(w).map_err(|e| err(format!("invalid regex {w:?}: {e}")))?);
                }
            }
            "answer" | "additional" | "authority" => {
                let section = ["answer", "additional", "authority"].iter().position(|s| *s == name).unwrap_or(0);
                for w in &words {
                    t.records[section].push(pieces(w).map_err(err)?);
                }
            }
            "rcode" => {
                let [code] = words.as_slice() else { return Err(err("rcode takes one code".into())) };
                t.rcode = crate::dns::rcode_named(code).ok_or_else(|| err(format!("unknown rcode {code:?}")))?;
            }
            "fallthrough" => {
                t.fall = Some(if words.is_empty() {
                    vec![".".to_string()]
                } else {
                    opt.args.iter().map(zone_of).collect::<Result<_, _>>()?
                });
            }
            "var" | "expr" | "ederror" => return Err(err(format!("{name} is not supported by this server yet"))),
            other => return Err(err(format!("unknown property '{other}'"))),
        }
    }
    if t.regexes.is_empty() {
        t.regexes.push(Regex::new(".*").map_err(|e| d.error(e.to_string()))?);
    }
    Ok(Arc::new(t))
}

impl Template {
    /// Fills `pieces` for this query.
    fn fill(pieces: &[Piece], q: &Query, zone: &str, caps: &regex::Captures<'_>, regex: &Regex) -> String {
        let question = &q.message.queries[0];
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Name => out.push_str(&q.qname),
                Piece::Zone => out.push_str(zone),
                Piece::Class => out.push_str(&question.query_class().to_string()),
                Piece::Type => out.push_str(&q.qtype.to_string()),
                Piece::Remote => out.push_str(&q.client.ip().to_string()),
                Piece::Match(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                Piece::Group(name) => {
                    let known = regex.capture_names().any(|n| n == Some(name.as_str()));
                    out.push_str(if known { caps.name(name).map_or("", |m| m.as_str()) } else { "" });
                }
            }
        }
        out
    }

    /// The records of one filled template: a one-record zone text read with the zone's origin.
    /// The query's name is only ever in the text as an escaped name, so it cannot start a
    /// directive; a line break or a `$` at the start is refused all the same.
    fn records(text: &str, zone: &str) -> Result<Vec<Record>, String> {
        if text.contains(['\n', '\r']) || text.trim_start().starts_with('$') {
            return Err(format!("template produced a record that is no one line: {text:?}"));
        }
        let origin = Name::from_ascii(zone).map_err(|e| e.to_string())?;
        let (_, sets) = Parser::new(text, None, Some(origin)).parse().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(sets.into_values().flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>()).collect())
    }

    async fn answer<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        let question = &q.message.queries[0];
        let Some(zone) = longest_zone(&q.qname, &self.zones) else { return next.run(q).await };
        let class_ok =
            self.class.is_none_or(|c| question.query_class() == c || question.query_class() == DNSClass::ANY);
        let type_ok = self.qtype.is_none_or(|t| q.qtype == t || q.qtype == RecordType::ANY);
        if !class_ok || !type_ok {
            return next.run(q).await;
        }
        let found = self.regexes.iter().find_map(|r| r.captures(&q.qname).map(|c| (r, c)));
        let Some((regex, caps)) = found else {
            if self.fall.as_ref().is_some_and(|zones| zones.iter().any(|z| is_subdomain(&q.qname, z))) {
                return next.run(q).await;
            }
            return Reply::servfail(BY, format!("template: no regex matched {}", q.qname));
        };
        let mut sections: [Vec<Record>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (section, templates) in sections.iter_mut().zip(&self.records) {
            for pieces in templates {
                match Self::records(&Self::fill(pieces, q, zone, &caps, regex), zone) {
                    Ok(records) => section.extend(records),
                    Err(e) => return Reply::servfail(BY, format!("template: {e}")),
                }
            }
        }
        let [answer, additional, authority] = sections;
        q.respond(BY, self.rcode, [answer, authority, additional])
    }
}

impl Plugin for Template {
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
    fn templates_read_the_expressions_coredns_examples_use() {
        let p = pieces("{{ .Name }} 60 IN A {{ .Group.a }}.{{ index .Match 2 }}").expect("reads");
        assert_eq!(
            p,
            [
                Piece::Text(String::new()),
                Piece::Name,
                Piece::Text(" 60 IN A ".into()),
                Piece::Group("a".into()),
                Piece::Text(".".into()),
                Piece::Match(2),
                Piece::Text(String::new())
            ]
        );
        assert!(pieces("{{ .Meta \"kubernetes/client-namespace\" }}").expect_err("refused").contains("not supported"));
        assert!(pieces("{{ .Name").expect_err("refused").contains("unclosed"));
    }

    #[test]
    fn a_filled_template_reads_as_records() {
        let r = Template::records("ip-10-0-0-1.example. 60 IN A 10.0.0.1", "example.").expect("a record");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ttl, 60);
        assert!(Template::records("$INCLUDE /etc/passwd", "example.").is_err());
        assert!(Template::records("x.example. 60 IN A 10.0.0.1\n$INCLUDE /etc/passwd", "example.").is_err());
    }
}
