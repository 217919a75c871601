//! Batched UDP for the workers: one `recvmmsg` takes every datagram waiting on the socket (up to
//! a batch), one `sendmmsg` sends every answer, so a busy worker pays two syscalls per batch
//! instead of two per query.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// Datagrams per syscall.
pub const BATCH: usize = 32;
/// Room for one datagram: a DNS query beyond this is no query (it is counted and dropped).
pub const SLOT: usize = 4096;

/// Receive buffers for one batch.
pub struct Inbox {
    bufs: Box<[u8]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    peers: [Option<SocketAddr>; BATCH],
    count: usize,
    /// The kernel's view of the buffers, made once (zeroing ~7 KiB of C structs for every
    /// batch cost more than a small batch's answers): each header points into `bufs` and
    /// `names`, which are on the heap and stay put when the inbox moves.
    names: Box<[libc::sockaddr_storage; BATCH]>,
    iovecs: Box<[libc::iovec; BATCH]>,
    headers: Box<[libc::mmsghdr; BATCH]>,
}

impl Default for Inbox {
    fn default() -> Self {
        // SAFETY: zeroed sockaddr_storage, iovec and mmsghdr are valid "empty" values of these
        // plain C structs.
        let (names, iovecs, headers) = unsafe { (Box::new(zeroed()), Box::new(zeroed()), Box::new(zeroed())) };
        let mut inbox = Inbox {
            bufs: vec![0; BATCH * SLOT].into_boxed_slice(),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            peers: [None; BATCH],
            count: 0,
            names,
            iovecs,
            headers,
        };
        for i in 0..BATCH {
            inbox.iovecs[i].iov_base = inbox.bufs[i * SLOT..].as_mut_ptr().cast();
            inbox.iovecs[i].iov_len = SLOT;
            inbox.headers[i].msg_hdr.msg_name = (&mut inbox.names[i] as *mut libc::sockaddr_storage).cast();
            inbox.headers[i].msg_hdr.msg_iov = &mut inbox.iovecs[i];
            inbox.headers[i].msg_hdr.msg_iovlen = 1;
        }
        inbox
    }
}

impl Inbox {
    /// Waits (up to the socket's read timeout) for one datagram, then takes every other one
    /// already queued, up to a batch. Returns how many arrived.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let headers = &mut self.headers;
        for header in headers.iter_mut() {
            // What the kernel wrote back last time.
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at a name and a buffer of the sizes given, all owned by
        // this inbox and so alive through the call; the kernel writes at most those sizes.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.count = n as usize;
        for i in 0..self.count {
            self.lens[i] = (self.headers[i].msg_len as usize).min(SLOT);
            self.truncated[i] = self.headers[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peers[i] = peer(&self.names[i]);
        }
        Ok(self.count)
    }

    /// Datagram `i` of the last batch: its bytes, its sender, and whether it was cut to fit.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr, bool)> {
        if i >= self.count {
            return None;
        }
        Some((&self.bufs[i * SLOT..i * SLOT + self.lens[i]], self.peers[i]?, self.truncated[i]))
    }
}

