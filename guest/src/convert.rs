//! The conversions between the contract's types (`wit/kubernetai.wit`) and this library's,
//! written once for both sides that need them: the component's glue (wit-bindgen's types) and
//! a host linking the library natively (wasmtime's types of the same contract). The two sets
//! of generated types have the same names and fields but are distinct types, so the
//! conversions are a macro, expanded where a module has the contract's types in scope as `wit`:
//! `kubernetai_guest::wit_conversions!(wit);`.

/// Defines, in the calling module, `kind`, `wit_kind`, `server`, `stanza`, `external_zone`,
/// `clusterset_members`, `event`, `query`,
/// `outcome` and `rejected` between the contract's types (the module `$wit`) and the library's.
#[macro_export]
macro_rules! wit_conversions {
    ($wit:ident) => {
        fn kind(k: $wit::Kind) -> $crate::snapshot::Kind {
            match k {
                $wit::Kind::Namespace => $crate::snapshot::Kind::Namespace,
                $wit::Kind::Service => $crate::snapshot::Kind::Service,
                $wit::Kind::EndpointSlice => $crate::snapshot::Kind::EndpointSlice,
                $wit::Kind::Pod => $crate::snapshot::Kind::Pod,
                $wit::Kind::ServiceImport => $crate::snapshot::Kind::ServiceImport,
                $wit::Kind::ServiceExport => $crate::snapshot::Kind::ServiceExport,
            }
        }

        fn wit_kind(k: $crate::snapshot::Kind) -> $wit::Kind {
            match k {
                $crate::snapshot::Kind::Namespace => $wit::Kind::Namespace,
                $crate::snapshot::Kind::Service => $wit::Kind::Service,
                $crate::snapshot::Kind::EndpointSlice => $wit::Kind::EndpointSlice,
                $crate::snapshot::Kind::Pod => $wit::Kind::Pod,
                $crate::snapshot::Kind::ServiceImport => $wit::Kind::ServiceImport,
                $crate::snapshot::Kind::ServiceExport => $wit::Kind::ServiceExport,
            }
        }

        /// The server's settings: its local addresses read as addresses.
        fn server(s: &$wit::Server) -> Result<$crate::config::BlockFacts, $crate::config::ConfigError> {
            let local_ips = s
                .local_ips
                .iter()
                .map(|ip| ip.parse().map_err(|_| $crate::config::ConfigError::LocalIp(ip.clone())))
                .collect::<Result<_, _>>()?;
            Ok($crate::config::BlockFacts { local_ips })
        }

        /// Stanza `i`: its selectors parsed, so a bad one is refused at configure time.
        fn stanza(i: usize, s: &$wit::Stanza) -> Result<$crate::config::Stanza, $crate::config::ConfigError> {
            Ok($crate::config::Stanza {
                zones: s.zones.clone(),
                namespaces: s.namespaces.clone(),
                namespace_labels: $crate::config::selector(i, "namespace_labels", s.namespace_labels.as_deref())?,
                labels: $crate::config::selector(i, "labels", s.labels.as_deref())?,
                pods: match s.pods {
                    $wit::PodMode::Disabled => $crate::config::PodMode::Disabled,
                    $wit::PodMode::Insecure => $crate::config::PodMode::Insecure,
                    $wit::PodMode::Verified => $crate::config::PodMode::Verified,
                },
                endpoint_pod_names: s.endpoint_pod_names,
                ttl: s.ttl,
                noendpoints: s.noendpoints,
                fallthrough: s.fallthrough.clone(),
                ignore_empty_service: s.ignore_empty_service,
                multicluster: s.multicluster.clone(),
                zonal: s.zonal,
            })
        }

        /// A `k8s_external` zone.
        fn external_zone(e: &$wit::ExternalZone) -> $crate::config::ExternalZone {
            $crate::config::ExternalZone {
                zones: e.zones.clone(),
                apex: e.apex.clone(),
                ttl: e.ttl,
                headless: e.headless,
                fallthrough: e.fallthrough.clone(),
            }
        }

        /// The block's clusterset members (contract 0.5).
        fn clusterset_members(members: &[$wit::ClustersetMember]) -> Vec<$crate::clusterset::Member> {
            members
                .iter()
                .map(|m| $crate::clusterset::Member {
                    stanza: m.stanza as usize,
                    zone: m.zone.clone(),
                    cluster_id: m.cluster_id.clone(),
                    export_all: m.export_all,
                })
                .collect()
        }

        /// A watch event, its object's text moved, not copied.
        fn event(e: $wit::Event) -> $crate::snapshot::Event {
            match e {
                $wit::Event::Apply(o) => $crate::snapshot::Event::Apply(kind(o.kind), o.json),
                $wit::Event::Delete(o) => $crate::snapshot::Event::Delete(kind(o.kind), o.json),
                $wit::Event::RelistStart(k) => $crate::snapshot::Event::RelistStart(kind(k)),
                $wit::Event::RelistDone(k) => $crate::snapshot::Event::RelistDone(kind(k)),
                $wit::Event::Synced(s) => $crate::snapshot::Event::Synced(s),
            }
        }

        /// The query in the library's terms.
        fn query(q: &$wit::Query) -> $crate::handler::Query<'_> {
            $crate::handler::Query {
                packet: &q.packet,
                client: &q.client,
                transport: match q.transport {
                    $wit::Transport::Udp => $crate::handler::Transport::Udp,
                    $wit::Transport::Tcp => $crate::handler::Transport::Tcp,
                },
                max_size: q.max_size,
            }
        }

        fn outcome(o: $crate::handler::Outcome) -> $wit::Outcome {
            match o {
                $crate::handler::Outcome::Answer(bytes) => $wit::Outcome::Answer(bytes),
                $crate::handler::Outcome::Chase { response, target, qtype } => {
                    $wit::Outcome::Chase($wit::Chase { response, target, qtype })
                }
                $crate::handler::Outcome::Next => $wit::Outcome::Next,
                $crate::handler::Outcome::Drop => $wit::Outcome::Drop,
            }
        }

        /// What `apply` refused; an error of the call itself is one refusal with no name.
        fn rejected<E: std::fmt::Display>(r: Result<Vec<$crate::snapshot::Rejected>, E>) -> Vec<$wit::Rejected> {
            match r {
                Ok(rejected) => rejected
                    .into_iter()
                    .map(|r| $wit::Rejected { kind: wit_kind(r.kind), name: r.name, reason: r.reason })
                    .collect(),
                Err(e) => {
                    vec![$wit::Rejected { kind: $wit::Kind::Namespace, name: String::new(), reason: e.to_string() }]
                }
            }
        }
    };
}
