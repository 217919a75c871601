//! From query bytes to a DNS response, across every stanza of a server block.
//!
//! The stanzas run in Corefile order, as a CoreDNS plugin chain would: a stanza whose zones do
//! not hold the name passes the query on; a stanza that finds a name error passes it on when its
//! `fallthrough` covers the name; otherwise the stanza answers. When every stanza passed, the
//! outcome is [`Outcome::Next`]: the host's next plugin decides. Within a stanza the answer is
//! decided as CoreDNS's kubernetes plugin does: per query type, NXDOMAIN for name errors and
//! NODATA for names that exist, both with the zone's SOA, SERVFAIL instead of NXDOMAIN while the
//! stanza has not synced.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};

use crate::answers::Answers;
use crate::config::{BlockFacts, ConfigError, ExternalZone, Stanza};
use crate::message::{HEADER_LEN, encode, header_only, reply};
use crate::name;
use crate::resolve::NameError;
use crate::snapshot::{Event, Rejected, Snapshot};

/// The transport a query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One query as the host received it.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    pub packet: &'a [u8],
    /// The client's address as the host wrote it. No answer depends on it (answers are cached
    /// by the query's bytes alone), so it is not parsed for every query.
    pub client: &'a str,
    pub transport: Transport,
    /// The largest response the client can take over this transport.
    pub max_size: u16,
}

pub use crate::outcome::Outcome;

/// The `dns-version` TXT answer: the version of the Kubernetes DNS schema served.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// Every stanza of one server block with its snapshot.
#[derive(Debug)]
pub struct Plugin {
    pub(crate) server: BlockFacts,
    pub(crate) stanzas: Vec<(Stanza, Snapshot)>,
    /// The block's `k8s_external`, answered before the stanzas (see `external`).
    pub(crate) external: Option<ExternalZone>,
    /// The stanzas' clusterset memberships (see `clusterset`).
    pub(crate) clusterset: Vec<crate::clusterset::Member>,
    /// Answers given since the last change of any snapshot.
    answers: Answers,
}

/// `apply` named a stanza the plugin does not have.
#[derive(Debug, thiserror::Error)]
#[error("no stanza {0}")]
pub struct NoSuchStanza(pub usize);

impl Plugin {
    pub fn new(server: BlockFacts, stanzas: Vec<Stanza>) -> Result<Self, ConfigError> {
        if let Some(i) = stanzas.iter().position(|s| s.zones.is_empty()) {
            return Err(ConfigError::NoZones { stanza: i });
        }
        Ok(Plugin {
            server,
            stanzas: stanzas
                .into_iter()
                .map(|s| {
                    let snap = Snapshot::for_stanza(&s);
                    (s, snap)
                })
                .collect(),
            external: None,
            clusterset: Vec::new(),
            answers: Answers::default(),
        })
    }

    /// Serves `external`'s zones too (`k8s_external`), from the stanzas' services.
    pub fn serve_external(&mut self, external: ExternalZone) -> Result<(), ConfigError> {
        external.validate()?;
        self.answers.clear();
        self.external = Some(external);
        Ok(())
    }

    /// Serves the clusterset zones `members` name too, from their stanzas' objects.
    pub fn serve_clusterset(&mut self, members: Vec<crate::clusterset::Member>) -> Result<(), ConfigError> {
        crate::clusterset::validate(&members, self.stanzas.len())?;
        self.answers.clear();
        self.clusterset = members;
        Ok(())
    }

