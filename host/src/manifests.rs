//! The `manifests FILE…` source (a kubernetai extension): a cluster's objects read from the JSON
//! that `kubectl get namespaces,services,endpointslices,pods -A -o json` prints, turned into the
//! same watch events an API server's list and watch would produce. Files are polled; a change
//! becomes the difference as apply/delete events. A file that stops parsing is logged and
//! ignored until it parses again: the last good objects keep answering.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::module::wit::{Event, Kind, Object};
use crate::objects::{self, Table};

/// How often files are checked for changes: small local files, cheap to stat.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a manifest file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: not JSON: {source}")]
    Json { file: String, source: serde_json::Error },
    #[error("{file}: expected a JSON object (a List or a single object)")]
    Shape { file: String },
}

/// Every usable object of a set of files, pruned, as JSON text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objects(Table);

pub fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "Namespace" => Kind::Namespace,
        "Service" => Kind::Service,
        "EndpointSlice" => Kind::EndpointSlice,
        "Pod" => Kind::Pod,
        "ServiceImport" => Kind::ServiceImport,
        _ => return None,
    })
}

/// Reads and merges `files`. Items of kinds DNS does not use are skipped; items that are not
/// objects are logged and skipped.
pub fn load(files: &[PathBuf]) -> Result<Objects, ManifestError> {
    let mut objects = Objects::default();
    for file in files {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|source| ManifestError::Read { file: name.clone(), source })?;
        parse(&name, &text, &mut objects)?;
    }
    Ok(objects)
}

/// Adds the objects of one manifest's `text` (an object or a List), read from `name`.
pub fn parse(name: &str, text: &str, objects: &mut Objects) -> Result<(), ManifestError> {
    // A List's items are kept as slices of the text and decoded one at a time: a whole
    // cluster as one JSON tree would take many times the file's size, and the allocator
    // keeps what it once took.
    #[derive(serde::Deserialize)]
    struct Shape<'a> {
        #[serde(borrow, default)]
        items: Option<&'a serde_json::value::RawValue>,
    }
    // Text that is no JSON is a JSON error; JSON of the wrong shape is a shape error.
    let error = |source: serde_json::Error| {
        if source.is_data() {
            ManifestError::Shape { file: name.to_string() }
        } else {
            ManifestError::Json { file: name.to_string(), source }
        }
    };
    let shape: Shape = serde_json::from_str(text).map_err(error)?;
    let raw_items: Vec<&serde_json::value::RawValue> = match shape.items {
        Some(list) => serde_json::from_str(list.get()).map_err(error)?,
        None => vec![serde_json::from_str(text).map_err(error)?],
    };
    for (i, raw) in raw_items.into_iter().enumerate() {
        let item: Value = serde_json::from_str(raw.get()).map_err(error)?;
        if !item.is_object() {
            return Err(ManifestError::Shape { file: name.to_string() });
        }
        let Some(kind) = item.get("kind").and_then(Value::as_str).and_then(kind_of) else {
            if !item.get("kind").is_some_and(Value::is_string) {
                eprintln!("[WARNING] plugin/kubernetai: {name}: items[{i}] has no kind; skipped");
            }
            continue;
        };
        let meta = item.get("metadata");
        let text = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str).unwrap_or_default().to_string();
        let key = (objects::rank(kind), text("namespace"), text("name"));
        objects.0.insert(key, (kind, prune(kind, item).to_string()));
    }
    Ok(())
}

/// Drops what DNS never reads, so neither the host nor the guest holds it.
pub fn prune(kind: Kind, mut item: Value) -> Value {
    if let Some(meta) = item.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "annotations",
            "ownerReferences",
            "generateName",
            "creationTimestamp",
            "uid",
            "resourceVersion",
        ] {
            meta.remove(field);
        }
    }
    if kind == Kind::Pod
        && let Some(o) = item.as_object_mut()
    {
        o.remove("spec");
        if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
            status.retain(|k, _| k == "podIP" || k == "podIPs" || k == "phase");
        }
    }
    item
}

impl Objects {
    /// The events of a first list: a relist of every kind, then synced.
    pub fn initial_events(&self) -> Vec<Event> {
        objects::relist_events(&self.0, true)
    }

    /// The events that turn `self` into `next`.
    pub fn diff(&self, next: &Objects) -> Vec<Event> {
        let mut events = Vec::new();
        for (key, (kind, json)) in &next.0 {
            if self.0.get(key).is_none_or(|(_, old)| old != json) {
                events.push(Event::Apply(Object { kind: *kind, json: json.clone() }));
            }
        }
        for (key, (kind, json)) in &self.0 {
            if !next.0.contains_key(key) {
                events.push(Event::Delete(Object { kind: *kind, json: json.clone() }));
            }
        }
        events
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The modification times of `files`: a change in any means a reload.
pub fn stamp(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f: &PathBuf| std::fs::metadata(Path::new(f)).and_then(|m| m.modified()).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn svc(name: &str, ip: &str) -> String {
        format!(
            r#"{{"kind":"Service","metadata":{{"name":"{name}","namespace":"a","managedFields":[{{}}]}},"spec":{{"clusterIP":"{ip}"}}}}"#
        )
    }

    #[test]
    fn lists_load_pruned_and_diff_into_events() {
        let dir = std::env::temp_dir().join(format!("kubernetai-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = write(
            &dir,
            "c.json",
            &format!(
                r#"{{"kind":"List","items":[{},{},{{"kind":"Deployment","metadata":{{"name":"d"}}}}]}}"#,
                svc("x", "10.0.0.1"),
                svc("y", "10.0.0.2")
            ),
        );
        let first = load(std::slice::from_ref(&f)).expect("loads");
        assert_eq!(first.len(), 2);
        assert!(!first.0.values().any(|(_, j)| j.contains("managedFields")));
        let initial = first.initial_events();
        assert!(matches!(initial.last(), Some(Event::Synced(true))));

        write(
            &dir,
            "c.json",
            &format!(r#"{{"kind":"List","items":[{},{}]}}"#, svc("x", "10.0.0.9"), svc("z", "10.0.0.3")),
        );
        let next = load(std::slice::from_ref(&f)).expect("loads");
        let diff = first.diff(&next);
        let summary: Vec<String> = diff
            .iter()
            .map(|e| match e {
                Event::Apply(o) => format!("apply {}", &o.json[o.json.find("name").unwrap_or(0)..][7..8]),
                Event::Delete(o) => format!("delete {}", &o.json[o.json.find("name").unwrap_or(0)..][7..8]),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(summary, ["apply x", "apply z", "delete y"]);

        write(&dir, "c.json", "{ not json");
        assert!(load(std::slice::from_ref(&f)).expect_err("bad json").to_string().contains("not JSON"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
