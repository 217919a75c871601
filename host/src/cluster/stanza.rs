//! One `kubernetai` stanza: its zones and every option of CoreDNS's kubernetes plugin, parsed and
//! validated with the file and line of any mistake. What the guest needs travels to it as the WIT
//! `stanza` record; the connection options and `manifests` stay with the host.

use std::path::PathBuf;
use std::time::Duration;

use kubernetai_guest::selector::Selector;

use crate::contract::wit;
use crate::corefile::args::parse_duration;
use crate::corefile::{Directive, Error};

/// CoreDNS waits this long for the API before serving anyway.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// CoreDNS's `ttl` bounds.
const MAX_TTL: u32 = 3600;

/// How a stanza learns its cluster's objects.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `manifests FILE…` (a kubernetai extension): `kubectl get … -o json` output, re-read on change.
    Manifests(Vec<PathBuf>),
    /// The Kubernetes API (endpoint / tls / kubeconfig / in-cluster).
    Api(ApiOptions),
}

/// The connection options of the kubernetes plugin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiOptions {
    pub endpoint: Option<String>,
    /// Client certificate, key and CA certificate files.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    pub kubeconfig: Option<(PathBuf, Option<String>)>,
    pub qps: Option<f32>,
    pub burst: Option<u32>,
    pub max_inflight: Option<u32>,
}

/// `clusterset ZONE CLUSTERID [all]` (a kubernetai extension): the stanza's cluster is a member
/// of the clusterset answered under ZONE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Where the option was written.
    pub file: String,
    pub line: usize,
    /// Lowercase, fully qualified.
    pub zone: String,
    /// One lowercase DNS label.
    pub cluster_id: String,
    /// `all`: every Service is exported, not only those a ServiceExport names.
    pub export_all: bool,
}

impl Membership {
    /// An error about this membership, at the line that wrote it.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error { file: self.file.clone(), line: self.line, message: message.into() }
    }
}

/// A parsed stanza.
#[derive(Clone, Debug)]
pub struct Stanza {
    /// Where it was written, for logs ("Corefile:12").
    pub at: String,
    /// The directive that wrote it: "kubernetai", or "kubernetes" for CoreDNS's own.
    pub plugin: &'static str,
    pub guest: wit::Stanza,
    pub source: Source,
    /// How long startup waits for the API to sync; read by the API source, not by `manifests`.
    #[allow(dead_code)]
    pub startup_timeout: Duration,
    pub clusterset: Option<Membership>,
}

