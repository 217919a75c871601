//! The autopath search path: the namespace search list of the pod a query comes from, as
//! Kubernetes writes it into every pod's resolv.conf, so the server can walk it for the client.

use std::net::IpAddr;

use crate::config::PodMode;
use crate::handler::Plugin;

impl Plugin {
    /// The search list of the pod at `client` for a query named `qname`: from the first stanza
    /// whose zones hold the name and which watches pods (`pods verified`) and knows the client.
    pub fn search_path(&self, qname: &str, client: IpAddr) -> Option<Vec<String>> {
        let mut qname = qname.to_ascii_lowercase();
        if !qname.ends_with('.') {
            qname.push('.');
        }
        self.stanzas.iter().find_map(|(stanza, snap)| {
            let zone = stanza.zone_of(&qname)?;
            if stanza.pods != PodMode::Verified {
                return None;
            }
            let pod = snap.pods_with_ip(&client).find(|p| !p.terminating)?;
            let ns = pod.namespace;
            let zone = if zone == "." { "" } else { zone };
            Some(vec![
                format!("{ns}.svc.{zone}"),
                format!("svc.{zone}"),
                if zone.is_empty() { ".".into() } else { zone.into() },
            ])
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BlockFacts, PodMode, Stanza};
    use crate::handler::Plugin;
    use crate::snapshot::{Event, Kind};

    #[test]
    fn the_search_path_comes_from_the_stanza_that_knows_the_client_pod() {
        let mut other = Stanza::new(&["cluster.local."]);
        other.pods = PodMode::Verified;
        let mut local = Stanza::new(&["cluster.local."]);
        local.pods = PodMode::Verified;
        let insecure = Stanza::new(&["example.org."]);
        let mut p = Plugin::new(BlockFacts { local_ips: vec![] }, vec![other, local, insecure]).unwrap();
        let pod = r#"{"metadata":{"namespace":"shop","name":"cart"},"status":{"podIP":"10.2.0.7","podIPs":[{"ip":"10.2.0.7"}]}}"#;
        p.apply(1, 1, vec![Event::Apply(Kind::Pod, pod.into()), Event::Synced(true)]).unwrap();
        let client = "10.2.0.7".parse().unwrap();
        assert_eq!(
            p.search_path("web.shop.svc.Cluster.Local", client),
            Some(vec!["shop.svc.cluster.local.".to_string(), "svc.cluster.local.".into(), "cluster.local.".into()])
        );
        assert_eq!(p.search_path("web.example.org.", client), None, "pods not verified there");
        assert_eq!(p.search_path("web.shop.svc.cluster.local.", "10.2.0.8".parse().unwrap()), None, "unknown client");
    }
}
