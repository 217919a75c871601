//! Live clusters: a kube-rs client per stanza, built from the stanza's connection options as
//! CoreDNS reads them (kubeconfig, endpoint and tls, or the in-cluster service account), and a
//! watcher per kind the stanza needs. kube-rs lists, watches, follows bookmarks, relists on 410
//! Gone and backs off on errors; this module turns its events into the contract's watch events
//! (a relist is bracketed by relist-start/relist-done), prunes each object before anything holds
//! it, and reports when every kind has listed once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use std::borrow::Cow;

use kube::api::{ApiResource, ObjectMeta};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{DynamicResourceScope, Resource};
use kube::runtime::{WatchStreamExt, watcher};
use http::Request;
use kube::{Api, Client, Config};
use tokio::sync::mpsc;

use crate::cluster::objects::{Change, KINDS, Key};
use crate::cluster::prune;
use crate::cluster::stanza::ApiOptions;
use crate::cluster::watch_error;
use crate::contract::wit::{self, Event, Kind, Object};

/// How long a watch may stay silent — no event and no bookmark — before it is taken for dead
/// and started again from its resourceVersion (a relist only if the API server then answers 410).
/// API servers send a bookmark about once a minute to a watch that asks for them, as these do:
/// twice that. (client-go's HTTP/2 pings find such a connection in ~30 s; kube-rs's own default
/// is 295 s.)
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(120);

/// `-watch.silence`, for every watch of the process (set once at start).
static SILENCE: OnceLock<Duration> = OnceLock::new();

/// Sets `-watch.silence`; the first call wins.
pub fn set_silence(silence: Duration) {
    let _ = SILENCE.set(silence);
}

/// kube-rs's watcher ends a watch call after its `timeout` and takes a stream that sends nothing
/// for that long plus 5 s as dead: the silence allowed, in its terms (at least 1 s).
fn watch_timeout() -> u32 {
    let silence = SILENCE.get().copied().unwrap_or(DEFAULT_SILENCE);
    (silence.as_secs().saturating_sub(5)).clamp(1, u64::from(u32::MAX)) as u32
}

/// Why a stanza could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("reading kubeconfig {file}: {source}")]
    Kubeconfig { file: String, source: kube::config::KubeconfigError },
    #[error("endpoint and tls options: {0}")]
    Endpoint(serde_json::Error),
    #[error("in-cluster configuration from KUBERNETAI_SERVICE_ACCOUNT_DIR: {0}")]
    ServiceAccountDir(serde_json::Error),
    #[error("building the client configuration: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("in-cluster configuration (no endpoint or kubeconfig given): {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("building the client: {0}")]
    Client(#[from] kube::Error),
}

/// The client configuration: kubeconfig first, then endpoint (with tls), then in-cluster.
async fn config(api: &ApiOptions) -> Result<Config, WatchError> {
    if let Some((file, context)) = &api.kubeconfig {
        let kc = Kubeconfig::read_from(file)
            .map_err(|source| WatchError::Kubeconfig { file: file.display().to_string(), source })?;
        let opts = KubeConfigOptions { context: context.clone(), ..Default::default() };
        return Ok(Config::from_custom_kubeconfig(kc, &opts).await?);
    }
    if let Some(endpoint) = &api.endpoint {
        // The endpoint and tls files as an in-memory kubeconfig, so kube-rs reads the files.
        let (cert, key, ca) = match &api.tls {
            Some((c, k, ca)) => {
                (Some(c.display().to_string()), Some(k.display().to_string()), Some(ca.display().to_string()))
            }
            None => (None, None, None),
        };
        let yaml = serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "kubernetai",
            "clusters": [{"name": "c", "cluster": {"server": endpoint, "certificate-authority": ca}}],
            "users": [{"name": "u", "user": {"client-certificate": cert, "client-key": key}}],
            "contexts": [{"name": "kubernetai", "context": {"cluster": "c", "user": "u"}}],
        });
        let kc: Kubeconfig = serde_json::from_value(yaml).map_err(WatchError::Endpoint)?;
        return Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?);
    }
    in_cluster().await
}

