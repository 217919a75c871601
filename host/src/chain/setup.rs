//! How a plugin is made from its Corefile directive: the contract between a plugin's file and
//! the registry's table. A plugin's `setup` reads its directive into a [`Setup`], which builds
//! the plugin each time its block starts, from what the block gives it ([`BlockContext`]).

use std::sync::Arc;

use crate::corefile::{Directive, Error};
use crate::module::block::BlockModule as Fed;

use super::Plugin;

/// What a plugin may use of its server block when it is built.
pub struct BlockContext<'a> {
    /// The `server` label of the block's metrics ("dns://:53").
    pub server: &'a str,
    /// The block's zones.
    pub zones: &'a [String],
    /// The block's kubernetai module, when it has stanzas.
    pub kubernetai: Option<&'a Arc<Fed>>,
    /// The host's own search domains (its /etc/resolv.conf), which autopath appends.
    pub host_search: &'a [String],
}

/// A plugin's directive as read from the Corefile, ready to build the plugin each time its
/// block starts (a reload builds again from the same reading).
pub trait Setup: Send + Sync + std::fmt::Debug {
    fn build(&self, block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String>;
}

/// A plugin that needs nothing of its block is its own setup.
impl<T: Plugin + Clone + std::fmt::Debug + 'static> Setup for T {
    fn build(&self, _block: &BlockContext<'_>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(self.clone()))
    }
}

/// Reads a plugin's directive, given the zones of its block.
pub type Parse = fn(&Directive, &[String]) -> Result<Arc<dyn Setup>, Error>;

/// Reads every directive of a plugin in a block together, in Corefile order.
pub type ParseAll = fn(&[&Directive], &[String]) -> Result<Arc<dyn Setup>, Error>;

/// How a block's directives of a plugin become plugins of its chain.
pub enum Reads {
    /// One directive at most: one plugin.
    Once(Parse),
    /// Each directive its own plugin, in Corefile order.
    Each(Parse),
    /// All of them one plugin (a rule list that ends at its first match, as `acl`'s).
    All(ParseAll),
}

/// A plugin of the chain: its directive and how it is read.
pub struct Entry {
    pub name: &'static str,
    pub reads: Reads,
}
