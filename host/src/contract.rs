//! The contract between this host and a kubernetai module (`wit/kubernetai.wit`): the types
//! and the world as wasmtime generates them, and the one place a query is written in the
//! contract's form. Imports nothing of the crate but the DNS types.

use std::net::SocketAddr;

use crate::dns::Proto;

wasmtime::component::bindgen!({ path: "../wit", world: "kubernetai" });

/// The WIT types, as the host sees them.
pub use self::kubernetai::dns::types as wit;

/// A query as the module takes it.
/// Calls `f` with the contract's query for `packet`, written into this thread's reused query
/// (its packet and client address buffers keep their capacity), so asking the module allocates
/// nothing in the host once a thread has seen its largest query.
pub fn with_module_query<T>(
    packet: &[u8],
    client: SocketAddr,
    proto: Proto,
    max_size: u16,
    f: impl FnOnce(&wit::Query) -> T,
) -> T {
    use std::cell::RefCell;
    thread_local! {
        static QUERY: RefCell<wit::Query> = RefCell::new(module_query(Vec::new(), ([0, 0, 0, 0], 0).into(), Proto::Udp, 0));
    }
    QUERY.with(|cell| {
        // Re-entered (a module call within a module call): a query of its own.
        let Ok(mut q) = cell.try_borrow_mut() else {
            return f(&module_query(packet.to_vec(), client, proto, max_size));
        };
        q.packet.clear();
        q.packet.extend_from_slice(packet);
        q.client.clear();
        write_ip(&mut q.client, client.ip());
        q.client_port = client.port();
        q.transport = if proto == Proto::Udp { wit::Transport::Udp } else { wit::Transport::Tcp };
        q.max_size = max_size;
        f(&q)
    })
}

/// Writes `ip` as text: an IPv4 address (nearly every client) digit by digit, several times
/// faster than the formatting machinery on the per-query path.
fn write_ip(out: &mut String, ip: std::net::IpAddr) {
    use std::fmt::Write;
    let std::net::IpAddr::V4(v4) = ip else {
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

pub fn module_query(packet: Vec<u8>, client: SocketAddr, proto: Proto, max_size: u16) -> wit::Query {
    wit::Query {
        packet,
        client: client.ip().to_string(),
        client_port: client.port(),
        transport: if proto == Proto::Udp { wit::Transport::Udp } else { wit::Transport::Tcp },
        max_size,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_written_as_std_writes_them() {
        for text in ["0.0.0.0", "10.0.1.9", "192.168.100.255", "255.255.255.255", "::1", "fd00::a:1", "::ffff:1.2.3.4"]
        {
            let ip: std::net::IpAddr = text.parse().unwrap();
            let mut out = String::from("stale");
            out.clear();
            super::write_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }
}