/// Where a pod finds its service account's token and CA, as client-go reads them.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's token
/// (re-read as it rotates) and CA. `KUBERNETAI_SERVICE_ACCOUNT_DIR` moves the directory, for
/// tests or a server in another mount namespace; without it kube-rs reads the standard one.
async fn in_cluster() -> Result<Config, WatchError> {
    let Ok(dir) = std::env::var("KUBERNETAI_SERVICE_ACCOUNT_DIR") else {
        return Ok(Config::incluster()?);
    };
    let dir = std::path::Path::new(if dir.is_empty() { SERVICE_ACCOUNT_DIR } else { &dir });
    let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "c", "cluster": {"server": format!("https://{host}:{port}"),
                      "certificate-authority": dir.join("ca.crt").display().to_string()}}],
        "users": [{"name": "u", "user": {"tokenFile": dir.join("token").display().to_string()}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "c", "user": "u"}}],
    });
    let kc: Kubeconfig = serde_json::from_value(kubeconfig).map_err(WatchError::ServiceAccountDir)?;
    Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)
}

/// A client with the stanza's `apiserver_qps`/`apiserver_burst` rate and
/// `apiserver_max_inflight` limit (a request holds its slot until its response headers arrive,
/// as with client-go, so long watches do not starve lists).
/// Every watch request after a resource's first is counted as a restart of that watch under
/// `stanza` (`at`).
pub async fn client(api: &ApiOptions, at: &str) -> Result<Client, WatchError> {
    let config = config(api).await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    let inflight = api.max_inflight.filter(|n| *n > 0).map_or(usize::MAX >> 4, |n| n as usize);
    let builder = builder.with_layer(&tower::limit::ConcurrencyLimitLayer::new(inflight));
    let builder = builder.with_layer(&tower::util::MapRequestLayer::new(restarts(at)));
    let builder = builder.with_layer(&crate::cluster::heard::HeardLayer(at.into()));
    Ok(match api.qps.filter(|q| *q > 0.0) {
        Some(qps) => {
            let burst = api.burst.filter(|b| *b > 0).unwrap_or(1);
            let per = Duration::from_secs_f64(f64::from(burst) / f64::from(qps));
            builder.with_layer(&tower::limit::RateLimitLayer::new(u64::from(burst), per)).build()
        }
        None => builder.build(),
    })
}

/// Counts the watch calls a stanza's client makes after each resource's first: kube-rs starts a
/// watch again, from its resourceVersion, whenever one ends — the API server closing it after
/// its timeout (at most -watch.silence), a silent one given up, a failure — and tells no one.
fn restarts<B>(at: &str) -> impl FnMut(Request<B>) -> Request<B> + Clone + use<B> {
    let at: Arc<str> = at.into();
    let seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    move |req: Request<B>| {
        if req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true")) {
            let first = seen.lock().unwrap_or_else(|p| p.into_inner()).insert(req.uri().path().to_string());
            if !first {
                crate::observe::metrics::registry().inc("kubernetai_watch_restarts_total", &[&at, "ended"]);
            }
        }
        req
    }
}

/// The kinds a stanza watches: namespaces and services always, endpoint slices unless
/// `noendpoints`, pods only for `pods verified`, ServiceImports only with `multicluster`,
/// ServiceExports only for a clusterset member that does not export `all`.
pub fn kinds(stanza: &wit::Stanza, exports: bool) -> Vec<Kind> {
    let mut kinds = vec![Kind::Namespace, Kind::Service];
    if !stanza.noendpoints {
        kinds.push(Kind::EndpointSlice);
    }
    if stanza.pods == wit::PodMode::Verified {
        kinds.push(Kind::Pod);
    }
    if !stanza.multicluster.is_empty() {
        kinds.push(Kind::ServiceImport);
    }
    if exports {
        kinds.push(Kind::ServiceExport);
    }
    kinds
}

