//! The `loadbalance` plugin (`round_robin`): every answer's address records, and its MX records,
//! come in a new order each time, CNAMEs staying first, so clients spread over the addresses.

use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

/// Parses `loadbalance [round_robin]`; the weighted policy needs a weights file this server
/// does not read.
pub fn parse(d: &Directive) -> Result<(), Error> {
    match d.arg_texts().as_slice() {
        [] | ["round_robin"] if d.block.is_none() => Ok(()),
        ["weighted", ..] => Err(d.error("loadbalance: the weighted policy is not supported; use round_robin")),
        _ => Err(d.error("loadbalance: takes one optional policy, round_robin")),
    }
}

pub async fn serve<'a>(next: Next<'a>, q: &'a Query) -> Reply {
    let reply = next.run(q).await;
    let Reply::Answer { bytes, by } = reply else {
        return reply;
    };
    // Fewer than two answers: nothing to reorder and nothing to decode.
    if bytes.len() < 12 || u16::from_be_bytes([bytes[6], bytes[7]]) < 2 {
        return Reply::Answer { bytes, by };
    }
    let Ok(mut m) = Message::from_vec(&bytes) else {
        return Reply::Answer { bytes, by };
    };
    if !shuffle(&mut m.answers) {
        return Reply::Answer { bytes, by };
    }
    match m.to_vec() {
        Ok(shuffled) => Reply::Answer { bytes: shuffled, by },
        Err(_) => Reply::Answer { bytes, by },
    }
}

/// Reorders addresses and mail exchangers in place, CNAMEs and the rest keeping their places
/// ahead of them. Returns whether anything could move.
fn shuffle(records: &mut Vec<Record>) -> bool {
    let (mut cnames, mut addresses, mut mx, mut rest) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in records.drain(..) {
        match r.record_type() {
            RecordType::CNAME => cnames.push(r),
            RecordType::A | RecordType::AAAA => addresses.push(r),
            RecordType::MX => mx.push(r),
            _ => rest.push(r),
        }
    }
    let moved = addresses.len() > 1 || mx.len() > 1;
    permute(&mut addresses);
    permute(&mut mx);
    records.extend(cnames);
    records.extend(rest);
    records.extend(addresses);
    records.extend(mx);
    moved
}

/// A uniform random permutation (Fisher-Yates).
fn permute<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = crate::random::below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The `loadbalance` plugin; it holds nothing.
#[derive(Clone, Debug)]
pub struct LoadBalance;

/// Reads `loadbalance`.
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    parse(d)?;
    Ok(Arc::new(LoadBalance))
}

impl Plugin for LoadBalance {
    fn name(&self) -> &'static str {
        "loadbalance"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(serve(next, q))
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, RData};

    use super::*;

    #[test]
    fn addresses_move_and_cnames_stay_first() {
        let name = Name::from_ascii("x.example.").unwrap();
        let mut orders = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let mut records = vec![Record::from_rdata(name.clone(), 5, RData::CNAME(CNAME(name.clone())))];
            records.extend((1..=4).map(|i| Record::from_rdata(name.clone(), 5, RData::A(A::new(10, 0, 0, i)))));
            assert!(shuffle(&mut records));
            assert_eq!(records[0].record_type(), RecordType::CNAME);
            assert_eq!(records.len(), 5);
            orders.insert(records.iter().map(|r| r.data.to_string()).collect::<Vec<_>>().join(","));
        }
        assert!(orders.len() > 1, "{orders:?}");
    }
}