/// The sender the kernel wrote into `name`.
fn peer(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and aligned for.
            let v4 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Answers of one batch, back to back in one buffer whose capacity stays from batch to batch:
/// answering a batch allocates nothing once the buffers have grown to it.
#[derive(Default)]
pub struct Outbox {
    /// Where answers are written: each one is appended, then [`Outbox::commit`]ted.
    pub bytes: Vec<u8>,
    /// Each answer's start in `bytes` and its peer (as the kernel takes it); it ends where the
    /// next starts.
    sends: Vec<(usize, SockAddr)>,
}

impl Outbox {
    /// Sends what was appended to `bytes` since `from` to `peer`.
    pub fn commit(&mut self, from: usize, peer: SocketAddr) {
        self.sends.push((from, SockAddr::from(peer)));
    }

    /// Sends a copy of `answer` to `peer`.
    pub fn push(&mut self, answer: &[u8], peer: SocketAddr) {
        let from = self.bytes.len();
        self.bytes.extend_from_slice(answer);
        self.commit(from, peer);
    }

    /// Answer `i`, with its peer.
    fn get(&self, i: usize) -> Option<(&[u8], Option<&SockAddr>)> {
        let (from, peer) = self.sends.get(i)?;
        let to = self.sends.get(i + 1).map_or(self.bytes.len(), |next| next.0);
        Some((self.bytes.get(*from..to)?, Some(peer)))
    }

    /// Sends every answer with as few `sendmmsg` calls as it takes (a failed datagram is logged
    /// and skipped), and empties the box.
    pub fn send(&mut self, socket: &UdpSocket) {
        for first in (0..self.sends.len()).step_by(BATCH) {
            let count = BATCH.min(self.sends.len() - first);
            // Only the `count` entries sent are written: zeroing whole arrays for every batch
            // cost more than a small batch's answers.
            let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
            let mut headers = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
            for i in 0..count {
                let (bytes, name) = self.get(first + i).unwrap_or_default();
                let iovec = iovecs[i]
                    .write(libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() });
                // SAFETY: as in `recv`, a zeroed mmsghdr is a valid empty value.
                let mut header: libc::mmsghdr = unsafe { zeroed() };
                header.msg_hdr.msg_name = name.map_or(std::ptr::null_mut(), |n| n.as_ptr() as *mut libc::c_void);
                header.msg_hdr.msg_namelen = name.map_or(0, SockAddr::len);
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                headers[i].write(header);
            }
            let headers = headers.as_mut_ptr().cast::<libc::mmsghdr>();
            let mut sent = 0;
            while sent < count {
                // SAFETY: the first `count` headers were written above and point at addresses
                // and answers that outlive the call; the kernel only reads them.
                let n =
                    unsafe { libc::sendmmsg(socket.as_raw_fd(), headers.add(sent), (count - sent) as libc::c_uint, 0) };
                if n <= 0 {
                    // The first datagram failed: report it and go on with the rest.
                    let peer = self.sends[first + sent].1.as_socket().map(|p| p.to_string()).unwrap_or_default();
                    println!("[WARNING] udp send to {peer}: {}", io::Error::last_os_error());
                    sent += 1;
                } else {
                    sent += n as usize;
                }
            }
        }
        self.bytes.clear();
        self.sends.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_batch_takes_every_waiting_datagram_with_its_sender_and_answers_them_all() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(server) = UdpSocket::bind(local) else {
                continue; // no IPv6 loopback on this machine
            };
            server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let client = UdpSocket::bind(local).unwrap();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let to = server.local_addr().unwrap();
            for i in 0..3u8 {
                client.send_to(&[i; 10], to).unwrap();
            }
            client.send_to(&vec![7u8; SLOT + 100], to).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut inbox = Inbox::default();
            assert_eq!(inbox.recv(&server).unwrap(), 4);
            let mut out = Outbox::default();
            for i in 0..3 {
                let (bytes, peer, cut) = inbox.get(i).unwrap();
                assert_eq!((bytes, peer, cut), (&[i as u8; 10][..], client.local_addr().unwrap(), false));
                let from = out.bytes.len();
                out.bytes.extend(bytes.iter().map(|b| b + 100));
                out.commit(from, peer);
            }
            let (bytes, _, cut) = inbox.get(3).unwrap();
            assert!(cut && bytes.len() == SLOT, "an oversized datagram is marked cut");
            assert!(inbox.get(4).is_none());
            out.send(&server);
            let mut buf = [0u8; 64];
            for i in 0..3u8 {
                let n = client.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[i + 100; 10]);
            }
            assert!(out.bytes.is_empty() && out.get(0).is_none(), "sending empties the box");
        }
    }
}
