//! Modules in OCI registries: `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`, in the CNCF TAG
//! Runtime's Wasm artifact layout (config `application/vnd.wasm.config.v0+json`, one layer
//! `application/wasm`) that `wkg oci push`, `oras push` and `kubernetai module push` write.
//! Registry traffic is the ORAS project's `oci-client`; this file decides what to ask, bounds
//! it, checks the layout and digests, reads Docker `config.json` credentials (the format of
//! `imagePullSecrets`) and keeps pulled blobs by digest so a restart without the registry
//! still starts.
//!
//! A module's minisign signature travels in the manifest's annotation [`SIGNATURE_ANNOTATION`]
//! (the `.minisig` file, base64: the client writes manifests as canonical JSON, which keeps a
//! newline raw, and registries refuse that): it signs the layer's bytes, so the manifest
//! carrying it is no part of what it signs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::module::bounded::{MAX_MODULE, write_whole};
use crate::module::provenance::sha256_hex;

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The manifest annotation holding the layer's minisign signature (the `.minisig` file, base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.kubernetai.module.minisig";
/// A whole pull (manifest and blob) or push; a registry slower than this is a failed attempt,
/// and the running module keeps serving.
const DEADLINE: Duration = Duration::from_secs(60);
/// Connecting, and each read: a registry that stops sending is noticed well before [`DEADLINE`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// A manifest is a few hundred bytes; a registry sending more is not serving this layout.
const MAX_MANIFEST: usize = 64 << 10;

/// A parsed `oci://` reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    pub reference: Reference,
    /// As the operator wrote it, for the log.
    pub text: String,
}

/// How registries are reached: `-module.plain-http`, `-module.ca`, `-module.pull-secret`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Plain HTTP instead of HTTPS (only when asked for).
    pub plain_http: bool,
    /// A PEM file of extra CA certificates (a private registry's own CA).
    pub ca: Option<PathBuf>,
    /// A Docker `config.json` (or a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`).
    pub pull_secret: Option<PathBuf>,
}

/// What a pull brought.
pub struct Pulled {
    pub bytes: Vec<u8>,
    pub signature: Option<String>,
    /// The manifest's digest (`sha256:…`): what a tag points at, and what a pin names.
    pub manifest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0} is not an OCI reference oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]")]
    Reference(String),
    #[error("the registry client: {0}")]
    Client(String),
    /// The client's error with every cause (a TLS failure is the cause of a request error).
    #[error("the registry: {0}")]
    Registry(String),
    #[error("the registry did not answer within {0:?}")]
    Deadline(Duration),
    #[error("the manifest is not the Wasm artifact layout: {0}")]
    Layout(String),
    #[error("the manifest's digest is {found}, not the pinned {pinned}")]
    Pin { found: String, pinned: String },
    #[error("{file}: {why}")]
    File { file: String, why: String },
}

impl From<oci_client::errors::OciDistributionError> for OciError {
    fn from(e: oci_client::errors::OciDistributionError) -> Self {
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let more = c.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = c.source();
        }
        OciError::Registry(text)
    }
}

impl Remote {
    /// `rest` is what follows `oci://`.
    pub fn parse(rest: &str) -> Result<Remote, OciError> {
        let text = format!("oci://{rest}");
        // A registry is required: `oci://name` alone would mean Docker Hub to the parser.
        let (host, path) = rest.split_once('/').ok_or_else(|| OciError::Reference(text.clone()))?;
        if host.is_empty() || path.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(OciError::Reference(text));
        }
        let reference = Reference::try_from(rest).map_err(|_| OciError::Reference(text.clone()))?;
        Ok(Remote { reference, text })
    }

    fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }
}

impl Registry {
    fn client(&self) -> Result<Client, OciError> {
        // reqwest is built without a TLS provider of its own: the ring one kube-rs uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            protocol: if self.plain_http { ClientProtocol::Http } else { ClientProtocol::Https },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        };
        if let Some(ca) = &self.ca {
            let data = crate::module::bounded::read_bounded(ca, 1 << 20)
                .map_err(|e| OciError::File { file: ca.display().to_string(), why: e.to_string() })?;
            config.extra_root_certificates.push(Certificate { encoding: CertificateEncoding::Pem, data });
        }
        Client::try_from(config).map_err(|e| OciError::Client(e.to_string()))
    }

    /// The credentials `-module.pull-secret` holds for `registry`; anonymous without one.
    fn auth(&self, registry: &str) -> Result<RegistryAuth, OciError> {
        let Some(file) = &self.pull_secret else { return Ok(RegistryAuth::Anonymous) };
        let failed = |why: String| OciError::File { file: file.display().to_string(), why };
        let bytes = crate::module::bounded::read_bounded(file, 1 << 20).map_err(|e| failed(e.to_string()))?;
        credentials(&bytes, registry).map_err(failed)
    }
}

