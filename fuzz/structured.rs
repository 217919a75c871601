//! Well-formed queries built from structured input: names near the cluster's (random labels under
//! its zones), any type and class, EDNS with random options and sizes, flag bits and several
//! questions. They reach deeper than raw bytes, which the parser mostly refuses. Shared by the
//! `query_structured` fuzz target and the replay of its crashes in `tests/fuzz/replay.rs`.

use arbitrary::Arbitrary;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RecordType};

const ZONES: [&str; 5] = ["cluster.local.", "clusterset.local.", "10.in-addr.arpa.", "example.", "org."];
const WORDS: [&str; 12] = ["ns", "svc", "pod", "web", "db", "db-0", "_http", "_tcp", "ext", "10-1-0-1", "1", "0"];

#[derive(Arbitrary, Debug)]
pub struct Input {
    knob: u8,
    id: u16,
    flags: u8,
    questions: Vec<Question>,
    edns: Option<EdnsInput>,
}

#[derive(Arbitrary, Debug)]
struct Question {
    labels: Vec<Label>,
    zone: u8,
    qtype: u16,
    qclass: u16,
}

#[derive(Arbitrary, Debug)]
enum Label {
    Word(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct EdnsInput {
    size: u16,
    version: u8,
    dnssec_ok: bool,
    options: Vec<(u16, Vec<u8>)>,
}

fn name(q: &Question) -> Option<Name> {
    let mut text = String::new();
    for label in &q.labels {
        match label {
            Label::Word(i) => text.push_str(WORDS[usize::from(*i) % WORDS.len()]),
            Label::Raw(s) => text.push_str(s),
        }
        text.push('.');
    }
    text.push_str(ZONES[usize::from(q.zone) % ZONES.len()]);
    Name::from_utf8(&text).ok()
}

/// The bytes `kubernetai_guest::fuzzing::query` gets: the knob byte, then the packet.
pub fn bytes(input: &Input) -> Option<Vec<u8>> {
    let packet = packet(input)?;
    let mut data = vec![input.knob];
    data.extend_from_slice(&packet);
    Some(data)
}

fn packet(input: &Input) -> Option<Vec<u8>> {
    let mut m = Message::new(input.id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = input.flags & 1 != 0;
    m.metadata.checking_disabled = input.flags & 2 != 0;
    m.metadata.authentic_data = input.flags & 4 != 0;
    for q in input.questions.iter().take(4) {
        let mut query = Query::query(name(q)?, RecordType::from(q.qtype));
        query.set_query_class(DNSClass::from(q.qclass));
        m.add_query(query);
    }
    if let Some(e) = &input.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(e.size);
        edns.set_version(e.version);
        edns.set_dnssec_ok(e.dnssec_ok);
        for (code, data) in e.options.iter().take(4) {
            edns.options_mut().insert(EdnsOption::Unknown(*code, data.clone()));
        }
        m.set_edns(edns);
    }
    m.to_vec().ok()
}
