//! A server block's plugin chain as it runs per query: one [`Plugin`] trait that every plugin
//! implements (in the spirit of CoreDNS's `plugin.Handler`), the [`Next`] a plugin calls to
//! hand a query on, and the [`Lookup`] through which a plugin resolves a name from the top of
//! the server (CNAME chasing). The plugins are the other files of this folder, one each, made
//! from their directives through [`setup`]'s contract; [`registry`] lists them in CoreDNS's
//! order. Nothing here imports the server. A block's `log` and `errors` are no plugins: the
//! server applies them around the chain (`serve::log`, `serve::errors`).

pub mod acl;
pub mod any;
pub mod autopath;
pub mod bufsize;
pub mod cache;
pub mod file;
pub mod forward;
pub mod hosts;
pub mod kubernetai;
pub mod loadbalance;
pub mod loop_detect;
pub mod minimal;
pub mod registry;
pub mod rewrite;
pub mod setup;
pub mod template;
pub mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::dns::{Proto, Query, Reply};

/// What a plugin's fast path made of a plain query (see [`Plugin::answer_fast`]).
pub enum Fast {
    /// The whole answer was appended to the caller's buffer.
    Answered,
    /// It failed: this is the chain's reply.
    Failed(Reply),
    /// Not one it answers this way: the chain runs from the top.
    Declined,
}

/// One plugin of a chain.
pub trait Plugin: Send + Sync {
    /// Its directive's name, which is also the `plugin` label of the answers it writes.
    fn name(&self) -> &'static str;

    /// Answers `q`, or hands it on with `next.run(q)`.
    fn serve<'a>(&'a self, next: Next<'a>, q: &'a Query) -> BoxFuture<'a, Reply>;

    /// Called once the block's listener at `addr` is up (the `loop` plugin's probe).
    fn listening(&self, _addr: SocketAddr) {}

    /// Whether [`Plugin::answer_fast`] answers anything. Only the first plugin of a chain is
    /// asked, and only in a block that logs no queries.
    fn has_fast_path(&self) -> bool {
        false
    }

    /// Answers a plain query (`dns::wire::plain`: one question, no option the chain must
    /// judge) from its bytes, with no message built, appending at most `max_size` bytes of
    /// answer to `out`; what it declines, the chain serves.
    fn answer_fast(&self, _packet: &[u8], _client: SocketAddr, _proto: Proto, _max_size: u16, _out: &mut Vec<u8>) -> Fast {
        Fast::Declined
    }

    /// The zone transfer (AXFR) `q` asks for, when this plugin holds that zone: `transfer`
    /// asks the plugins after it in turn, as CoreDNS's asks its block's transferers.
    fn transfer(&self, _q: &Query) -> Option<Reply> {
        None
    }
}

/// A block's plugins in the order they run.
pub type Chain = Arc<[Arc<dyn Plugin>]>;

/// Resolving a name through the whole server, from the top of the chain of the block that
/// serves it, as CoreDNS's upstream lookups do for CNAME targets.
pub trait Lookup: Send + Sync {
    fn lookup(
        self: Arc<Self>,
        name: String,
        qtype: RecordType,
        from: Query,
        depth: usize,
    ) -> BoxFuture<'static, Option<Message>>;
}

/// Where a query is in a chain.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    chain: &'a Chain,
    at: usize,
    lookup: &'a Arc<dyn Lookup>,
}

impl<'a> Next<'a> {
    /// The top of `chain`; `lookup` resolves names from the top of the server.
    pub fn start(chain: &'a Chain, lookup: &'a Arc<dyn Lookup>) -> Self {
        Next { chain, at: 0, lookup }
    }

    /// Runs the chain from this plugin on; past the last one CoreDNS answers SERVFAIL.
    pub fn run(self, q: &'a Query) -> BoxFuture<'a, Reply> {
        match self.chain.get(self.at) {
            Some(plugin) => plugin.serve(Next { at: self.at + 1, ..self }, q),
            None => Box::pin(async { Reply::servfail("", "no next plugin found") }),
        }
    }

    /// The plugins from this one to the end of the chain.
    pub fn rest(&self) -> &'a [Arc<dyn Plugin>] {
        self.chain.get(self.at..).unwrap_or_default()
    }

    /// Resolves `name`/`qtype` from the top of the server, for `from` at CNAME depth `depth`.
    pub fn lookup(
        &self,
        name: &str,
        qtype: RecordType,
        from: &Query,
        depth: usize,
    ) -> BoxFuture<'static, Option<Message>> {
        self.lookup.clone().lookup(name.to_string(), qtype, from.clone(), depth)
    }

    /// Runs the rest of the chain for `q` on a task of its own and hands an answer to `done`
    /// (serve_stale's refresh behind the client's back).
    pub fn refresh(self, q: Query, done: impl FnOnce(&Query, &[u8]) + Send + 'static) {
        let (chain, lookup, at) = (self.chain.clone(), self.lookup.clone(), self.at);
        tokio::spawn(async move {
            if let Reply::Answer { bytes, .. } = (Next { chain: &chain, at, lookup: &lookup }).run(&q).await {
                done(&q, &bytes);
            }
        });
    }
}