/// Parses one `kubernetai [ZONES…] { … }` directive, or CoreDNS's `kubernetes` (the same
/// options; errors name the directive written); `block_zones` are the server block's zones,
/// used when the directive names none.
pub fn parse(d: &Directive, block_zones: &[String]) -> Result<Stanza, Error> {
    let plugin = d.name.text.as_str();
    let zones: Vec<String> = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        d.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
    };
    if zones.iter().all(|z| kubernetai_guest::resolve::is_reverse(z)) {
        return Err(d.error(format!("{plugin}: non-reverse zone name must be used")));
    }
    let mut g = wit::Stanza {
        zones,
        namespaces: vec![],
        namespace_labels: None,
        labels: None,
        pods: wit::PodMode::Disabled,
        endpoint_pod_names: false,
        ttl: kubernetai_guest::config::DEFAULT_TTL,
        noendpoints: false,
        fallthrough: None,
        ignore_empty_service: false,
        multicluster: vec![],
        zonal: false,
    };
    let mut api = ApiOptions::default();
    let mut manifests = Vec::new();
    let mut startup_timeout = DEFAULT_STARTUP_TIMEOUT;
    let mut clusterset = None;
    for opt in d.block.as_deref().unwrap_or_default() {
        let name = opt.name.text.as_str();
        let args = opt.arg_texts();
        let err = |m: String| opt.error(format!("{plugin}: {m}"));
        let count = |ok: bool, expected: &str| {
            if ok { Ok(()) } else { Err(err(format!("{name} takes {expected}, got {}", args.len()))) }
        };
        if opt.block.is_some() {
            return Err(err(format!("option '{name}' takes no block")));
        }
        match name {
            "endpoint_pod_names" => {
                count(args.is_empty(), "no arguments")?;
                g.endpoint_pod_names = true;
            }
            "pods" => {
                count(args.len() == 1, "one of disabled, insecure, verified")?;
                g.pods = match args[0] {
                    "disabled" => wit::PodMode::Disabled,
                    "insecure" => wit::PodMode::Insecure,
                    "verified" => wit::PodMode::Verified,
                    other => {
                        return Err(err(format!(
                            "wrong value for pods: {other}, must be one of: disabled, verified, insecure"
                        )));
                    }
                };
            }
            "namespaces" => {
                count(!args.is_empty(), "at least one namespace")?;
                g.namespaces.extend(args.iter().map(|a| a.to_string()));
            }
            "endpoint" => {
                count(!args.is_empty(), "a URL")?;
                let url = args[0];
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(format!("endpoint {url:?} must be an http:// or https:// URL")));
                }
                if args.len() > 1 {
                    println!(
                        "[WARNING] plugin/kubernetai: {}: multiple endpoints are deprecated, only {url} is used",
                        opt.name.at()
                    );
                }
                api.endpoint = Some(url.to_string());
            }
            "tls" => {
                count(args.len() == 3, "CERT KEY CACERT")?;
                api.tls = Some((args[0].into(), args[1].into(), args[2].into()));
            }
            "labels" | "namespace_labels" => {
                count(!args.is_empty(), "a label selector")?;
                let text = args.join(" ");
                let sel = Selector::parse(&text)
                    .map_err(|e| err(format!("unable to parse {name} selector {text:?}: {e}")))?;
                let slot = if name == "labels" { &mut g.labels } else { &mut g.namespace_labels };
                *slot = Some(sel.as_str().to_string());
            }
            "fallthrough" => {
                let zones = if args.is_empty() {
                    vec![".".to_string()]
                } else {
                    opt.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
                };
                g.fallthrough = Some(zones);
            }
            "ttl" => {
                count(args.len() == 1, "one number")?;
                let ttl: i64 = args[0].parse().map_err(|_| err(format!("ttl {:?} is not a number", args[0])))?;
                if !(0..=i64::from(MAX_TTL)).contains(&ttl) {
                    return Err(err(format!("ttl must be in range [0, {MAX_TTL}]: {ttl}")));
                }
                g.ttl = ttl as u32;
            }
            "noendpoints" => {
                count(args.is_empty(), "no arguments")?;
                g.noendpoints = true;
            }
            "zonal" => {
                count(args.is_empty(), "no arguments")?;
                g.zonal = true;
            }
            "ignore" => {
                count(args.len() == 1, "empty_service")?;
                if args[0] != "empty_service" {
                    return Err(err(format!("unable to parse ignore value: '{}'", args[0])));
                }
                g.ignore_empty_service = true;
            }
            "kubeconfig" => {
                count(args.len() == 1 || args.len() == 2, "FILE [CONTEXT]")?;
                api.kubeconfig = Some((args[0].into(), args.get(1).map(|c| c.to_string())));
            }
            "multicluster" => {
                g.multicluster = opt.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?;
            }
            "startup_timeout" => {
                count(args.len() == 1, "a duration like 5s")?;
                startup_timeout = parse_duration(args[0])
                    .ok_or_else(|| err(format!("failed to parse startup_timeout: {:?}", args[0])))?;
            }
            "apiserver_qps" => {
                count(args.len() == 1, "one number")?;
                let qps: f32 = args[0].parse().map_err(|_| err(format!("invalid apiserver_qps {:?}", args[0])))?;
                if !(qps >= 0.0 && qps.is_finite()) {
                    return Err(err("apiserver_qps must be >= 0".into()));
                }
                api.qps = Some(qps);
            }
            "apiserver_burst" | "apiserver_max_inflight" => {
                count(args.len() == 1, "one whole number")?;
                let n: i64 = args[0].parse().map_err(|_| err(format!("invalid {name} {:?}", args[0])))?;
                let n = u32::try_from(n).map_err(|_| err(format!("{name} must be >= 0")))?;
                if name == "apiserver_burst" { api.burst = Some(n) } else { api.max_inflight = Some(n) }
            }
            "clusterset" => {
                count((2..=3).contains(&args.len()), "ZONE CLUSTERID [all]")?;
                let zone = crate::corefile::args::zone_of(&opt.args[0])?;
                let cluster_id = args[1].to_ascii_lowercase();
                if !kubernetai_guest::clusterset::is_cluster_id(&cluster_id) {
                    return Err(err(format!("clusterset: cluster id {:?} is not a DNS label", args[1])));
                }
                let export_all = match args.get(2) {
                    None => false,
                    Some(&"all") => true,
                    Some(other) => return Err(err(format!("clusterset: expected 'all' after the cluster id, got {other:?}"))),
                };
                let (file, line) = (opt.name.file.display().to_string(), opt.name.line);
                clusterset = Some(Membership { file, line, zone, cluster_id, export_all });
            }
            "manifests" => {
                count(!args.is_empty(), "at least one file")?;
                let base = opt.name.file.parent().map(|p| p.to_path_buf()).unwrap_or_default();
                manifests.extend(args.iter().map(|a| base.join(a)));
            }
            other => return Err(err(format!("unknown property '{other}'"))),
        }
    }
    if !g.namespaces.is_empty() && g.namespace_labels.is_some() {
        return Err(d.error(format!("{plugin}: namespaces and namespace_labels cannot both be set")));
    }
    if let Some(z) = g.multicluster.iter().find(|z| !g.zones.contains(z)) {
        return Err(d.error(format!(
            "{plugin}: is not authoritative for the multicluster zone {z} (authoritative zones: {:?})",
            g.zones
        )));
    }
    if g.zonal && g.noendpoints {
        return Err(d.error(format!("{plugin}: zonal requires the endpoint cache; remove noendpoints")));
    }
    let source = if manifests.is_empty() {
        Source::Api(api)
    } else if api != ApiOptions::default() {
        return Err(
            d.error(format!("{plugin}: manifests cannot be combined with endpoint, tls, kubeconfig or apiserver options"))
        );
    } else {
        Source::Manifests(manifests)
    };
    let plugin = if plugin == "kubernetes" { "kubernetes" } else { "kubernetai" };
    Ok(Stanza { at: d.name.at(), plugin, guest: g, source, startup_timeout, clusterset })
}

