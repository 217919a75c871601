//! The tests' fake Kubernetes API server (`tests/e2e/apiserver.rs`: discovery, paged lists,
//! chunked watches, bookmarks) as a program, so the benchmark can feed a cluster to the server
//! through the watch path as well as through a manifest file. It serves the objects of a
//! `kubectl get … -o json` List and prints its URL on the first line, until killed. A line on
//! its standard input is a fault to inject: `410` expires the history and cuts every watch (each
//! resumes into 410 Gone and relists), `restart` restarts it with a new history; it answers `ok`.
//!
//! `cargo run --release -p kubernetai --example fake_apiserver -- CLUSTER.json`

#[path = "../../tests/e2e/apiserver.rs"]
#[allow(dead_code)]
mod apiserver;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let file = std::env::args().nth(1).context("usage: fake_apiserver CLUSTER.json")?;
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
    let list: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{file}: not JSON"))?;
    drop(text);
    let serde_json::Value::Object(mut list) = list else { anyhow::bail!("{file}: not a List") };
    let Some(serde_json::Value::Array(items)) = list.remove("items") else { anyhow::bail!("{file}: no items") };
    let api = apiserver::FakeApi::start();
    let count = items.len();
    for item in items {
        api.apply(item);
    }
    println!("{}", api.url());
    eprintln!("fake_apiserver: serving {count} objects");
    for line in std::io::stdin().lines() {
        match line?.trim() {
            "410" => {
                api.compact();
                api.cut_streams();
            }
            "restart" => api.restart(),
            other => {
                println!("unknown command {other:?}");
                continue;
            }
        }
        println!("ok");
    }
    // Standard input closed: serve on until killed.
    loop {
        std::thread::park();
    }
}
