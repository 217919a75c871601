//! Building responses: the empty reply to a request, the header-only one for a request that
//! cannot be parsed, an address record, CoreDNS's SRV weights, and encoding within a size as
//! CoreDNS cuts answers. Shared by the cluster zones (`handler`), `k8s_external` (`external`)
//! and the host's own plugins.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record};

pub(crate) const HEADER_LEN: usize = 12;

/// A response that echoes the request's header only: for requests that cannot be parsed. The
/// id, opcode and RD come from the first three bytes, as many as there are.
pub fn header_only(req: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    let n = req.len().min(3);
    out[..n].copy_from_slice(&req[..n]);
    // QR set, opcode and RD copied.
    out[2] = 0x80 | (out[2] & 0x79);
    out[3] = rcode.low();
    out
}

/// Encodes `resp` within `max_size`, as CoreDNS's server cuts every answer (miekg/dns
/// `Msg.Truncate`): if it does not fit, as many whole records as fit are kept — answers first,
/// then authority, then additional — and TC is set when any record was left out. A client that
/// never retries over TCP (musl before 1.2.4, many embedded stubs) still gets the addresses that
/// fit.
pub fn encode(mut resp: Message, max_size: u16) -> Vec<u8> {
    let limit = usize::from(max_size.max(512));
    let fits = |m: &Message| m.to_vec().ok().filter(|b| b.len() <= limit);
    if let Some(bytes) = fits(&resp) {
        return bytes;
    }
    let answers = std::mem::take(&mut resp.answers);
    let authorities = std::mem::take(&mut resp.authorities);
    let additionals = std::mem::take(&mut resp.additionals);
    let mut cut = false;
    // Encoded size grows with every record kept: the largest prefix that fits, by halving.
    let mut keep = |resp: &mut Message, records: Vec<Record>, section: fn(&mut Message) -> &mut Vec<Record>| {
        let (mut lo, mut hi) = (0, records.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            *section(resp) = records[..mid].to_vec();
            if fits(resp).is_some() { lo = mid } else { hi = mid - 1 }
        }
        cut |= lo < records.len();
        *section(resp) = records[..lo].to_vec();
        lo == records.len()
    };
    if keep(&mut resp, answers, |m| &mut m.answers) && keep(&mut resp, authorities, |m| &mut m.authorities) {
        keep(&mut resp, additionals, |m| &mut m.additionals);
    }
    resp.metadata.truncation |= cut;
    resp.to_vec().unwrap_or_default()
}

/// The response to `req` with `rcode` and nothing in it yet: its id, RD, CD and question, and
/// an OPT echoing the client's when it sent one.
pub(crate) fn reply(req: &Message, rcode: ResponseCode, authoritative: bool) -> Message {
    let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.checking_disabled = req.metadata.checking_disabled;
    m.metadata.authoritative = authoritative;
    m.metadata.response_code = rcode;
    m.queries = req.queries.clone();
    if let Some(edns) = &req.edns {
        let mut e = Edns::new();
        e.set_max_payload(edns.max_payload());
        e.flags_mut().dnssec_ok = edns.flags().dnssec_ok;
        m.set_edns(e);
    }
    m
}

/// The weight of each of `n` SRV records of one priority: CoreDNS splits 100 between them.
pub(crate) fn srv_weight(n: usize) -> u16 {
    let total = 100.0 * n.max(1) as f64;
    ((100.0 / total * 100.0).floor() as u16).max(1)
}

pub(crate) fn address(owner: Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(owner, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(owner, ttl, RData::AAAA(AAAA(v6))),
    }
}
