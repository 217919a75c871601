//! Where modules come from (`-module`): the module built into the binary, the native library,
//! a component file (also one in a ConfigMap or Secret volume, which kubelet updates by moving
//! the `..data` symlink), or an OCI reference. Fetching a candidate from there is bounded in
//! bytes and time, and its provenance is checked before any parser sees it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::module::oci::{self, Kept, Registry, Remote};
use crate::module::provenance::{Provenance, sha256_hex};
use crate::module::{EMBEDDED, Loading, Module, ModuleError};

use crate::module::bounded::{MAX_MODULE, read_bounded};
/// How often a file source is checked for a change (CoreDNS's reload plugin polls too).
pub const FILE_POLL: Duration = Duration::from_secs(2);
/// How often a tag is asked where it points, unless `-module.poll` says otherwise: one HEAD
/// request a minute per replica costs a registry nothing.
pub const TAG_POLL: Duration = Duration::from_secs(60);

/// What `-module` names.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Builtin,
    /// `native`: the resolution library linked into the host, no sandbox (the benchmark baseline).
    Native,
    File(PathBuf),
    Oci(Remote),
}

impl Origin {
    /// `-module VALUE`: `builtin`, `native`, `oci://…`, or a file's path.
    pub fn parse(text: &str) -> Result<Origin, String> {
        Ok(match text {
            "builtin" => Origin::Builtin,
            crate::module::NATIVE => Origin::Native,
            _ => match text.strip_prefix("oci://") {
                Some(rest) => Origin::Oci(Remote::parse(rest).map_err(|e| e.to_string())?),
                None => Origin::File(PathBuf::from(text)),
            },
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Origin::Builtin => "the built-in module".to_string(),
            Origin::Native => "the native library".to_string(),
            Origin::File(p) => p.display().to_string(),
            Origin::Oci(r) => r.text.clone(),
        }
    }
}

/// How modules are fetched and what they must prove: `-module.sha256`, `-module.pubkey`,
/// `-module.plain-http`, `-module.ca`, `-module.pull-secret`, `-module.poll`.
#[derive(Clone, Default)]
pub struct Fetching {
    pub provenance: Provenance,
    pub registry: Registry,
    /// How often the source is checked for a change; None: [`FILE_POLL`] for files, [`TAG_POLL`]
    /// for a tag, never for a pinned digest.
    pub poll: Option<Duration>,
}

/// A candidate's bytes and what came with them.
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// A `.minisig` file's text.
    pub signature: Option<String>,
    /// Lowercase hex SHA-256 of `bytes`: how the log names a candidate.
    pub digest: String,
    pub origin: String,
    /// A tag's manifest digest at the pull (what a poll compares with).
    pub manifest: Option<String>,
}

impl Fetched {
    pub fn new(bytes: Vec<u8>, signature: Option<String>, origin: String) -> Fetched {
        Fetched { digest: sha256_hex(&bytes), bytes, signature, origin, manifest: None }
    }
}

impl Fetching {
    /// How often `origin` is checked for a change, if ever.
    pub fn poll_every(&self, origin: &Origin) -> Option<Duration> {
        match origin {
            Origin::Builtin | Origin::Native => None,
            Origin::File(_) => Some(self.poll.unwrap_or(FILE_POLL)),
            Origin::Oci(r) if r.reference.digest().is_some() => None,
            Origin::Oci(_) => Some(self.poll.unwrap_or(TAG_POLL)),
        }
    }

    /// The candidate `origin` names now (None for the built-in module and the native library).
    /// When the registry cannot be reached, the module a reference last named in `cache` is
    /// used, with a warning.
    pub async fn fetch(&self, origin: &Origin, cache: Option<&Path>) -> Result<Option<Fetched>, ModuleError> {
        match origin {
            Origin::Builtin | Origin::Native => Ok(None),
            Origin::File(path) => {
                let bytes = read_bounded(path, MAX_MODULE)
                    .map_err(|source| ModuleError::Read { file: path.display().to_string(), source })?;
                // Unreadable counts as absent: the check then says the candidate is unsigned.
                let signature = if self.provenance.wants_signature() {
                    crate::module::provenance::signature_beside(path).ok().flatten()
                } else {
                    None
                };
                Ok(Some(Fetched::new(bytes, signature, path.display().to_string())))
            }
            Origin::Oci(remote) => {
                let pulled = match oci::pull(remote, &self.registry).await {
                    Ok(pulled) => pulled,
                    Err(e) => match cache.and_then(|dir| Kept(dir).get(remote)) {
                        Some(kept) => {
                            println!(
                                "[WARNING] plugin/kubernetai: pulling {}: {e}; using the copy kept from {}",
                                remote.text, kept.manifest
                            );
                            kept
                        }
                        None => return Err(ModuleError::Fetch(format!("pulling {}: {e}", remote.text))),
                    },
                };
                let origin = format!("{} ({})", remote.text, pulled.manifest);
                let mut fetched = Fetched::new(pulled.bytes, pulled.signature, origin);
                fetched.manifest = Some(pulled.manifest);
                Ok(Some(fetched))
            }
        }
    }