fn resource(kind: Kind) -> ApiResource {
    use k8s_openapi::api::{core::v1, discovery::v1 as discovery};
    match kind {
        Kind::Namespace => ApiResource::erase::<v1::Namespace>(&()),
        Kind::Service => ApiResource::erase::<v1::Service>(&()),
        Kind::Pod => ApiResource::erase::<v1::Pod>(&()),
        Kind::EndpointSlice => ApiResource::erase::<discovery::EndpointSlice>(&()),
        Kind::ServiceImport => multicluster("ServiceImport", "serviceimports"),
        Kind::ServiceExport => multicluster("ServiceExport", "serviceexports"),
    }
}

/// A kind of the Multi-Cluster Services API (a CRD: a cluster may not have it).
fn multicluster(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// One batch of events of one kind, or the news that a kind completed its first list.
pub enum Report {
    /// Events, and when the changes behind the EndpointSlice updates among them were triggered.
    Events(Vec<Change>, Vec<Trigger>),
    Listed(Kind),
}

/// When the endpoints controller saw the change an EndpointSlice update carries (its
/// `endpoints.kubernetes.io/last-change-trigger-time`), for CoreDNS's DNS programming latency
/// SLI, `coredns_kubernetes_dns_programming_duration_seconds{service_kind}`.
#[derive(Clone, Debug)]
pub struct Trigger {
    /// "cluster_ip" or "headless_with_selector", as CoreDNS labels it.
    pub service_kind: &'static str,
    /// Seconds since the epoch.
    pub at: f64,
}

const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const HEADLESS: &str = "service.kubernetes.io/headless";

/// The trigger time of an EndpointSlice's text, read only for slices.
fn trigger(text: &str) -> Option<Trigger> {
    #[derive(serde::Deserialize)]
    struct Slice {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
        #[serde(default)]
        labels: std::collections::HashMap<String, String>,
    }
    let meta = serde_json::from_str::<Slice>(text).ok()?.metadata;
    let at = rfc3339_seconds(meta.annotations.get(TRIGGER_TIME)?)?;
    let headless = meta.labels.contains_key(HEADLESS);
    Some(Trigger { service_kind: if headless { "headless_with_selector" } else { "cluster_ip" }, at })
}

/// Seconds since the epoch of a Kubernetes timestamp (`2026-11-25T23:36:13Z`, fractions allowed).
pub fn rfc3339_seconds(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hh, mm) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let ss: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || !(0.0..61.0).contains(&ss) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), March-based years.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3_600 + mm * 60) as f64 + ss)
}

/// An object as the watcher decodes it: pruned while its list page or watch line is read, so
/// no page of whole objects (a pod is ~2 KB of spec and status) is ever held, only their
/// identity, resourceVersion (the watcher resumes from it) and what DNS reads. `KIND` is a
/// [`Kind`] as a number (its index in [`KINDS`]) and, in the high bits, what the stanza reads of
/// an endpoint ([`prune::Reads`]): a decoder has no other way to learn what it reads.
/// The object is taken as raw text, which serde_json hands out only while reading the response
/// itself: a watch event must name its `type` before its `object`, as API servers write it
/// (an event in the other order fails to decode, and the watch error says so).
#[derive(Clone, Debug)]
struct Watched<const KIND: u8> {
    metadata: ObjectMeta,
    json: String,
    trigger: Option<Trigger>,
}

/// The kind a decoder's `KIND` names: its low four bits, the kind's index in [`KINDS`].
fn kind_of(n: u8) -> Kind {
    KINDS[usize::from(n & 0x0f) % KINDS.len()]
}

/// What the stanza reads of an endpoint, from a decoder's `KIND`: its high bits.
const fn reads_of(n: u8) -> prune::Reads {
    prune::Reads::from_bits(n >> 4)
}

impl<'de, const KIND: u8> serde::Deserialize<'de> for Watched<KIND> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        let (kind, text) = (kind_of(KIND), raw.get());
        // Not an object: passed as it came, for the module to reject with its reason.
        let Some(object) = prune::read(text) else {
            let metadata = ObjectMeta::default();
            return Ok(Watched { metadata, json: text.to_string(), trigger: None });
        };
        let trigger = if kind == Kind::EndpointSlice { trigger(text) } else { None };
        let p = object.prune(kind, reads_of(KIND));
        let metadata = ObjectMeta {
            name: Some(p.name),
            namespace: Some(p.namespace).filter(|n| !n.is_empty()),
            resource_version: p.resource_version,
            ..ObjectMeta::default()
        };
        Ok(Watched { metadata, json: p.json, trigger })
    }
}

