//! The `manifests FILE…` source (a kubernetai extension): a cluster's objects read from the JSON
//! that `kubectl get namespaces,services,endpointslices,pods -A -o json` prints, turned into the
//! same watch events an API server's list and watch would produce. Files are polled; a change
//! becomes the difference as apply/delete events. A file that stops parsing is logged and
//! ignored until it parses again: the last good objects keep answering.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::objects::{self, Table};
use crate::cluster::prune;
use crate::contract::wit::{Event, Kind};
use crate::file_stamp::FileStamp;

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

/// The kind an item's `kind` field names, if the host knows it.
pub fn kind_of(name: &str) -> Option<Kind> {
    objects::KINDS.into_iter().find(|k| objects::kind_name(*k) == name)
}

/// Reads and merges `files`, pruned for a stanza that `reads`. Items of kinds DNS does not use
/// are skipped; items that are not objects are logged and skipped.
pub fn load(files: &[PathBuf], reads: prune::Reads) -> Result<Objects, ManifestError> {
    let mut objects = Objects::default();
    for file in files {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|source| ManifestError::Read { file: name.clone(), source })?;
        parse(&name, &text, reads, &mut objects)?;
    }
    Ok(objects)
}

/// Adds the objects of one manifest's `text` (an object or a List), read from `name`, pruned for a
/// stanza that `reads`.
pub fn parse(name: &str, text: &str, reads: prune::Reads, objects: &mut Objects) -> Result<(), ManifestError> {
    // Text that is no JSON is a JSON error; JSON of the wrong shape is a shape error.
    let error = |source: serde_json::Error| {
        if source.is_data() {
            ManifestError::Shape { file: name.to_string() }
        } else {
            ManifestError::Json { file: name.to_string(), source }
        }
    };
    let mut index = 0;
    let mut add = |object: prune::Object<'_>| -> Result<(), serde_json::Error> {
        let i = index;
        index += 1;
        let Some(kind) = object.kind().as_deref().and_then(kind_of) else {
            if object.kind().is_none_or(|k| k.is_empty()) {
                println!("[WARNING] plugin/kubernetai: {name}: items[{i}] has no kind; skipped");
            }
            return Ok(());
        };
        let pruned = object.prune(kind, reads);
        objects.0.insert(kind, &pruned.namespace, &pruned.name, pruned.json);
        Ok(())
    };
    // A List's items are pruned one at a time as the text is read, in one pass: a whole cluster
    // as one JSON tree would take many times the file's size, and the allocator keeps what it
    // once took.
    let mut de = serde_json::Deserializer::from_str(text);
    let listed = serde::Deserializer::deserialize_any(&mut de, ListItems(&mut add)).map_err(error)?;
    de.end().map_err(error)?;
    if !listed {
        let object = prune::read(text).ok_or_else(|| error(serde::de::Error::custom("an item is no object")))?;
        add(object).map_err(error)?;
    }
    Ok(())
}

/// Visits the top level of a manifest: each element of its `items` goes to the callback, read in
/// place; the value says whether there was an `items` list at all.
struct ListItems<'f, F>(&'f mut F);

impl<'de, F: FnMut(prune::Object<'de>) -> Result<(), serde_json::Error>> serde::de::Visitor<'de> for ListItems<'_, F> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object (a List or a single object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut listed = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" && !listed {
                listed = map.next_value_seed(Each(&mut *self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(listed)
    }
}

/// The elements of `items`, each handed on as an object read in place; `null` is no list.
struct Each<'f, F>(&'f mut F);

impl<'de, F: FnMut(prune::Object<'de>) -> Result<(), serde_json::Error>> serde::de::DeserializeSeed<'de>
    for Each<'_, F>
{
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(prune::Object<'de>) -> Result<(), serde_json::Error>> serde::de::Visitor<'de> for Each<'_, F> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(object) = seq.next_element::<prune::Object<'de>>()? {
            (self.0)(object).map_err(serde::de::Error::custom)?;
        }
        Ok(true)
    }
}

impl Objects {
    /// The events of a first list: a relist of every kind, then synced (the objects copied).
    pub fn initial_events(&self) -> Vec<Event> {
        objects::relist_events(&[&self.0], true).collect()
    }

    /// The events of a first list, taking the objects.
    pub fn into_initial(self) -> Vec<objects::Change> {
        objects::into_relist_events(self.0, true)
    }

    /// The objects, for the plugin to diff against the ones it holds.
    pub fn into_table(self) -> Table {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How `files` look now: a change in any means a reload.
pub fn stamp(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    files.iter().map(|f| FileStamp::of(f)).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        let first = load(std::slice::from_ref(&f), prune::Reads::ALL).expect("loads");
        assert_eq!(first.len(), 2);
        assert!(!first.0.of_kind(Kind::Service).any(|(_, _, j)| j.contains("managedFields")));
        let mut held = first.clone();
        let initial = first.into_initial();
        assert!(matches!(initial.last().map(|c| &c.event), Some(Event::Synced(true))));

        write(
            &dir,
            "c.json",
            &format!(r#"{{"kind":"List","items":[{},{}]}}"#, svc("x", "10.0.0.9"), svc("z", "10.0.0.3")),
        );
        let next = load(std::slice::from_ref(&f), prune::Reads::ALL).expect("loads");
        let diff = objects::changes(&held.0, next.clone().into_table());
        let mut summary: Vec<String> = diff
            .iter()
            .map(|e| match (&e.event, &e.key) {
                (Event::Apply(_), Some(k)) => format!("apply {}", k.name),
                (Event::Delete(_), Some(k)) => format!("delete {}", k.name),
                _ => "other".into(),
            })
            .collect();
        summary.sort();
        assert_eq!(summary, ["apply x", "apply z", "delete y"]);
        held = next;
        let unchanged = objects::changes(&held.0, load(std::slice::from_ref(&f), prune::Reads::ALL).expect("loads").into_table());
        assert!(unchanged.is_empty(), "{unchanged:?}");

        write(&dir, "c.json", "{ not json");
        assert!(load(std::slice::from_ref(&f), prune::Reads::ALL).expect_err("bad json").to_string().contains("not JSON"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
