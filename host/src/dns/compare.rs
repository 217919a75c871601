//! Two answers to one query compared as a resolver would see them: the rcode, the flags a
//! resolver acts on (AA, TC), and each section as a set of records — order inside an RRset is
//! not a difference (round robin shuffles it), a zone's SOA serial is not (it moves with every
//! change), TTLs are. Used by module shadowing and `kubernetai module diff`.

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};

/// Where two answers differ. The names are the `kind` label of
/// `kubernetai_shadow_differences_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Difference {
    Rcode,
    Flags,
    Answer,
    Authority,
    Additional,
    /// One side answered and the other did not (passed the query on, dropped it, chased a CNAME
    /// target the other did not).
    Outcome,
    /// The candidate failed: a trap, a missed deadline, or bytes that are no DNS message.
    CandidateError,
}

impl Difference {
    pub const ALL: [Difference; 7] = [
        Difference::Rcode,
        Difference::Flags,
        Difference::Answer,
        Difference::Authority,
        Difference::Additional,
        Difference::Outcome,
        Difference::CandidateError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Difference::Rcode => "rcode",
            Difference::Flags => "flags",
            Difference::Answer => "answer",
            Difference::Authority => "authority",
            Difference::Additional => "additional",
            Difference::Outcome => "outcome",
            Difference::CandidateError => "candidate_error",
        }
    }
}

/// The differences between the running module's answer and the candidate's, in the order of
/// [`Difference`]; empty when a resolver could not tell them apart. An unparseable candidate
/// answer is a candidate error; an unparseable running answer is compared byte for byte.
pub fn answers(running: &[u8], candidate: &[u8]) -> Vec<Difference> {
    // The common case when nothing changed, without parsing either.
    if running == candidate {
        return vec![];
    }
    let Ok(c) = Message::from_vec(candidate) else {
        return vec![Difference::CandidateError];
    };
    let Ok(r) = Message::from_vec(running) else {
        return if running == candidate { vec![] } else { vec![Difference::Answer] };
    };
    let mut out = Vec::new();
    if r.metadata.response_code != c.metadata.response_code {
        out.push(Difference::Rcode);
    }
    let flags = |m: &Message| (m.metadata.authoritative, m.metadata.truncation);
    if flags(&r) != flags(&c) {
        out.push(Difference::Flags);
    }
    let sections = [
        (Difference::Answer, &r.answers, &c.answers),
        (Difference::Authority, &r.authorities, &c.authorities),
        (Difference::Additional, &r.additionals, &c.additionals),
    ];
    for (kind, a, b) in sections {
        if as_set(a) != as_set(b) {
            out.push(kind);
        }
    }
    out
}

/// A section's records in a canonical order, each as text with a SOA's serial left out.
fn as_set(records: &[Record]) -> Vec<String> {
    let mut texts: Vec<String> = records
        .iter()
        .map(|r| match &r.data {
            RData::SOA(soa) => {
                let mut unserialed = soa.clone();
                unserialed.serial = 0;
                Record::from_rdata(r.name.clone(), r.ttl, RData::SOA(unserialed)).to_string()
            }
            _ => r.to_string(),
        })
        .collect();
    texts.sort();
    texts
}

/// An answer as dig prints it, for the log; bytes that are no message are shown as such.
pub fn dig_text(bytes: &[u8]) -> String {
    match Message::from_vec(bytes) {
        Ok(m) => m.to_string(),
        Err(e) => format!(";; {} bytes that are no DNS message: {e}", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, RecordType};

    fn answer(rcode: ResponseCode, aa: bool, ips: &[[u8; 4]], ttl: u32, serial: u32) -> Vec<u8> {
        let name = Name::from_ascii("web.shop.svc.cluster.local.").unwrap_or_else(|e| panic!("{e}"));
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.metadata.response_code = rcode;
        m.metadata.authoritative = aa;
        for ip in ips {
            m.answers.push(Record::from_rdata(name.clone(), ttl, RData::A(A::new(ip[0], ip[1], ip[2], ip[3]))));
        }
        let zone = Name::from_ascii("cluster.local.").unwrap_or_else(|e| panic!("{e}"));
        let soa = SOA::new(zone.clone(), zone.clone(), serial, 7200, 1800, 86400, 5);
        m.authorities.push(Record::from_rdata(zone, 5, RData::SOA(soa)));
        m.to_vec().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_resolver_cannot_tell_apart_reordered_records_or_another_serial() {
        let a = answer(ResponseCode::NoError, true, &[[10, 0, 0, 1], [10, 0, 0, 2]], 5, 100);
        let b = answer(ResponseCode::NoError, true, &[[10, 0, 0, 2], [10, 0, 0, 1]], 5, 200);
        assert_eq!(answers(&a, &b), []);
    }

    #[test]
    fn rcode_flags_records_and_ttls_are_differences() {
        let base = answer(ResponseCode::NoError, true, &[[10, 0, 0, 1]], 5, 1);
        let cases = [
            (answer(ResponseCode::NXDomain, true, &[[10, 0, 0, 1]], 5, 1), vec![Difference::Rcode]),
            (answer(ResponseCode::NoError, false, &[[10, 0, 0, 1]], 5, 1), vec![Difference::Flags]),
            (answer(ResponseCode::NoError, true, &[[10, 0, 0, 9]], 5, 1), vec![Difference::Answer]),
            (answer(ResponseCode::NoError, true, &[[10, 0, 0, 1]], 30, 1), vec![Difference::Answer]),
            (answer(ResponseCode::NoError, true, &[], 5, 1), vec![Difference::Answer]),
            (vec![0xde, 0xad], vec![Difference::CandidateError]),
        ];
        for (candidate, want) in cases {
            assert_eq!(answers(&base, &candidate), want, "{}", dig_text(&candidate));
        }
    }
}
