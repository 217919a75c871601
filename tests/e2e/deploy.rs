//! The manifests in deploy/, checked offline against the Kubernetes API types (k8s-openapi): every
//! document is a known kind and every field exists in its schema with the right type (typos are
//! unknown fields); then what the deployment promises: probes on the Corefile's health and
//! ready ports, DNS on 53 over UDP and TCP, list/watch on exactly the resources watched.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;

use crate::harness::{self, Scratch};

/// `doc` as `T`, and the paths of the fields `T` does not have.
fn typed<T: DeserializeOwned>(doc: &serde_yaml::Value) -> Result<(T, Vec<String>), String> {
    let mut unknown = Vec::new();
    let value: T =
        serde_ignored::deserialize(doc.clone(), |path| unknown.push(path.to_string())).map_err(|e| e.to_string())?;
    Ok((value, unknown))
}

/// Deserializes `doc` as `T`, failing on any field the type does not have.
fn strict<T: DeserializeOwned>(doc: &serde_yaml::Value, file: &str) -> T {
    let (value, unknown) = typed::<T>(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(unknown.is_empty(), "{file}: fields the Kubernetes API does not have: {unknown:?}");
    value
}

#[test]
fn the_schema_check_catches_typos_and_wrong_types() {
    let doc = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).expect("yaml");
    let typo = doc(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n  selector: {}\n  template: {}\n",
    );
    let unknown = typed::<Deployment>(&typo).expect("parses").1;
    assert!(unknown.len() == 1 && unknown[0].ends_with(".replica"), "{unknown:?}");
    let mistyped =
        doc("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: fifty-three\n");
    assert!(typed::<Service>(&mistyped).expect_err("port is a number").contains("invalid type"));
}

#[derive(Default)]
struct Manifests {
    kinds: Vec<String>,
    corefiles: Vec<String>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    roles: Vec<ClusterRole>,
}

fn load(file: &str) -> Manifests {
    let text = std::fs::read_to_string(harness::root().join("deploy").join(file)).expect("manifest");
    parse(&text, file)
}

fn parse(text: &str, file: &str) -> Manifests {
    let mut m = Manifests::default();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let doc = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "ServiceAccount" => drop(strict::<ServiceAccount>(&doc, file)),
            "ClusterRole" => m.roles.push(strict(&doc, file)),
            "ClusterRoleBinding" => drop(strict::<ClusterRoleBinding>(&doc, file)),
            "ConfigMap" => {
                let cm: ConfigMap = strict(&doc, file);
                m.corefiles.extend(cm.data.unwrap_or_default().get("Corefile").cloned());
            }
            "Secret" => drop(strict::<Secret>(&doc, file)),
            "Deployment" => m.deployments.push(strict(&doc, file)),
            "Service" => m.services.push(strict(&doc, file)),
            "PodDisruptionBudget" => drop(strict::<PodDisruptionBudget>(&doc, file)),
            "HorizontalPodAutoscaler" => drop(strict::<HorizontalPodAutoscaler>(&doc, file)),
            "NetworkPolicy" => drop(strict::<NetworkPolicy>(&doc, file)),
            other => panic!("{file}: unexpected kind {other:?}"),
        }
        m.kinds.push(kind);
    }
    m
}

use serde::Deserialize;