impl<const KIND: u8> Resource for Watched<KIND> {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        Cow::from(&dt.kind)
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        Cow::from(&dt.group)
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::from(&dt.version)
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        Cow::from(&dt.api_version)
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        Cow::from(&dt.plural)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<const KIND: u8> Watched<KIND> {
    /// The object applied (or deleted), with the key read as it was decoded; an item that was no
    /// object has none, and the module refuses it with the reason.
    fn change(self, apply: bool) -> Change {
        let object = Object { kind: kind_of(KIND), json: self.json };
        let key = self
            .metadata
            .name
            .map(|name| Key { namespace: self.metadata.namespace.unwrap_or_default().into(), name: name.into() });
        Change { event: if apply { Event::Apply(object) } else { Event::Delete(object) }, key }
    }
}

/// Watches `kind` for ever, sending its events to `tx`. `labels` and `namespace_labels` go to
/// the API server as label selectors on the kinds they filter.
pub async fn run(client: Client, kind: Kind, stanza: wit::Stanza, tx: mpsc::UnboundedSender<Report>, at: String) {
    match kind {
        Kind::Namespace => watch::<0>(client, stanza, tx, at).await,
        Kind::Service => watch::<1>(client, stanza, tx, at).await,
        // What the stanza reads of an endpoint decides what its decoder keeps.
        Kind::EndpointSlice => match prune::Reads::of(&stanza).bits() {
            0 => watch::<2>(client, stanza, tx, at).await,
            1 => watch::<{ 2 | 1 << 4 }>(client, stanza, tx, at).await,
            2 => watch::<{ 2 | 2 << 4 }>(client, stanza, tx, at).await,
            _ => watch::<{ 2 | 3 << 4 }>(client, stanza, tx, at).await,
        },
        Kind::Pod => watch::<3>(client, stanza, tx, at).await,
        Kind::ServiceImport => watch::<4>(client, stanza, tx, at).await,
        Kind::ServiceExport => watch::<5>(client, stanza, tx, at).await,
    }
}

async fn watch<const KIND: u8>(client: Client, stanza: wit::Stanza, tx: mpsc::UnboundedSender<Report>, at: String) {
    let kind = kind_of(KIND);
    let api: Api<Watched<KIND>> = Api::all_with(client, &resource(kind));
    let selector = match kind {
        Kind::Service | Kind::EndpointSlice => stanza.labels.clone(),
        Kind::Namespace => stanza.namespace_labels.clone(),
        _ => None,
    };
    let mut cfg = watcher::Config::default().timeout(watch_timeout());
    if let Some(s) = &selector {
        cfg = cfg.labels(s);
    }
    let mut listed = false;
    let mut throttle = watch_error::Throttle::new(Duration::from_secs(30));
    let name = crate::cluster::objects::kind_name(kind);
    let registry = crate::observe::metrics::registry();
    // Written at most once a second (a first list brings thousands of events at once).
    let mut stamped: Option<std::time::Instant> = None;
    let mut stream = if kind == Kind::ServiceExport {
        // A CRD may be installed at any time: its absence is asked about again every few seconds.
        watcher(api, cfg).backoff(Capped { inner: watcher::DefaultBackoff::default(), cap: CRD_RETRY }).boxed()
    } else {
        watcher(api, cfg).default_backoff().boxed()
    };
    // Whether the kind's CRD is installed, as far as the last answer told.
    let mut installed = true;
    while let Some(item) = stream.next().await {
        if item.is_ok() && stamped.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            stamped = Some(std::time::Instant::now());
            registry.set("kubernetai_watch_last_event_timestamp_seconds", &[&at, name], crate::now() as f64);
        }
        let mut triggers = Vec::new();
        let events = match item {
            Err(e) if kind == Kind::ServiceExport && crd_absent(&e) => {
                if installed {
                    installed = false;
                    println!(
                        "[INFO] plugin/kubernetai: {at}: the ServiceExport CRD (multicluster.x-k8s.io/v1alpha1) is not \
                         installed: this cluster exports nothing until it is"
                    );
                    // What was exported before the CRD went goes with it; the first time, the
                    // kind counts as listed, and empty.
                    let events = vec![Change::marker(Event::RelistStart(kind)), Change::marker(Event::RelistDone(kind))];
                    if tx.send(Report::Events(events, vec![])).is_err() {
                        return;
                    }
                }
                if !listed {
                    listed = true;
                    if tx.send(Report::Listed(kind)).is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(watcher::Event::Init) => {
                if !installed {
                    installed = true;
                    println!("[INFO] plugin/kubernetai: {at}: the ServiceExport CRD is installed: listing ServiceExports");
                } else if listed {
                    // A relist after the first: kube-rs started the watch again from nothing (410).
                    registry.inc("kubernetai_watch_restarts_total", &[&at, "relist"]);
                }
                vec![Change::marker(Event::RelistStart(kind))]
            }
            Ok(watcher::Event::InitApply(o)) => vec![o.change(true)],
            Ok(watcher::Event::Apply(mut o)) => {
                // A change after the first list: the SLI counts these only, as CoreDNS.
                triggers.extend(o.trigger.take());
                vec![o.change(true)]
            }
            Ok(watcher::Event::Delete(o)) => vec![o.change(false)],
            Ok(watcher::Event::InitDone) => vec![Change::marker(Event::RelistDone(kind))],
            Err(e) => {
                // kube-rs backs off and resumes (relisting after 410 Gone); the last state keeps
                // answering.
                let cause = watch_error::chain(&e);
                let reason = watch_error::reason(&cause);
                registry.inc("kubernetai_watch_errors_total", &[&at, reason]);
                if let Some(held) = throttle.admit(std::time::Instant::now()) {
                    let more = if held > 0 { format!(" ({held} more since the last line)") } else { String::new() };
                    println!("[WARNING] plugin/kubernetai: {at}: watch {name} ({reason}): {cause}{more}");
                }
                continue;
            }
        };
        let done = events.iter().any(|e| matches!(e.event, Event::RelistDone(_)));
        if events.iter().any(|e| matches!(e.event, Event::RelistStart(_))) || done {
            let step = if done { "listed" } else { "listing" };
            crate::observe::debug::line("kubernetai", || format!("{at}: {step} {name}"));
        }
        if !events.is_empty() && tx.send(Report::Events(events, triggers)).is_err() {
            return;
        }
        if done && !listed {
            listed = true;
            if tx.send(Report::Listed(kind)).is_err() {
                return;
            }
        }
    }
}

/// How long a watch of a kind whose CRD is absent waits at most before asking again.
const CRD_RETRY: Duration = Duration::from_secs(5);

/// Whether a watch failed because the API server has no such resource (its CRD is absent).
fn crd_absent(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.is_not_found(),
        watcher::Error::WatchError(status) => status.is_not_found(),
        _ => false,
    }
}

/// kube-rs's backoff with its delays capped.
struct Capped {
    inner: watcher::DefaultBackoff,
    cap: Duration,
}

impl Iterator for Capped {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.inner.next().map(|d| d.min(self.cap))
    }
}

impl kube::runtime::utils::Backoff for Capped {
    fn reset(&mut self) {
        kube::runtime::utils::Backoff::reset(&mut self.inner);
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339_seconds;

    #[test]
    fn kubernetes_timestamps_read_as_epoch_seconds() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(rfc3339_seconds("2026-11-25T23:36:13Z"), Some(1_795_649_773.0));
        assert_eq!(rfc3339_seconds("2026-11-25T23:36:13.5Z"), Some(1_795_649_773.5));
        assert_eq!(rfc3339_seconds("2026-11-25T23:36:13+01:00"), None);
        assert_eq!(rfc3339_seconds("2026-13-25T23:36:13Z"), None);
    }
}
