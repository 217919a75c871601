//! What became of a query: the one type the handler returns and the answer cache keeps.

/// What became of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answer(Vec<u8>),
    /// `response` ends in a CNAME to `target`, outside every zone of the stanza: the host
    /// resolves it through its chain and appends the answer (see the WIT `chase` record).
    Chase {
        response: Vec<u8>,
        target: String,
        qtype: u16,
    },
    Next,
    Drop,
}
