//! How another host embeds the kubernetai module: load the component with wasmtime, give it an
//! empty WASI context, configure one stanza, feed it a cluster from `kubectl get -o json` output
//! as watch events, and answer one query. Only the contract in `wit/` is used.
//!
//! cargo run --release -p kubernetai --example embed -- MODULE.wasm CLUSTER.json NAME

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({ path: "../wit", world: "kubernetai" });
use self::kubernetai::dns::types::{Event, Kind, Object, Outcome, PodMode, Server, Stanza, Transport};

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    /// What the module gave through `host.answer` during the last `handle`.
    answer: Vec<u8>,
}

/// The contract's one import: a module hands its response over here (and returns an empty
/// `answer`) instead of returning it.
impl self::kubernetai::dns::host::Host for Host {
    fn answer(&mut self, response: Vec<u8>) {
        self.answer = response;
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, module, cluster, name] = args.as_slice() else {
        return Err(wasmtime::Error::msg("usage: embed MODULE.wasm CLUSTER.json NAME"));
    };
    let engine = Engine::new(Config::new().wasm_component_model(true))?;
    let component = Component::from_file(&engine, module)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    self::kubernetai::dns::host::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |host| host)?;
    let mut store =
        Store::new(&engine, Host { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), answer: Vec::new() });
    let plugin = Kubernetai::instantiate(&mut store, &component, &linker)?;
    let api = plugin.kubernetai_dns_plugin();
    println!("module speaks kubernetai:dns@{}", api.call_contract_version(&mut store)?);

    // One stanza for cluster.local with the kubernetes plugin's defaults.
    let stanza = Stanza {
        zones: vec!["cluster.local.".into()],
        namespaces: vec![],
        namespace_labels: None,
        labels: None,
        pods: PodMode::Disabled,
        endpoint_pod_names: false,
        ttl: 5,
        noendpoints: false,
        fallthrough: None,
        ignore_empty_service: false,
        multicluster: vec![],
        zonal: false,
    };
    api.call_configure(&mut store, &Server { local_ips: vec![] }, &[stanza])?.map_err(wasmtime::Error::msg)?;

    // The cluster as one list of every kind, then "synced".
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cluster)?)?;
    let mut events = Vec::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let kind = match item["kind"].as_str() {
            Some("Namespace") => Kind::Namespace,
            Some("Service") => Kind::Service,
            Some("EndpointSlice") => Kind::EndpointSlice,
            Some("Pod") => Kind::Pod,
            _ => continue,
        };
        events.push(Event::Apply(Object { kind, json: item.to_string() }));
    }
    events.push(Event::Synced(true));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    for rejected in api.call_apply(&mut store, 0, now, &events)? {
        eprintln!("skipped {}: {}", rejected.name, rejected.reason);
    }

    // One query, as a DNS server would pass it on.
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    let q = self::kubernetai::dns::types::Query {
        packet: query.to_vec()?,
        client: "127.0.0.1".into(),
        client_port: 53000,
        transport: Transport::Udp,
        max_size: 512,
    };
    match api.call_handle(&mut store, &q)? {
        Outcome::Answer(bytes) if bytes.is_empty() => println!("{}", Message::from_vec(&store.data().answer)?),
        Outcome::Answer(bytes) | Outcome::Chase(self::kubernetai::dns::types::Chase { response: bytes, .. }) => {
            println!("{}", Message::from_vec(&bytes)?)
        }
        Outcome::Next => println!("next plugin"),
        Outcome::Drop => println!("dropped"),
    }
    Ok(())
}
