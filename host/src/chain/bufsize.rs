//! The `bufsize` plugin, as CoreDNS's: a client's EDNS0 UDP buffer size above SIZE (1232 by
//! default, the DNS Flag Day 2020 figure) is lowered to SIZE before the rest of the chain sees
//! the query, so no answer, forwarded or local, is larger than a path without fragmentation
//! carries.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Proto, Query, Reply};

const DEFAULT_SIZE: u16 = 1232;

#[derive(Clone, Debug)]
pub struct Bufsize(u16);

/// Reads `bufsize [SIZE]` (512 to 4096).
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    if d.block.is_some() {
        return Err(d.error("bufsize: takes no block"));
    }
    let size = match d.arg_texts().as_slice() {
        [] => DEFAULT_SIZE,
        [size] => size
            .parse::<u16>()
            .ok()
            .filter(|s| (512..=4096).contains(s))
            .ok_or_else(|| d.error(format!("bufsize: invalid bufsize {size:?} (512 to 4096)")))?,
        _ => return Err(d.error("bufsize: takes at most one argument")),
    };
    Ok(Arc::new(Bufsize(size)))
}

impl Bufsize {
    async fn answer<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        let asked = q.message.edns.as_ref().map(|e| e.max_payload());
        if asked.is_none_or(|size| size <= self.0) {
            return next.run(q).await;
        }
        let mut lowered = q.clone();
        if let Some(e) = lowered.message.edns.as_mut() {
            e.set_max_payload(self.0);
        }
        let Ok(packet) = lowered.message.to_vec() else { return next.run(q).await };
        lowered.packet = packet;
        if lowered.proto == Proto::Udp {
            lowered.max_size = lowered.max_size.min(self.0);
        }
        match next.run(&lowered).await {
            // Whatever wrote it, no UDP answer leaves larger than SIZE: cut as the module cuts.
            Reply::Answer { bytes, by } if lowered.proto == Proto::Udp && bytes.len() > usize::from(self.0) => {
                match hickory_proto::op::Message::from_vec(&bytes) {
                    Ok(m) => Reply::Answer { bytes: kubernetai_guest::message::encode(m, self.0), by },
                    Err(_) => Reply::Answer { bytes, by },
                }
            }
            other => other,
        }
    }
}

impl Plugin for Bufsize {
    fn name(&self) -> &'static str {
        "bufsize"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(self.answer(next, q))
    }
}