#[test]
fn deploy_manifests_match_the_kubernetes_schema_and_the_corefile() {
    let main = load("kubernetai.yaml");
    let want: BTreeSet<&str> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]
    .into();
    assert_eq!(main.kinds.iter().map(String::as_str).collect::<BTreeSet<_>>(), want);
    let remote = load("remote-cluster.yaml");
    assert_eq!(
        remote.kinds,
        [
            "Secret",
            "ConfigMap",
            "ClusterRole",
            "ClusterRoleBinding",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Secret"
        ]
    );
    // The two-cluster clusterset: each member reads ServiceExports, in the cluster it watches.
    let serviceexports = |role: &ClusterRole| {
        role.rules.clone().unwrap_or_default().iter().any(|r| {
            r.verbs == ["list", "watch"]
                && r.api_groups.as_deref() == Some(&["multicluster.x-k8s.io".to_string()][..])
                && r.resources.as_deref() == Some(&["serviceexports".to_string()][..])
        })
    };
    assert!(remote.roles.len() == 2 && remote.roles.iter().all(serviceexports));
    let corefile = &remote.corefiles[0];
    assert!(corefile.contains("clusterset clusterset.local local") && corefile.contains("clusterset clusterset.local dc1"));

    // The probes reach the Corefile's health and ready endpoints.
    let corefile = &main.corefiles[0];
    assert!(corefile.contains("health {") && corefile.contains("ready\n") && corefile.contains("prometheus :9153"));
    let pod = main.deployments[0].spec.template.spec.as_ref().expect("pod spec");
    let c = &pod.containers[0];
    let port = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .map(|h| (h.path.clone().unwrap_or_default(), format!("{:?}", h.port)))
    };
    assert_eq!(port(&c.liveness_probe), Some(("/health".into(), "Int(8080)".into())));
    assert_eq!(port(&c.readiness_probe), Some(("/ready".into(), "Int(8181)".into())));
    // DNS on 53 over both transports.
    let ports: BTreeSet<(i32, String)> = main.services[0]
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.port, p.protocol.unwrap_or_default()))
        .collect();
    assert!(ports.contains(&(53, "UDP".into())) && ports.contains(&(53, "TCP".into())), "{ports:?}");
    // It takes over cluster DNS: CoreDNS's Service name, label and fixed address, selecting
    // these pods, which carry the label dashboards and NodeLocal DNSCache select.
    let svc = &main.services[0];
    assert_eq!(
        (svc.metadata.name.as_deref(), svc.metadata.namespace.as_deref()),
        (Some("kube-dns"), Some("kube-system"))
    );
    let label = |labels: &Option<std::collections::BTreeMap<String, String>>| {
        labels.as_ref().and_then(|l| l.get("k8s-app")).cloned().unwrap_or_default()
    };
    assert_eq!(label(&svc.metadata.labels), "kube-dns");
    let spec = svc.spec.as_ref().expect("service spec");
    assert!(spec.cluster_ip.as_deref().is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()), "a fixed clusterIP");
    let pod_labels = main.deployments[0].spec.template.metadata.as_ref().and_then(|m| m.labels.clone());
    assert_eq!(label(&pod_labels), "kube-dns");
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.as_ref().and_then(|l| l.get(k)) == Some(v))
    );
    // Hardening and placement as CoreDNS's own manifests.
    let seccomp = pod.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()).map(|p| p.type_.clone());
    assert_eq!(seccomp.as_deref(), Some("RuntimeDefault"));
    assert_eq!(pod.node_selector.as_ref().and_then(|n| n.get("kubernetes.io/os")).map(String::as_str), Some("linux"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-cluster-critical"));
    // The memory limit covers the README's measured peak of a module swap on the large cluster.
    let limit = c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).map(|q| q.0.clone());
    let mib: u64 =
        limit.as_deref().and_then(|l| l.strip_suffix("Mi")).and_then(|n| n.parse().ok()).expect("a limit in Mi");
    assert!(mib * 1024 * 1024 >= 316_000_000, "{mib}Mi is below the measured swap peak");
    // list and watch on what the stanzas watch (pods verified, endpoints on, no multicluster).
    let mut granted = BTreeSet::new();
    for rule in &main.roles[0].rules.clone().unwrap_or_default() {
        assert_eq!(rule.verbs, ["list", "watch"], "read-only");
        for group in rule.api_groups.clone().unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                granted.insert(format!("{group}/{resource}"));
            }
        }
    }
    let watched: BTreeSet<String> =
        ["/namespaces", "/services", "/pods", "discovery.k8s.io/endpointslices"].map(String::from).into();
    assert_eq!(granted, watched);
}

