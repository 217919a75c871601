//! Conformance cases as data (`tests/conformance/*.cases`): reading them, building the query of
//! a case, and checking a response against it. Shared by the guest's native tests and the
//! end-to-end tests through the real binary, so both hold the same table.

#![allow(dead_code)]

use std::path::Path;
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};

/// One query and the answer it must get.
#[derive(Debug, Clone)]
pub struct Case {
    /// Where the case starts, for failure messages ("basic.cases:12").
    pub at: String,
    pub qname: String,
    pub qtype: RecordType,
    pub rcode: String,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

/// Reads every case of a `.cases` file.
pub fn load(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            cases.extend(current.take());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let at = format!("{file}:{}", i + 1);
        match word {
            "query" => {
                cases.extend(current.take());
                let (qname, qtype) = rest.split_once(' ').unwrap_or_else(|| panic!("{at}: query NAME TYPE"));
                let qtype = RecordType::from_str(qtype).unwrap_or_else(|_| panic!("{at}: unknown type {qtype}"));
                current = Some(Case {
                    at,
                    qname: qname.into(),
                    qtype,
                    rcode: String::new(),
                    answer: vec![],
                    authority: vec![],
                    additional: vec![],
                });
            }
            _ => {
                let case = current.as_mut().unwrap_or_else(|| panic!("{at}: '{word}' before any query"));
                match word {
                    "rcode" => case.rcode = rest.to_string(),
                    "answer" => case.answer.push(rest.to_string()),
                    "authority" => case.authority.push(rest.to_string()),
                    "additional" => case.additional.push(rest.to_string()),
                    _ => panic!("{at}: unknown line '{word}'"),
                }
            }
        }
    }
    cases.extend(current);
    cases
}

impl Case {
    /// The query packet for this case, with id `id`, RD set and an EDNS0 payload size of 1232
    /// (as dig sends), so answers are compared whole rather than cut to 512 bytes.
    pub fn packet(&self, id: u16) -> Vec<u8> {
        let mut m = Message::query();
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        m.metadata.id = id;
        m.metadata.recursion_desired = true;
        let name = Name::from_ascii(&self.qname).unwrap_or_else(|e| panic!("{}: {e}", self.at));
        m.add_query(Query::query(name, self.qtype));
        m.to_vec().unwrap_or_else(|e| panic!("{}: {e}", self.at))
    }

    /// Checks `response` against the case; the error says what differs.
    pub fn check(&self, response: &[u8]) -> Result<(), String> {
        let m = Message::from_vec(response).map_err(|e| format!("{}: unparseable response: {e}", self.at))?;
        let rcode = rcode_name(m.metadata.response_code.low());
        let mut problems = Vec::new();
        if rcode != self.rcode {
            problems.push(format!("rcode {rcode}, want {}", self.rcode));
        }
        for (section, want, got) in [
            ("answer", &self.answer, &m.answers),
            ("authority", &self.authority, &m.authorities),
            ("additional", &self.additional, &m.additionals),
        ] {
            let got: Vec<String> = got.iter().map(render).collect();
            if !same_set(want, &got) {
                problems.push(format!("{section}:\n    got  {got:?}\n    want {want:?}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{} {} {}: {}", self.at, self.qname, self.qtype, problems.join("; ")))
        }
    }
}

fn rcode_name(low: u8) -> String {
    match low {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
    .to_string()
}

/// A record in zone-file text: owner ttl class type rdata (TXT without quotes).
pub fn render(r: &Record) -> String {
    format!("{} {} {} {} {}", r.name, r.ttl, r.dns_class, r.record_type(), r.data).replace('"', "")
}

fn matches(want: &str, got: &str) -> bool {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.split_whitespace().collect(), got.split_whitespace().collect());
    w.len() == g.len() && w.iter().zip(&g).all(|(w, g)| *w == "*" || w == g)
}

fn same_set(want: &[String], got: &[String]) -> bool {
    if want.len() != got.len() {
        return false;
    }
    let mut left: Vec<&String> = got.iter().collect();
    want.iter().all(|w| match left.iter().position(|g| matches(w, g)) {
        Some(i) => {
            left.remove(i);
            true
        }
        None => false,
    })
}
