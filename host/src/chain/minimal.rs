//! The `minimal` plugin: a positive answer leaves its authority and additional sections out
//! (the OPT record stays), as CoreDNS's `minimal` does, so answers stay small. Name errors,
//! NODATA and failures keep everything: their SOA is what negative caching needs.

use hickory_proto::op::{Message, ResponseCode};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

/// Parses `minimal`, which takes nothing.
pub fn parse(d: &Directive) -> Result<(), Error> {
    if d.arg_texts().is_empty() && d.block.is_none() { Ok(()) } else { Err(d.error("minimal: takes no arguments")) }
}

pub async fn serve<'a>(next: Next<'a>, q: &'a Query) -> Reply {
    let reply = next.run(q).await;
    let Reply::Answer { bytes, by } = reply else {
        return reply;
    };
    // Nothing beyond the answer section, or not a positive answer: nothing to leave out.
    let count = |i: usize| bytes.get(i..i + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let opt = u16::from(q.message.edns.is_some());
    if count(6) == 0 || (count(8) == 0 && count(10) <= opt) {
        return Reply::Answer { bytes, by };
    }
    let Ok(mut m) = Message::from_vec(&bytes) else {
        return Reply::Answer { bytes, by };
    };
    if m.metadata.response_code != ResponseCode::NoError {
        return Reply::Answer { bytes, by };
    }
    m.authorities.clear();
    m.additionals.clear();
    match m.to_vec() {
        Ok(minimal) => Reply::Answer { bytes: minimal, by },
        Err(_) => Reply::Answer { bytes, by },
    }
}

/// The `minimal` plugin; it holds nothing.
#[derive(Clone, Debug)]
pub struct Minimal;

/// Reads `minimal`.
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    parse(d)?;
    Ok(Arc::new(Minimal))
}

impl Plugin for Minimal {
    fn name(&self) -> &'static str {
        "minimal"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(serve(next, q))
    }
}
