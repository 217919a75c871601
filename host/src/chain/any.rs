//! The `any` plugin (RFC 8482): a query of type ANY gets one short HINFO record instead of
//! whatever the name holds, so the server is no amplifier, as CoreDNS's `any` answers.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::{RData, Record, RecordType};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::chain::setup::Setup;
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Query, Reply};

/// The TTL CoreDNS gives the HINFO record: the RFC's number.
const TTL: u32 = 8482;

/// Parses `any`, which takes nothing.
pub fn parse(d: &Directive) -> Result<(), Error> {
    if d.arg_texts().is_empty() && d.block.is_none() { Ok(()) } else { Err(d.error("any: takes no arguments")) }
}

pub async fn serve<'a>(next: Next<'a>, q: &'a Query) -> Reply {
    if q.qtype != RecordType::ANY {
        return next.run(q).await;
    }
    let owner = q.message.queries[0].name().clone();
    let hinfo = HINFO::new("ANY obsoleted".into(), "See RFC 8482".into());
    let answer = Record::from_rdata(owner, TTL, RData::HINFO(hinfo));
    q.respond("any", ResponseCode::NoError, [vec![answer], vec![], vec![]])
}

/// The `any` plugin; it holds nothing.
#[derive(Clone, Debug)]
pub struct Any;

/// Reads `any`.
pub fn setup(d: &Directive, _zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    parse(d)?;
    Ok(Arc::new(Any))
}

impl Plugin for Any {
    fn name(&self) -> &'static str {
        "any"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(serve(next, q))
    }
}