/// Parses `k8s_external [ZONES…] { apex APEX; ttl TTL; headless; fallthrough [ZONES…] }`, as
/// CoreDNS's plugin takes it; the module serves it from the block's stanzas.
pub fn parse_external(d: &Directive, block_zones: &[String]) -> Result<wit::ExternalZone, Error> {
    let zones: Vec<String> = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        d.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
    };
    let mut e = wit::ExternalZone { zones, apex: "dns".into(), ttl: 5, headless: false, fallthrough: None };
    for opt in d.block.as_deref().unwrap_or_default() {
        let args = opt.arg_texts();
        match (opt.name.text.as_str(), args.as_slice()) {
            ("apex", [apex]) if !apex.is_empty() && !apex.contains('.') => e.apex = apex.to_ascii_lowercase(),
            ("apex", _) => return Err(opt.error("k8s_external: apex takes one DNS label")),
            ("ttl", [t]) => {
                let ttl: i64 = t.parse().map_err(|_| opt.error(format!("k8s_external: ttl {t:?} is not a number")))?;
                if !(0..=3600).contains(&ttl) {
                    return Err(opt.error(format!("k8s_external: ttl must be in range [0, 3600]: {ttl}")));
                }
                e.ttl = ttl as u32;
            }
            ("ttl", _) => return Err(opt.error("k8s_external: ttl takes one number")),
            ("headless", []) => e.headless = true,
            ("fallthrough", _) => {
                e.fallthrough = Some(if args.is_empty() {
                    vec![".".to_string()]
                } else {
                    opt.args.iter().map(crate::corefile::args::zone_of).collect::<Result<_, _>>()?
                });
            }
            (other, _) => return Err(opt.error(format!("k8s_external: unknown property '{other}'"))),
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stanza(body: &str) -> Result<Stanza, String> {
        let text = format!("cluster.local {{\n kubernetai {{\n{body}\n }}\n}}\n");
        let blocks = crate::corefile::parse(&text, Path::new("Corefile")).map_err(|e| e.to_string())?;
        parse(&blocks[0].directives[0], &["cluster.local.".to_string()]).map_err(|e| e.to_string())
    }

    #[test]
    fn every_option_of_the_kubernetes_plugin_parses() {
        let s = stanza(
            "endpoint_pod_names\npods verified\nnamespaces a b\nendpoint https://k8s:6443\ntls c k ca\nlabels env in (prod)\nfallthrough in-addr.arpa\nttl 30\nnoendpoints\nignore empty_service\nkubeconfig /kc ctx\nmulticluster cluster.local\nstartup_timeout 1m30s\napiserver_qps 20.5\napiserver_burst 30\napiserver_max_inflight 4",
        )
        .expect("parses");
        assert_eq!(s.guest.pods, wit::PodMode::Verified);
        assert_eq!(s.guest.namespaces, ["a", "b"]);
        assert_eq!(s.guest.labels.as_deref(), Some("env in (prod)"));
        assert_eq!(s.guest.fallthrough, Some(vec!["in-addr.arpa.".to_string()]));
        assert_eq!((s.guest.ttl, s.guest.noendpoints, s.guest.ignore_empty_service), (30, true, true));
        assert_eq!(s.startup_timeout, Duration::from_secs(90));
        let Source::Api(api) = s.source else { panic!("expected the API source") };
        assert_eq!((api.qps, api.burst, api.max_inflight), (Some(20.5), Some(30), Some(4)));
        assert_eq!(api.kubeconfig, Some(("/kc".into(), Some("ctx".into()))));
    }

    #[test]
    fn bad_options_name_the_line_and_the_reason() {
        let cases = [
            ("ttl 3601", "Corefile:3 - kubernetai: ttl must be in range [0, 3600]: 3601"),
            ("ttl x", "Corefile:3 - kubernetai: ttl \"x\" is not a number"),
            (
                "pods sometimes",
                "Corefile:3 - kubernetai: wrong value for pods: sometimes, must be one of: disabled, verified, insecure",
            ),
            ("colour blue", "Corefile:3 - kubernetai: unknown property 'colour'"),
            ("ignore everything", "Corefile:3 - kubernetai: unable to parse ignore value: 'everything'"),
            ("tls a b", "Corefile:3 - kubernetai: tls takes CERT KEY CACERT, got 2"),
            (
                "labels a in b",
                "Corefile:3 - kubernetai: unable to parse labels selector \"a in b\": expected '(' after \"a in b\"",
            ),
            (
                "namespaces a\nnamespace_labels x=y",
                "Corefile:2 - kubernetai: namespaces and namespace_labels cannot both be set",
            ),
            (
                "multicluster other.local",
                "Corefile:2 - kubernetai: is not authoritative for the multicluster zone other.local. (authoritative zones: [\"cluster.local.\"])",
            ),
            ("zonal\nnoendpoints", "Corefile:2 - kubernetai: zonal requires the endpoint cache; remove noendpoints"),
            ("startup_timeout soon", "Corefile:3 - kubernetai: failed to parse startup_timeout: \"soon\""),
            ("apiserver_burst -1", "Corefile:3 - kubernetai: apiserver_burst must be >= 0"),
            ("endpoint k8s:6443", "Corefile:3 - kubernetai: endpoint \"k8s:6443\" must be an http:// or https:// URL"),
            (
                "manifests a.json\nendpoint http://x",
                "Corefile:2 - kubernetai: manifests cannot be combined with endpoint, tls, kubeconfig or apiserver options",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(stanza(body).expect_err(body), want, "{body}");
        }
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
    }
}
