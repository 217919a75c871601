//! The kubernetai plugin's place in the chain: the module's answer, a name it passes on sent
//! down the chain, a CNAME out of its zones completed through the server.

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::contract::{module_query, wit};
use crate::dns::wire::answers_query;
use crate::dns::{Query, Reply};
use crate::module::block::BlockModule;

use std::sync::Arc;

use futures::future::BoxFuture;

use super::setup::{BlockContext, Setup};
use super::{Fast, Next, Plugin};
use crate::contract::with_module_query;
use crate::dns::Proto;
use std::net::SocketAddr;

/// How many CNAME targets one query may chase through the chain (ExternalName to ExternalName…).
const MAX_CHASE_DEPTH: usize = 8;

/// The module's answer to `query`: it reaches the network only if it is a response to it.
fn module_answer(bytes: Vec<u8>, query: &[u8]) -> Reply {
    const BY: &str = "kubernetai";
    if answers_query(&bytes, query) {
        Reply::Answer { bytes, by: BY }
    } else {
        Reply::servfail(
            BY,
            format!("plugin/kubernetai: the module answered {} bytes that are no response to this query", bytes.len()),
        )
    }
}

/// The kubernetai module's answer; a name it passes on goes down the chain, a CNAME out of its
/// zones is completed through the server (as CoreDNS's upstream lookup).
async fn kubernetai<'a>(plugin: &'a BlockModule, next: Next<'a>, q: &'a Query) -> Reply {
    const BY: &str = "kubernetai";
    let query = module_query(q.packet.clone(), q.client, q.proto, q.max_size);
    let response = |bytes: Vec<u8>| module_answer(bytes, &q.packet);
    match plugin.handle(&query) {
        Ok(wit::Outcome::Answer(bytes)) => response(bytes),
        // The response chased must be one to this query too, before anything is added to it.
        Ok(wit::Outcome::Chase(chase)) if !answers_query(&chase.response, &q.packet) => response(chase.response),
        Ok(wit::Outcome::Chase(chase)) => match Message::from_vec(&chase.response) {
            Ok(mut resp) if q.depth < MAX_CHASE_DEPTH => {
                let qtype = RecordType::from(chase.qtype);
                if let Some(sub) = next.lookup(&chase.target, qtype, q, q.depth + 1).await {
                    resp.metadata.truncation |= sub.metadata.truncation;
                    resp.answers.extend(sub.answers);
                }
                Reply::Answer { bytes: kubernetai_guest::message::encode(resp, q.max_size), by: BY }
            }
            _ => response(chase.response),
        },
        Ok(wit::Outcome::Drop) => Reply::Drop,
        Ok(wit::Outcome::Next) => next.run(q).await,
        Err(e) => Reply::servfail(BY, e.to_string()),
    }
}

/// A block's kubernetai stanzas, read (by `serve::config`): the plugin is the block's module.
#[derive(Debug)]
pub struct Stanzas;

impl Setup for Stanzas {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        let module = block.kubernetai.ok_or("kubernetai: a block without stanzas")?;
        Ok(Arc::new(Kubernetai(module.clone())))
    }
}

/// The kubernetai plugin of a block.
pub struct Kubernetai(pub Arc<BlockModule>);

impl Plugin for Kubernetai {
    fn name(&self) -> &'static str {
        "kubernetai"
    }

    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply> {
        Box::pin(kubernetai(&self.0, next, q))
    }

    fn has_fast_path(&self) -> bool {
        true
    }

    fn transfer(&self, q: &Query) -> Option<Reply> {
        match self.0.transfer(&q.packet) {
            Ok(Some(messages)) => Some(Reply::Stream { messages, by: "kubernetai" }),
            Ok(None) => None,
            Err(e) => Some(Reply::servfail("kubernetai", e.to_string())),
        }
    }

    /// The module's answer, when it is one: anything else it says (next, chase, drop) goes the
    /// full way, where the module's answer cache makes asking it again cheap; a failure or an
    /// answer the chain must judge (foreign, oversized) goes on as the chain's reply, so the
    /// module is not asked twice.
    fn answer_fast(&self, packet: &[u8], client: SocketAddr, proto: Proto, max_size: u16, out: &mut Vec<u8>) -> Fast {
        const BY: &str = "kubernetai";
        let from = out.len();
        match with_module_query(packet, client, proto, max_size, |q| self.0.handle_into(q, out)) {
            Ok(None) => {}
            Ok(Some(wit::Outcome::Answer(bytes))) => out.extend_from_slice(&bytes),
            Ok(Some(_)) => return Fast::Declined,
            Err(e) => return Fast::Failed(Reply::servfail(BY, e.to_string())),
        }
        let bytes = &out[from..];
        if !answers_query(bytes, packet) || bytes.len() > usize::from(max_size) {
            // The chain's path says why (a foreign answer) or cuts it (an oversized one).
            let bytes = out.split_off(from);
            return Fast::Failed(module_answer(bytes, packet));
        }
        Fast::Answered
    }
}
