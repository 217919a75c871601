//! The `transfer` plugin: AXFR and IXFR over TCP for the zones it names, to the peers `to`
//! allows, with the records of the first plugin after it that holds the zone (the kubernetai
//! stanzas, `file`), as CoreDNS asks its block's transferers.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use futures::future::BoxFuture;

use crate::chain::setup::{BlockContext, Setup};
use crate::chain::{Next, Plugin};
use crate::corefile::{Directive, Error};
use crate::dns::{Proto, Query, Reply};

const BY: &str = "transfer";

/// One `transfer [ZONES...] { to ADDRESS... }`.
#[derive(Clone, Debug)]
pub struct Options {
    pub zones: Vec<String>,
    /// The peers allowed to transfer; None: `*`, everyone.
    pub to: Option<Vec<IpAddr>>,
}

pub struct Transfer {
    options: Vec<Options>,
}

pub fn parse(d: &Directive, block_zones: &[String]) -> Result<Options, Error> {
    let zones: Vec<String> = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        d.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
    };
    let mut to: Option<Vec<IpAddr>> = Some(Vec::new());
    for opt in d.block.as_deref().unwrap_or_default() {
        if opt.name.text != "to" {
            return Err(opt.error(format!("transfer: unknown property '{}'", opt.name.text)));
        }
        if opt.args.is_empty() {
            return Err(opt.error("transfer: to needs at least one address or *"));
        }
        for a in &opt.args {
            if a.text == "*" {
                to = None;
                continue;
            }
            let ip = a
                .text
                .parse::<IpAddr>()
                .or_else(|_| a.text.parse::<std::net::SocketAddr>().map(|s| s.ip()))
                .map_err(|_| Error::token(a, format!("transfer: {:?} is not an address or *", a.text)))?;
            if let Some(list) = &mut to {
                list.push(ip);
            }
        }
    }
    if to.as_ref().is_some_and(Vec::is_empty) {
        return Err(d.error("transfer: needs a 'to' with the peers allowed to transfer"));
    }
    Ok(Options { zones, to })
}

impl Transfer {
    pub fn new(options: Vec<Options>) -> Self {
        Transfer { options }
    }

    pub async fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> Reply {
        if !matches!(q.qtype, RecordType::AXFR | RecordType::IXFR) {
            return next.run(q).await;
        }
        if q.proto != Proto::Tcp {
            return Reply::Fail {
                rcode: ResponseCode::Refused,
                reason: "zone transfers are over TCP only".into(),
                by: BY,
            };
        }
        // The longest zone of any transfer directive holding the name.
        let Some(options) = self
            .options
            .iter()
            .filter_map(|o| kubernetai_guest::name::longest_zone(&q.qname, &o.zones).map(|z| (z.len(), o)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, o)| o)
        else {
            return next.run(q).await;
        };
        if options.to.as_ref().is_some_and(|peers| !peers.contains(&q.client.ip())) {
            let reason = format!("{} may not transfer {}", q.client.ip(), q.qname);
            return Reply::Fail { rcode: ResponseCode::Refused, reason, by: BY };
        }
        match next.rest().iter().find_map(|p| p.transfer(q)) {
            Some(Reply::Stream { messages, .. }) => Reply::Stream { messages, by: BY },
            Some(Reply::Fail { rcode, reason, .. }) => Reply::Fail { rcode, reason, by: BY },
            Some(other) => other,
            None => next.run(q).await,
        }
    }
}

/// Reads one `transfer`.
pub fn setup(d: &Directive, zones: &[String]) -> Result<Arc<dyn Setup>, Error> {
    Ok(Arc::new(parse(d, zones)?))
}

impl Setup for Options {
    fn build(&self, _block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Transfer::new(vec![self.clone()])))
    }
}

impl Plugin for Transfer {
    fn name(&self) -> &'static str {
        BY
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(Transfer::serve(self, next, q))
    }
}