/// The entry of a Docker `config.json` for `registry` (keys may carry a scheme and a path, as
/// `docker login` writes them): `auth` (base64 `user:password`), or `username` and `password`,
/// or an `identitytoken`/`registrytoken` used as a bearer token.
pub fn credentials(config: &[u8], registry: &str) -> Result<RegistryAuth, String> {
    #[derive(serde::Deserialize, Default)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
        identitytoken: Option<String>,
        registrytoken: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
    }
    let file: File = serde_json::from_slice(config).map_err(|e| format!("not a Docker config.json: {e}"))?;
    let host = |key: &str| {
        let key = key.split_once("://").map_or(key, |(_, k)| k);
        key.split('/').next().unwrap_or_default().to_string()
    };
    let Some(entry) = file.auths.iter().find(|(k, _)| host(k) == registry).map(|(_, e)| e) else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(token) = entry.registrytoken.as_ref().or(entry.identitytoken.as_ref()) {
        return Ok(RegistryAuth::Bearer(token.clone()));
    }
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    let auth = entry.auth.as_deref().ok_or_else(|| format!("the entry for {registry} has no credentials"))?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| format!("the auth of {registry} is not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| format!("the auth of {registry} is not text"))?;
    let (user, password) =
        text.split_once(':').ok_or_else(|| format!("the auth of {registry} is not user:password"))?;
    Ok(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

async fn bounded<T>(work: impl Future<Output = Result<T, OciError>>) -> Result<T, OciError> {
    tokio::time::timeout(DEADLINE, work).await.unwrap_or(Err(OciError::Deadline(DEADLINE)))
}

/// The manifest digest `remote` names now (a HEAD request): a tag's move shows here.
pub async fn current(remote: &Remote, registry: &Registry) -> Result<String, OciError> {
    if let Some(pinned) = remote.reference.digest() {
        return Ok(pinned.to_string());
    }
    let client = registry.client()?;
    let auth = registry.auth(remote.registry())?;
    bounded(async { Ok(client.fetch_manifest_digest(&remote.reference, &auth).await?) }).await
}

/// Pulls the module `remote` names: the manifest (checked against a pinned digest and the
/// layout), then its one layer, bounded by [`MAX_MODULE`] and checked against its digest.
pub async fn pull(remote: &Remote, registry: &Registry) -> Result<Pulled, OciError> {
    let client = registry.client()?;
    let auth = registry.auth(remote.registry())?;
    bounded(async {
        let (raw, digest) = client.pull_manifest_raw(&remote.reference, &auth, &[OCI_IMAGE_MEDIA_TYPE]).await?;
        if raw.len() > MAX_MANIFEST {
            return Err(OciError::Layout(format!("a manifest of {} bytes", raw.len())));
        }
        // Verified here too, byte for byte, whatever the client library checks.
        let found = format!("sha256:{}", sha256_hex(&raw));
        if let Some(pinned) = remote.reference.digest()
            && pinned != found
        {
            return Err(OciError::Pin { found, pinned: pinned.to_string() });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&raw).map_err(|e| OciError::Layout(format!("unreadable: {e}")))?;
        let layer = layer_of(&manifest)?;
        let mut out = Bounded(Vec::new());
        client.pull_blob(&remote.reference, &layer, &mut out).await?;
        let signature = manifest.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)).map(|b64| {
            use base64::Engine;
            // Unreadable: handed on as it is, so the check says the signature is unreadable.
            let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok();
            decoded.and_then(|b| String::from_utf8(b).ok()).unwrap_or_else(|| b64.clone())
        });
        Ok(Pulled { bytes: out.0, signature, manifest: if digest.is_empty() { found } else { digest } })
    })
    .await
}

/// The one `application/wasm` layer of a manifest in the Wasm artifact layout.
fn layer_of(manifest: &OciImageManifest) -> Result<OciDescriptor, OciError> {
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(OciError::Layout(format!("the config is not {CONFIG_MEDIA_TYPE}")));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(OciError::Layout(format!("{} layers, not one", manifest.layers.len())));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(OciError::Layout(format!("the layer is not {LAYER_MEDIA_TYPE}")));
    }
    if layer.size < 0 || layer.size as u64 > MAX_MODULE {
        return Err(OciError::Layout(format!("a layer of {} bytes (at most {MAX_MODULE})", layer.size)));
    }
    Ok(layer.clone())
}

/// Pushes `bytes` as a module artifact to `remote`, with `signature` (a `.minisig` text) as its
/// annotation, base64; returns the manifest's digest.
pub async fn push(
    remote: &Remote,
    registry: &Registry,
    bytes: Vec<u8>,
    signature: Option<String>,
) -> Result<String, OciError> {
    let client = registry.client()?;
    let auth = registry.auth(remote.registry())?;
    let layer = ImageLayer::new(bytes, LAYER_MEDIA_TYPE.to_string(), None);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer.sha256_digest()],
    });
    let config = Config::new(config.to_string().into_bytes(), CONFIG_MEDIA_TYPE.to_string(), None);
    use base64::Engine;
    let annotations = signature.map(|s| {
        BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), base64::engine::general_purpose::STANDARD.encode(s))])
    });
    let manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, annotations);
    bounded(async {
        client.push(&remote.reference, &[layer], config, &auth, Some(manifest)).await?;
        // The digest as the registry keeps the manifest: what a pin must name.
        Ok(client.fetch_manifest_digest(&remote.reference, &auth).await?)
    })
    .await
}

