//! The module graph of each crate has no circle: no top-level module imports one that imports
//! it back, directly or through others, and inside every folder no file (or subfolder) imports
//! one that imports it back. A top-level module is a file or a folder directly under `src/`; an
//! import is any `crate::…` or `super::…` path (in `use` lines, braces and expressions alike),
//! read from the source text with comments and unit tests left out. Inside a folder, its
//! `mod.rs` is the folder itself, not one of the modules compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of a source without its comments (line comments and doc comments) and without its
/// unit tests (a `#[cfg(test)]` module, last in its file by this crate's habit): a test may
/// reach up the layers to build what it checks.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|l| l.split_once("//").map_or(l, |(code, _)| code)).collect::<Vec<_>>().join("\n")
}

/// The first segments of the paths under `crate::` in `code`, braces included.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the names at the group's first level.
            let (mut depth, mut start) = (0usize, true);
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && !c.is_whitespace() => {
                        out.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

/// Top-level module → the top-level modules it imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(imports(&code(&text)).into_iter().filter(|d| *d != module));
    }
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    graph
}

/// Every path under `crate::` or `super::` in `code`, groups expanded (`a::{b, c::{d, e}}` is
/// `a::b`, `a::c::d`, `a::c::e`), as segments from the crate's root; `module` is the module
/// path of the file the code is in (for `super`).
fn paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    fn segment(s: &str) -> (&str, &str) {
        let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
    /// Reads one path after `prefix` from `rest`; returns the rest after it.
    fn read<'a>(mut rest: &'a str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> &'a str {
        loop {
            rest = rest.trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                rest = group;
                loop {
                    rest = read(rest, prefix.clone(), out).trim_start();
                    match rest.chars().next() {
                        Some(',') => rest = &rest[1..],
                        Some('}') => return &rest[1..],
                        _ => return rest,
                    }
                    if rest.trim_start().starts_with('}') {
                        return &rest.trim_start()[1..];
                    }
                }
            }
            let (name, after) = segment(rest);
            if name.is_empty() {
                out.push(prefix);
                return rest;
            }
            if name != "self" {
                prefix.push(name.to_string());
            }
            match after.strip_prefix("::") {
                Some(more) => rest = more,
                None => {
                    out.push(prefix);
                    return after;
                }
            }
        }
    }
    let mut out = Vec::new();
    for (keyword, base) in [("crate::", Vec::new()), ("super::", module[..module.len().saturating_sub(1)].to_vec())] {
        let mut rest = code;
        while let Some(at) = rest.find(keyword) {
            // `super::` inside a longer word (`crate::x::super::` does not occur) or after `crate::`.
            let before = rest[..at].chars().next_back();
            rest = &rest[at + keyword.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            rest = read(rest, base.clone(), &mut out);
        }
    }
    out
}

/// Folder (as a module path) → its children → the siblings each imports.
fn folder_graphs(src: &Path) -> BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut modules: Vec<(Vec<String>, String)> = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let mut path: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
        let last = path.pop().unwrap_or_default();
        match last.as_str() {
            "mod.rs" | "lib.rs" | "main.rs" => {}
            other => path.push(other.trim_end_matches(".rs").to_string()),
        }
        modules.push((path, std::fs::read_to_string(&file).expect("source")));
    }
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, text) in &modules {
        // Every folder above this module holds it as one child.
        for depth in 0..module.len() {
            let (folder, child) = (module[..depth].to_vec(), module[depth].clone());
            let siblings = graphs.entry(folder.clone()).or_default();
            siblings.entry(child.clone()).or_default();
            for p in paths(&code(text), module) {
                if p.len() > depth && p[..depth] == folder[..] && p[depth] != child {
                    siblings.get_mut(&child).expect("inserted").insert(p[depth].clone());
                }
            }
        }
    }
    for siblings in graphs.values_mut() {
        let known: BTreeSet<String> = siblings.keys().cloned().collect();
        for deps in siblings.values_mut() {
            deps.retain(|d| known.contains(d));
        }
    }
    graphs
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on_stack: BTreeSet::new(),
        found: vec![],
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn the_reader_finds_imports_in_every_form() {
    let text = "use crate::a::X;\nuse crate::{b, c::{D, E}, self};\nfn f() { crate::d::g(); } // crate::not_this\n";
    let got: Vec<String> = imports(&code(text)).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
    let g = BTreeMap::from([
        ("x".to_string(), BTreeSet::from(["y".to_string()])),
        ("y".to_string(), BTreeSet::from(["z".to_string()])),
        ("z".to_string(), BTreeSet::from(["x".to_string()])),
        ("w".to_string(), BTreeSet::from(["x".to_string()])),
    ]);
    assert_eq!(circles(&g), [["x", "y", "z"]]);
}

#[test]
fn the_reader_expands_groups_and_resolves_super() {
    let here = ["chain".to_string(), "acl".to_string()];
    let text = "use crate::{a::{B, c::D}, e};\nuse super::registry::{Block, Setup};\nfn f() { crate::g::h(); }\n";
    let got: BTreeSet<String> = paths(&code(text), &here).iter().map(|p| p.join("::")).collect();
    let want = ["a::B", "a::c::D", "e", "chain::registry::Block", "chain::registry::Setup", "g::h"];
    assert_eq!(got, want.iter().map(|s| s.to_string()).collect());
}

#[test]
fn no_file_inside_a_folder_imports_one_that_imports_it_back() {
    for krate in ["host/src", "guest/src"] {
        let graphs = folder_graphs(&root().join(krate));
        assert!(graphs.len() > 1 || krate == "guest/src", "{krate}: read {} folders", graphs.len());
        let mut shown = Vec::new();
        for (folder, graph) in &graphs {
            for c in circles(graph) {
                let edges: Vec<String> = c
                    .iter()
                    .flat_map(|m| graph[m].iter().filter(|d| c.contains(d)).map(move |d| format!("{m} → {d}")))
                    .collect();
                shown.push(format!("{krate}/{}: {{{}}}: {}", folder.join("/"), c.join(", "), edges.join("; ")));
            }
        }
        assert!(shown.is_empty(), "import circles inside folders:\n{}", shown.join("\n"));
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    for krate in ["host/src", "guest/src"] {
        let graph = graph(&root().join(krate));
        assert!(graph.len() > 5, "{krate}: read {} modules", graph.len());
        let found = circles(&graph);
        let shown: Vec<String> = found
            .iter()
            .map(|c| {
                let edges: Vec<String> = c
                    .iter()
                    .flat_map(|m| graph[m].iter().filter(|d| c.contains(d)).map(move |d| format!("{m} → {d}")))
                    .collect();
                format!("{{{}}}: {}", c.join(", "), edges.join("; "))
            })
            .collect();
        assert!(found.is_empty(), "{krate}: import circles:\n{}", shown.join("\n"));
    }
}