    pub(crate) fn clusterset_sources(&self) -> Option<crate::clusterset::Sources<'_>> {
        if self.clusterset.is_empty() {
            return None;
        }
        Some(crate::clusterset::Sources { members: &self.clusterset, server: &self.server, stanzas: &self.stanzas })
    }

    pub(crate) fn external_sources(&self) -> Option<crate::external::Sources<'_>> {
        let zone = self.external.as_ref()?;
        Some(crate::external::Sources { zone, server: &self.server, stanzas: &self.stanzas })
    }

    /// Applies watch events to stanza `stanza`'s snapshot.
    pub fn apply(&mut self, stanza: usize, now: u64, events: Vec<Event>) -> Result<Vec<Rejected>, NoSuchStanza> {
        let (_, snap) = self.stanzas.get_mut(stanza).ok_or(NoSuchStanza(stanza))?;
        self.answers.clear();
        Ok(snap.apply(now, events))
    }

    /// Answers one query: as last time if nothing changed since, else resolved afresh.
    pub fn handle(&self, q: &Query) -> Outcome {
        let mut bytes = Vec::new();
        self.handle_into(q, &mut bytes).unwrap_or(Outcome::Answer(bytes))
    }

    /// As `handle`, an answer appended to `out` (None) instead of returned: a remembered answer
    /// is copied straight from the cache into the caller's buffer.
    pub fn handle_into(&self, q: &Query, out: &mut Vec<u8>) -> Option<Outcome> {
        if let Some(known) = self.answers.get_into(q.packet, q.max_size, out) {
            return known;
        }
        let outcome = self.resolve(q);
        // Written out first, then the outcome itself is kept (not a copy of it).
        let told = match &outcome {
            Outcome::Answer(bytes) => {
                out.extend_from_slice(bytes);
                None
            }
            other => Some(other.clone()),
        };
        self.answers.put(q.packet, q.max_size, outcome);
        told
    }

    fn resolve(&self, q: &Query) -> Outcome {
        let p = q.packet;
        if p.len() < HEADER_LEN || p[2] & 0x80 != 0 {
            return Outcome::Drop;
        }
        let count = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        let opcode = (p[2] >> 3) & 0x0f;
        if opcode != 0 {
            return Outcome::Answer(header_only(p, ResponseCode::NotImp));
        }
        // The same screen as CoreDNS's message acceptance: one question, no answers.
        if count(4) != 1 || count(6) > 1 || count(8) > 1 || count(10) > 2 {
            return Outcome::Answer(header_only(p, ResponseCode::FormErr));
        }
        let Ok(req) = Message::from_vec(p) else {
            return Outcome::Answer(header_only(p, ResponseCode::FormErr));
        };
        let Some(question) = req.queries.first() else {
            return Outcome::Answer(header_only(p, ResponseCode::FormErr));
        };
        let mut asked = question.name().to_ascii();
        if !asked.ends_with('.') {
            asked.push('.');
        }
        let qname = asked.to_ascii_lowercase();
        // `k8s_external` runs before `kubernetes` in CoreDNS's order.
        if let Some(from) = self.external_sources()
            && let Some(outcome) = crate::external::answer(from, &req, &asked, &qname, question.query_type(), q.max_size)
        {
            return outcome;
        }
        // A clusterset zone is the members' together, whatever a single stanza serves.
        if let Some(from) = self.clusterset_sources()
            && let Some(outcome) =
                crate::clusterset::answer(from, &req, &asked, &qname, question.query_type(), q.max_size)
        {
            return outcome;
        }
        for (stanza, snap) in &self.stanzas {
            let Some(zone) = stanza.zone_of(&qname) else {
                continue;
            };
            let ctx = Ctx {
                stanza,
                snap,
                server: &self.server,
                zone,
                // The zone as the client spelled it: answers keep the query's case.
                zone_cased: &asked[asked.len() - zone.len()..],
                owner: question.name().clone(),
                chase: std::cell::RefCell::new(None),
            };
            if let Some(resp) = ctx.answer(&req, &qname, question.query_type()) {
                if let Some(target) = ctx.chase.take().filter(|_| resp.metadata.response_code == ResponseCode::NoError)
                {
                    let qtype = u16::from(question.query_type());
                    return Outcome::Chase { response: encode(resp, u16::MAX), target, qtype };
                }
                return Outcome::Answer(encode(resp, q.max_size));
            }
        }
        Outcome::Next
    }
}

