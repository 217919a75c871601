//! What a candidate module must prove before it is compiled: that its bytes are the ones
//! `-module.sha256` pins, and that one of the `-module.pubkey` keys signed them (minisign). The
//! same check runs wherever a module comes from — start, SIGHUP, a file change, a tag move, an
//! admin upload, a shadow, and so a promotion — except the module built into the binary, which
//! is trusted as the binary is.
//!
//! Signatures are verified with `minisign-verify`, the verifier by minisign's own author: Ed25519
//! over the BLAKE2b-prehashed bytes, the trusted comment covered by the global signature, no
//! dependency beyond itself, and it reads exactly the `.minisig` and `.pub` files the `minisign`
//! tool writes. Legacy (not prehashed) signatures are refused, as current minisign refuses them.

use std::path::Path;

use minisign_verify::{PublicKey, Signature};

/// The largest `.minisig` or public key file read: a signature is about 300 bytes.
pub const MAX_SIGNATURE: u64 = 4096;

/// The operator's demands on every candidate.
#[derive(Clone, Default)]
pub struct Provenance {
    /// `-module.sha256`: the lowercase hex SHA-256 of the only module bytes accepted.
    pub sha256: Option<String>,
    /// `-module.pubkey`: a candidate is accepted when one of these signed it.
    pub keys: Vec<TrustedKey>,
}

/// One `-module.pubkey` file.
#[derive(Clone)]
pub struct TrustedKey {
    pub file: String,
    key: PublicKey,
}

/// Why a candidate's provenance was refused, in this host's words (nothing of the candidate is
/// quoted).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("its sha256 is {found}, not the {pinned} that -module.sha256 pins")]
    Digest { found: String, pinned: String },
    #[error("it carries no signature, and -module.pubkey asks for one")]
    Unsigned,
    #[error("its signature cannot be read as a minisign signature")]
    Malformed,
    #[error("its signature is not by any of the {0} trusted key(s)")]
    WrongKey(usize),
}

impl Refusal {
    /// Every `reason` label.
    pub const REASONS: [&'static str; 3] = ["digest", "unsigned", "signature"];

    /// The `reason` label of `kubernetai_module_provenance_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Digest { .. } => "digest",
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed | Refusal::WrongKey(_) => "signature",
        }
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A `-module.sha256` value: 64 hex digits, with or without a `sha256:` prefix.
pub fn parse_sha256(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text).to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(format!("invalid -module.sha256 {text:?} (64 hex digits, optionally after sha256:)"))
    }
}

/// The `.minisig` file beside `module` (`m.wasm.minisig`): None when there is none; an error when
/// it cannot be read or is not text.
pub fn signature_beside(module: &Path) -> std::io::Result<Option<String>> {
    let mut name = module.as_os_str().to_owned();
    name.push(".minisig");
    match crate::module::bounded::read_bounded(Path::new(&name), MAX_SIGNATURE) {
        Ok(bytes) => {
            String::from_utf8(bytes).map(Some).map_err(|_| std::io::Error::other("the .minisig file is not text"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl TrustedKey {
    /// Reads a public key file as `minisign -G` writes it.
    pub fn read(path: &Path) -> Result<TrustedKey, String> {
        let text = crate::module::bounded::read_bounded(path, MAX_SIGNATURE)
            .map_err(|e| format!("-module.pubkey {}: {e}", path.display()))?;
        let text = String::from_utf8(text).map_err(|_| format!("-module.pubkey {}: not text", path.display()))?;
        let key = PublicKey::decode(text.trim())
            .or_else(|_| PublicKey::from_base64(text.trim()))
            .map_err(|_| format!("-module.pubkey {}: not a minisign public key", path.display()))?;
        Ok(TrustedKey { file: path.display().to_string(), key })
    }
}

impl Provenance {
    /// Whether anything is demanded (a signature is looked for only then).
    pub fn wants_signature(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Accepts `bytes` when they match the pin and, with keys, `signature` (a `.minisig` file's
    /// text) is a valid signature of them by one of the keys.
    pub fn check(&self, bytes: &[u8], digest: &str, signature: Option<&str>) -> Result<(), Refusal> {
        if let Some(pinned) = &self.sha256
            && pinned != digest
        {
            return Err(Refusal::Digest { found: digest.to_string(), pinned: pinned.clone() });
        }
        if self.keys.is_empty() {
            return Ok(());
        }
        let signature =
            Signature::decode(signature.ok_or(Refusal::Unsigned)?.trim()).map_err(|_| Refusal::Malformed)?;
        if self.keys.iter().any(|k| k.key.verify(bytes, &signature, false).is_ok()) {
            Ok(())
        } else {
            Err(Refusal::WrongKey(self.keys.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair and a signature of b"module bytes\n", made with `minisign -G -W` and `minisign -S`.
    const PUBLIC: &str = "untrusted comment: minisign public key E1CDB10BF9CF0E3B
RWQ7Ds/5C7HN4QDlfoEnyeZx5HQHSGSPXEpUnXLbQY0+QOHPgqa9bRVP";
    const SIGNATURE: &str = "untrusted comment: signature from minisign secret key
RUQ7Ds/5C7HN4eaIRsyFO6ti4Fs31Z0eO89iL7WQ8v/Tmw7QoI3ScTxCAbf+ZGZk0czjCOJLZX3KYrMz17aRJzncmG+QM/HyIg0=
trusted comment: kubernetai test
hgXmTxljtwGIb5Ckysyx6ZMY81enzRm3MD9bJi2teqSTuHXU5eRWgz9C4hG3eBJKqVl18jaV/IrP+RMstAqEAg==";

    #[test]
    fn the_pin_is_hex_and_compared_exactly() {
        let pin = parse_sha256(&format!("sha256:{}", "AB".repeat(32))).expect("a pin");
        assert_eq!(pin, "ab".repeat(32));
        assert!(parse_sha256("abc").is_err());
        let p = Provenance { sha256: Some(sha256_hex(b"x")), keys: vec![] };
        assert!(p.check(b"x", &sha256_hex(b"x"), None).is_ok());
        let refused = p.check(b"y", &sha256_hex(b"y"), None).expect_err("another module");
        assert_eq!(refused.reason(), "digest");
    }

    #[test]
    fn with_keys_a_signature_is_required_and_checked() {
        let key = PublicKey::decode(PUBLIC).expect("a public key");
        let p = Provenance { sha256: None, keys: vec![TrustedKey { file: "k.pub".into(), key }] };
        let digest = sha256_hex(b"module bytes\n");
        assert!(matches!(p.check(b"module bytes\n", &digest, None), Err(Refusal::Unsigned)));
        assert!(matches!(p.check(b"module bytes\n", &digest, Some("junk")), Err(Refusal::Malformed)));
        assert!(p.check(b"module bytes\n", &digest, Some(SIGNATURE)).is_ok(), "signed by the key");
        let other = sha256_hex(b"other bytes\n");
        assert!(matches!(p.check(b"other bytes\n", &other, Some(SIGNATURE)), Err(Refusal::WrongKey(1))));
    }
}