/// Both Corefiles the manifests carry start, as written, except for what needs a cluster: the
/// API connection (a fake API server), port 53 and the HTTP ports (free ones here).
#[test]
fn the_deployed_corefiles_start() {
    let api = crate::apiserver::FakeApi::start();
    let dir = Scratch::new("deploy");
    let upstream: std::net::SocketAddr = ([127, 0, 0, 1], 53).into();
    for file in ["kubernetai.yaml", "remote-cluster.yaml"] {
        let corefile = crate::peers::runnable(&load(file).corefiles.remove(0), &dir, &api.url(), &api.url(), upstream);
        let path = dir.write("Corefile", &corefile);
        let server = harness::Server::start(&path);
        let ready = crate::peers::url_in(&server.wait_for("plugin/ready: serving"));
        assert_eq!(crate::peers::curl(&ready), (200, "OK".to_string()), "{file}");
    }
}

/// deploy/fleet, as `kubectl kustomize` builds it: the schema holds, the module comes from a
/// registry and is checked against a key, every file a flag names is in a mounted volume of the
/// right kind, and the admin endpoint is on loopback behind a token (the base's is off).
#[test]
fn the_fleet_overlay_pulls_a_signed_module_and_guards_the_admin_endpoint() {
    let base = load("kubernetai.yaml");
    let args = |m: &Manifests| {
        let pod = m.deployments[0].spec.template.spec.clone().expect("pod spec");
        (pod.containers[0].args.clone().unwrap_or_default(), pod)
    };
    let flag =
        |args: &Vec<String>, name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned());
    assert_eq!(flag(&args(&base).0, "-admin").as_deref(), Some("none"), "the base has no admin endpoint");

    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(harness::root().join("deploy/fleet"))
        .output()
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fleet = parse(&String::from_utf8_lossy(&out.stdout), "deploy/fleet");
    assert!(fleet.kinds.iter().any(|k| k == "NetworkPolicy"), "{:?}", fleet.kinds);
    let (args, pod) = args(&fleet);
    assert!(flag(&args, "-module").is_some_and(|m| m.starts_with("oci://")), "{args:?}");
    assert!(flag(&args, "-admin").is_some_and(|a| a.starts_with("127.0.0.1:")), "{args:?}");
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    let volumes = pod.volumes.clone().unwrap_or_default();
    // The volume a file lives in: (kind, name of the ConfigMap or Secret).
    let volume_of = |file: &str| {
        let mount = mounts.iter().find(|m| file.starts_with(&format!("{}/", m.mount_path)))?;
        let v = volumes.iter().find(|v| v.name == mount.name)?;
        match (&v.secret, &v.config_map) {
            (Some(s), _) => Some(("Secret", s.secret_name.clone().unwrap_or_default())),
            (_, Some(c)) => Some(("ConfigMap", c.name.clone())),
            _ => Some(("other", String::new())),
        }
    };
    let token = flag(&args, "-admin.token").expect("a token");
    assert_eq!(volume_of(&token).map(|v| v.0), Some("Secret"), "{token}");
    let key = flag(&args, "-module.pubkey").expect("a key");
    assert_eq!(volume_of(&key).map(|v| v.0), Some("ConfigMap"), "{key}");
    let pull = flag(&args, "-module.pull-secret").expect("pull credentials");
    let (kind, name) = volume_of(&pull).expect("mounted");
    assert_eq!(kind, "Secret");
    let image_pull: Vec<String> =
        pod.image_pull_secrets.clone().unwrap_or_default().into_iter().map(|r| r.name).collect();
    assert!(image_pull.contains(&name), "the kubelet pulls with the same Secret: {image_pull:?}");
    assert!(pull.ends_with("/.dockerconfigjson"), "the key a docker-registry Secret has: {pull}");
    let cache = flag(&args, "-module.cache").expect("a cache");
    assert!(mounts.iter().any(|m| m.mount_path == cache), "pulled modules kept in a volume: {cache}");
}