    /// Whether `origin` points at something other than `manifest` now (a tag's move); errors
    /// are logged by the caller and change nothing.
    pub async fn moved(&self, origin: &Origin, manifest: Option<&str>) -> Result<bool, ModuleError> {
        let Origin::Oci(remote) = origin else { return Ok(false) };
        let now = oci::current(remote, &self.registry)
            .await
            .map_err(|e| ModuleError::Fetch(format!("asking {} where it points: {e}", remote.text)))?;
        Ok(manifest != Some(now.as_str()))
    }

    /// Checks `fetched` against `-module.sha256` and `-module.pubkey`, then compiles it; a
    /// refusal is counted and logged with the candidate's digest.
    pub fn compile(&self, fetched: &Fetched, loading: &Loading) -> Result<Module, ModuleError> {
        if let Err(refusal) = self.provenance.check(&fetched.bytes, &fetched.digest, fetched.signature.as_deref()) {
            crate::observe::metrics::registry().inc("kubernetai_module_provenance_refused_total", &[refusal.reason()]);
            return Err(ModuleError::Provenance {
                origin: fetched.origin.clone(),
                digest: fetched.digest.clone(),
                refusal,
            });
        }
        Module::compile(&fetched.bytes, loading)
    }

    /// The module `fetched` holds, or the built-in or native module `origin` names (blocking:
    /// compiling takes a core for a while).
    pub fn module(&self, origin: &Origin, fetched: Option<&Fetched>, loading: &Loading) -> Result<Module, ModuleError> {
        match (fetched, origin) {
            (Some(f), Origin::Oci(remote)) => {
                let module = self.compile(f, loading)?;
                // Kept once it passed its checks: a restart without the registry starts on the
                // last module accepted, never on one refused.
                if let (Some(dir), Some(manifest)) = (&loading.cache, &f.manifest) {
                    let pulled = oci::Pulled {
                        bytes: f.bytes.clone(),
                        signature: f.signature.clone(),
                        manifest: manifest.clone(),
                    };
                    if let Err(e) = Kept(dir).keep(remote, &pulled) {
                        println!("[WARNING] plugin/kubernetai: keeping {} in {}: {e}", remote.text, dir.display());
                    }
                }
                Ok(module)
            }
            (Some(f), _) => self.compile(f, loading),
            (None, Origin::Native) => Ok(Module::native()),
            (None, _) => Module::compile(EMBEDDED, loading),
        }
    }

    /// The module `origin` names: fetched, checked, compiled (off the async threads).
    pub async fn load(&self, origin: &Origin, loading: &Loading) -> Result<Module, ModuleError> {
        let fetched = self.fetch(origin, loading.cache.as_deref()).await?;
        let (this, origin, loading) = (self.clone(), origin.clone(), loading.clone());
        tokio::task::spawn_blocking(move || this.module(&origin, fetched.as_ref(), &loading))
            .await
            .map_err(|e| ModuleError::Fetch(format!("the loading task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(Origin::parse("native"), Ok(Origin::Native));
        assert_eq!(Origin::parse("m.wasm"), Ok(Origin::File("m.wasm".into())));
        assert!(matches!(Origin::parse("oci://r.example/m:v1"), Ok(Origin::Oci(_))));
        assert!(Origin::parse("oci://nothing").is_err());
        let f = Fetching::default();
        assert_eq!(f.poll_every(&Origin::File("m".into())), Some(FILE_POLL));
        assert_eq!(f.poll_every(&Origin::parse("oci://r.example/m:v1").expect("tag")), Some(TAG_POLL));
        let pinned = Origin::parse(&format!("oci://r.example/m@sha256:{}", "0".repeat(64))).expect("pinned");
        assert_eq!(f.poll_every(&pinned), None, "a digest never moves");
    }
}