/// A blob writer that refuses more than a module may hold (a registry sending without end).
struct Bounded(Vec<u8>);

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.0.len() as u64 + buf.len() as u64 > MAX_MODULE {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "more than the {MAX_MODULE} bytes a module may have"
            ))));
        }
        self.0.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Pulled blobs kept by digest under `DIR/oci/`: `blobs/sha256-HEX` (with `.minisig` beside it)
/// and `refs/NAME`, which says which manifest and blob a reference last named.
pub struct Kept<'a>(pub &'a Path);

impl Kept<'_> {
    fn ref_file(&self, remote: &Remote) -> PathBuf {
        let name: String = remote
            .text
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        self.0.join("oci/refs").join(name)
    }

    fn blob(&self, hex: &str) -> PathBuf {
        self.0.join("oci/blobs").join(format!("sha256-{hex}"))
    }

    /// Keeps `pulled` as what `remote` names (each file written whole, then renamed).
    pub fn keep(&self, remote: &Remote, pulled: &Pulled) -> std::io::Result<()> {
        let hex = sha256_hex(&pulled.bytes);
        let blob = self.blob(&hex);
        write_whole(&blob, &pulled.bytes)?;
        let signature = blob.with_extension("minisig");
        match &pulled.signature {
            Some(s) => write_whole(&signature, s.as_bytes())?,
            None => {
                let _ = std::fs::remove_file(&signature);
            }
        }
        write_whole(&self.ref_file(remote), format!("{} sha256:{hex}\n", pulled.manifest).as_bytes())
    }

    /// What `remote` named when it was last pulled, its bytes checked against their digest.
    pub fn get(&self, remote: &Remote) -> Option<Pulled> {
        let line = std::fs::read_to_string(self.ref_file(remote)).ok()?;
        let (manifest, blob) = line.trim().split_once(' ')?;
        if remote.reference.digest().is_some_and(|pinned| pinned != manifest) {
            return None;
        }
        let hex = blob.strip_prefix("sha256:")?;
        let path = self.blob(hex);
        let bytes = crate::module::bounded::read_bounded(&path, MAX_MODULE).ok()?;
        if sha256_hex(&bytes) != hex {
            return None;
        }
        let signature = std::fs::read_to_string(path.with_extension("minisig")).ok();
        Some(Pulled { bytes, signature, manifest: manifest.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_a_registry() {
        let r = Remote::parse("127.0.0.1:5000/kubernetai/module:v1").expect("a reference");
        assert_eq!(
            (r.registry(), r.reference.repository(), r.reference.tag()),
            ("127.0.0.1:5000", "kubernetai/module", Some("v1"))
        );
        let pinned = format!("registry.example/m@sha256:{}", "a".repeat(64));
        assert!(Remote::parse(&pinned).expect("pinned").reference.digest().is_some());
        assert!(Remote::parse("module:v1").is_err(), "no registry");
        assert!(Remote::parse("registry.example/").is_err());
    }

    #[test]
    fn docker_config_credentials() {
        let config = br#"{"auths":{"https://127.0.0.1:5000/v2/":{"auth":"a3ViZTpzZWNyZXQ="},"r.example":{"username":"u","password":"p"}}}"#;
        let basic = |auth| match auth {
            RegistryAuth::Basic(u, p) => format!("{u}:{p}"),
            _ => "other".to_string(),
        };
        assert_eq!(basic(credentials(config, "127.0.0.1:5000").expect("found")), "kube:secret");
        assert_eq!(basic(credentials(config, "r.example").expect("found")), "u:p");
        assert!(matches!(credentials(config, "elsewhere").expect("none"), RegistryAuth::Anonymous));
        assert!(credentials(b"not json", "r.example").is_err());
    }

    #[test]
    fn the_layout_is_checked() {
        let config = Config::new(b"{}".to_vec(), CONFIG_MEDIA_TYPE.to_string(), None);
        let wasm = ImageLayer::new(b"\0asm".to_vec(), LAYER_MEDIA_TYPE.to_string(), None);
        assert!(layer_of(&OciImageManifest::build(std::slice::from_ref(&wasm), &config, None)).is_ok());
        let tar = ImageLayer::new(b"x".to_vec(), "application/vnd.oci.image.layer.v1.tar".to_string(), None);
        assert!(layer_of(&OciImageManifest::build(&[tar], &config, None)).is_err());
        let image = Config::new(b"{}".to_vec(), "application/vnd.oci.image.config.v1+json".to_string(), None);
        assert!(layer_of(&OciImageManifest::build(&[wasm], &image, None)).is_err());
    }
}