/// One stanza answering one query.
pub(crate) struct Ctx<'a> {
    pub(crate) stanza: &'a Stanza,
    pub(crate) snap: &'a Snapshot,
    pub(crate) server: &'a BlockFacts,
    /// The matched zone, lowercase.
    pub(crate) zone: &'a str,
    /// The matched zone in the query's case.
    pub(crate) zone_cased: &'a str,
    /// The query name as asked: owner of the answer records.
    pub(crate) owner: Name,
    /// A CNAME target outside the zone that the host should resolve (the first one met).
    pub(crate) chase: std::cell::RefCell<Option<String>>,
}

/// Records for the answer and additional sections.
pub(crate) type Sections = (Vec<Record>, Vec<Record>);

impl Ctx<'_> {
    /// The stanza's response, or None when it passes the query on.
    fn answer(&self, req: &Message, qname: &str, qtype: RecordType) -> Option<Message> {
        let result: Result<Sections, NameError> = match qtype {
            RecordType::A | RecordType::AAAA => {
                self.addresses(qname, &self.owner, qtype, &mut Vec::new()).map(|r| (r, vec![]))
            }
            RecordType::TXT => self.txt(qname).map(|r| (r, vec![])),
            RecordType::CNAME => self.cname(qname).map(|r| (r, vec![])),
            RecordType::PTR => self.ptr(qname).map(|r| (r, vec![])),
            RecordType::SRV => self.srv(qname),
            // Kubernetes objects never carry mail exchangers: the name's existence decides.
            RecordType::MX => self.services(qname, qtype).map(|_| (vec![], vec![])),
            RecordType::SOA => Ok((if qname == self.zone { vec![self.soa()] } else { vec![] }, vec![])),
            RecordType::AXFR | RecordType::IXFR => {
                return Some(self.reply(req, ResponseCode::Refused, false));
            }
            RecordType::NS if qname == self.zone => Ok(self.ns()),
            // Any other type: the name's existence, judged by an A lookup, decides NXDOMAIN or NODATA.
            _ => self.addresses(qname, &self.owner, RecordType::A, &mut Vec::new()).map(|_| (vec![], vec![])),
        };
        let mut resp = match result {
            Err(_) if self.stanza.falls_through(qname) => return None,
            Err(_) if !self.snap.synced() => self.reply(req, ResponseCode::ServFail, true),
            Err(_) => self.reply(req, ResponseCode::NXDomain, true),
            Ok((answers, _)) if answers.is_empty() => self.reply(req, ResponseCode::NoError, true),
            Ok((answers, extra)) => {
                let mut m = self.reply(req, ResponseCode::NoError, true);
                m.answers = answers;
                m.additionals = extra;
                return Some(m);
            }
        };
        resp.authorities.push(self.soa());
        Some(resp)
    }

    fn reply(&self, req: &Message, rcode: ResponseCode, authoritative: bool) -> Message {
        reply(req, rcode, authoritative)
    }

    pub(crate) fn ttl(&self) -> u32 {
        self.stanza.ttl
    }

    /// A name in the zone as the client spelled it.
    pub(crate) fn in_zone(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(name::join(relative, self.zone_cased)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query as Question};

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(42, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn ask(plugin: &Plugin, packet: &[u8]) -> Outcome {
        plugin.handle(&Query { packet, client: "10.0.0.1", transport: Transport::Udp, max_size: 512 })
    }

    fn answer(plugin: &Plugin, name: &str, qtype: RecordType) -> Message {
        match ask(plugin, &query(name, qtype)) {
            Outcome::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn plugin(stanzas: Vec<Stanza>, synced: bool) -> Plugin {
        let server = BlockFacts { local_ips: vec!["192.0.2.53".parse().unwrap()] };
        let mut p = Plugin::new(server, stanzas).unwrap();
        let events = vec![
            Event::Apply(crate::snapshot::Kind::Namespace, r#"{"metadata":{"name":"ns"}}"#.into()),
            Event::Apply(
                crate::snapshot::Kind::Service,
                r#"{"metadata":{"name":"web","namespace":"ns"},"spec":{"clusterIP":"10.0.0.1"}}"#.into(),
            ),
            Event::Synced(synced),
        ];
        for i in 0..p.stanzas.len() {
            p.apply(i, 7, events.clone()).unwrap();
        }
        p
    }

    #[test]
    fn apex_ns_names_the_server_with_glue() {
        let p = plugin(vec![Stanza::new(&["cluster.local"])], true);
        let m = answer(&p, "cluster.local.", RecordType::NS);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data.to_string(), "ns.dns.cluster.local.");
        assert_eq!(m.additionals[0].to_string(), "ns.dns.cluster.local. 5 IN A 192.0.2.53");
        let a = answer(&p, "ns.dns.cluster.local.", RecordType::A);
        assert_eq!(a.answers[0].data.to_string(), "192.0.2.53");
    }

    #[test]
    fn an_unsynced_stanza_answers_servfail_for_name_errors_only() {
        let p = plugin(vec![Stanza::new(&["cluster.local"])], false);
        assert_eq!(
            answer(&p, "nope.ns.svc.cluster.local.", RecordType::A).metadata.response_code,
            ResponseCode::ServFail
        );
        assert_eq!(answer(&p, "web.ns.svc.cluster.local.", RecordType::A).answers.len(), 1);
    }

    #[test]
    fn fallthrough_passes_name_errors_to_the_next_stanza_then_on() {
        let mut first = Stanza::new(&["cluster.local"]);
        first.fallthrough = Some(vec![".".into()]);
        let p = plugin(vec![first.clone(), first], true);
        assert_eq!(ask(&p, &query("nope.ns.svc.cluster.local.", RecordType::A)), Outcome::Next);
        assert_eq!(ask(&p, &query("example.org.", RecordType::A)), Outcome::Next);
        assert_eq!(answer(&p, "web.ns.svc.cluster.local.", RecordType::A).answers.len(), 1);
    }

    #[test]
    fn malformed_queries_are_screened_as_coredns_does() {
        let p = plugin(vec![Stanza::new(&["cluster.local"])], true);
        let good = query("web.ns.svc.cluster.local.", RecordType::A);
        assert_eq!(ask(&p, &good[..11]), Outcome::Drop, "shorter than a header");
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(ask(&p, &response), Outcome::Drop, "QR set");
        let rcode = |packet: &[u8]| match ask(&p, packet) {
            Outcome::Answer(b) => b[3] & 0x0f,
            other => panic!("{other:?}"),
        };
        let mut notify = good.clone();
        notify[2] = (notify[2] & 0x87) | (5 << 3);
        assert_eq!(rcode(&notify), 4, "NOTIMP for other opcodes");
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        assert_eq!(rcode(&two_questions), 1, "FORMERR");
        assert_eq!(rcode(&good[..good.len() - 2]), 1, "FORMERR for a cut question");
    }

    #[test]
    fn an_answer_is_reused_with_the_new_id_until_the_snapshot_changes() {
        let mut p = plugin(vec![Stanza::new(&["cluster.local"])], true);
        let mut packet = query("Web.ns.svc.cluster.local.", RecordType::A);
        let first = ask(&p, &packet);
        packet[..2].copy_from_slice(&7777u16.to_be_bytes());
        let Outcome::Answer(again) = ask(&p, &packet) else { panic!("an answer") };
        let again = Message::from_vec(&again).unwrap();
        assert_eq!(again.metadata.id, 7777, "the new query's id");
        assert_eq!(Outcome::Answer(again.to_vec().unwrap()), {
            let Outcome::Answer(b) = first else { panic!("an answer") };
            let mut m = Message::from_vec(&b).unwrap();
            m.metadata.id = 7777;
            Outcome::Answer(m.to_vec().unwrap())
        });
        assert_eq!(again.answers[0].name.to_string(), "Web.ns.svc.cluster.local.", "the query's case");
        let changed = r#"{"metadata":{"name":"web","namespace":"ns"},"spec":{"clusterIP":"10.0.0.2"}}"#;
        p.apply(0, 8, vec![Event::Apply(crate::snapshot::Kind::Service, changed.into())]).unwrap();
        assert_eq!(answer(&p, "Web.ns.svc.cluster.local.", RecordType::A).answers[0].data.to_string(), "10.0.0.2");
    }
}
