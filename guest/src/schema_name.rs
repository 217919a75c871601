//! A query name read as the Kubernetes DNS schema: which service, namespace, endpoint, port and
//! protocol it asks for. The shapes, relative to a stanza zone:
//!
//! ```text
//! _port._proto.service.namespace.svc|pod     (SRV names)
//! endpoint.service.namespace.svc|pod
//! endpoint.cluster.service.namespace.svc     (multicluster zones)
//! topozone.pin|prefer._zone.service.namespace.svc  (with `zonal`)
//! service.namespace.svc|pod
//! namespace.svc|pod,  svc|pod,  (apex)
//! ```

/// Whether the name is under `svc` or `pod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    Svc,
    Pod,
}

/// A parsed name; empty strings mean "not given". Labels are as queried (lowercased by caller).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaName<'a> {
    /// None for the apex, `svc.<zone>` and `pod.<zone>`: names that exist but hold nothing.
    pub branch: Option<Branch>,
    pub namespace: &'a str,
    pub service: &'a str,
    pub endpoint: &'a str,
    pub cluster: &'a str,
    pub port: &'a str,
    pub protocol: &'a str,
    /// Topology zone of a zonal name, and whether it is `prefer` (else `pin`).
    pub topology_zone: Option<String>,
    pub prefer: bool,
}

/// The name has no meaning in the schema: answered as a name error.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidName;

/// Parses the labels below the zone (see [`crate::name::labels_below`]).
pub fn parse<'a>(labels: &[&'a str], multicluster: bool, zonal: bool) -> Result<SchemaName<'a>, InvalidName> {
    let mut r = SchemaName::default();
    let Some((&last, rest)) = labels.split_last() else {
        return Ok(r);
    };
    let branch = match last {
        "svc" => Branch::Svc,
        "pod" => Branch::Pod,
        _ => return Err(InvalidName),
    };
    if rest.is_empty() {
        return Ok(r);
    }
    r.branch = Some(branch);
    let n = rest.len();
    r.namespace = rest[n - 1];
    if n == 1 {
        return Ok(r);
    }
    r.service = rest[n - 2];
    let left = &rest[..n - 2];
    match left {
        [] => {}
        [endpoint] => r.endpoint = endpoint,
        [a, b] => {
            if !multicluster || a.starts_with('_') || b.starts_with('_') {
                r.port = a.strip_prefix('_').unwrap_or(a);
                r.protocol = b.strip_prefix('_').unwrap_or(b);
            } else {
                r.endpoint = a;
                r.cluster = b;
            }
        }
        [topo @ .., directive, anchor] => {
            if !zonal || multicluster || *anchor != "_zone" || branch != Branch::Svc {
                return Err(InvalidName);
            }
            r.prefer = match *directive {
                "pin" => false,
                "prefer" => true,
                _ => return Err(InvalidName),
            };
            if topo.is_empty() {
                return Err(InvalidName);
            }
            r.topology_zone = Some(topo.join("."));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_the_schema_says() {
        // (labels below zone, multicluster, zonal) → "port.protocol.endpoint.cluster.service.namespace" or None for invalid
        let cases: &[(&str, bool, bool, Option<&str>)] = &[
            ("svc", false, false, Some(".....")),
            ("ns.svc", false, false, Some(".....ns")),
            ("web.ns.svc", false, false, Some("....web.ns")),
            ("ep.web.ns.svc", false, false, Some("..ep..web.ns")),
            ("_http._tcp.web.ns.svc", false, false, Some("http.tcp...web.ns")),
            ("http.tcp.web.ns.svc", false, false, Some("http.tcp...web.ns")),
            ("ep.c1.web.ns.svc", true, false, Some("..ep.c1.web.ns")),
            ("_http.tcp.web.ns.svc", true, false, Some("http.tcp...web.ns")),
            ("a.b.c.web.ns.svc", false, false, None),
            ("web.ns.other", false, false, None),
            ("us-east-1a.pin._zone.web.ns.svc", false, true, Some("....web.ns")),
            ("us-east-1a.pin._zone.web.ns.svc", false, false, None),
            ("us-east-1a.near._zone.web.ns.svc", false, true, None),
        ];
        for (name, mc, zonal, want) in cases {
            let labels: Vec<&str> = name.split('.').collect();
            let got = parse(&labels, *mc, *zonal).ok().map(|r| {
                format!("{}.{}.{}.{}.{}.{}", r.port, r.protocol, r.endpoint, r.cluster, r.service, r.namespace)
            });
            assert_eq!(got.as_deref(), *want, "{name}");
        }
        let z = parse(&["a", "b", "prefer", "_zone", "web", "ns", "svc"], false, true).unwrap();
        assert_eq!((z.topology_zone.as_deref(), z.prefer), (Some("a.b"), true));
    }
}
