//! Source addresses: the local IP addresses the clients connect *from*, spread
//! evenly (`source_addresses` in a scenario). One source address reaches one server
//! port through at most the kernel's ephemeral port range (32768-60999 by default:
//! 28,232 connections); spreading clients over 127.0.0.2, 127.0.0.3, ... (every
//! 127.0.0.0/8 address is local on Linux) multiplies that.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::net::{TcpSocket, TcpStream};

/// The addresses to connect from, spread evenly; empty: the kernel picks.
#[derive(Debug, Default)]
pub(crate) struct SourceAddresses {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl SourceAddresses {
    pub(crate) fn new(addrs: Vec<IpAddr>) -> Self {
        SourceAddresses {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        // Scrambled (splitmix64) rather than plain round robin: a client that opens
        // connections in pairs (WebSocket: the /latest bootstrap, then the socket it
        // keeps) would otherwise keep all its long-lived connections on half of the
        // addresses.
        let mut z = (self.next.fetch_add(1, Relaxed) as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Some(self.addrs[(z % self.addrs.len() as u64) as usize])
    }

    /// Checks that every address can be bound here, so a typo fails the run at
    /// its start rather than as thousands of connect errors.
    pub(crate) fn check(&self) -> Result<(), String> {
        for &ip in &self.addrs {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            };
            socket
                .and_then(|s| s.bind(SocketAddr::new(ip, 0)))
                .map_err(|e| {
                    format!(
                        "source address {ip} cannot be bound ({e}): list addresses of this machine in source_addresses (on Linux every 127.0.0.x is one)"
                    )
                })?;
        }
        Ok(())
    }

    /// Connects to `authority` (`host:port`) from the next source address.
    pub(crate) async fn connect(&self, authority: &str) -> io::Result<TcpStream> {
        let Some(source) = self.take() else {
            return TcpStream::connect(authority).await;
        };
        let mut last = None;
        for addr in tokio::net::lookup_host(authority).await? {
            if addr.is_ipv4() != source.is_ipv4() {
                continue;
            }
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(source, 0))?;
            match socket.connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{authority} has no address of the family of source address {source}"),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_come_from_every_listed_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let sources = SourceAddresses::new(vec![
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        ]);
        let mut seen = std::collections::BTreeMap::<String, u32>::new();
        for _ in 0..40 {
            let _client = sources.connect(&authority).await.expect("connects");
            let (_, peer) = listener.accept().await.unwrap();
            *seen.entry(peer.ip().to_string()).or_default() += 1;
        }
        let keys: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(keys, ["127.0.0.2", "127.0.0.3"], "{seen:?}");
        assert!(seen.values().all(|&n| n >= 10), "spread: {seen:?}");
    }

    #[tokio::test]
    async fn an_address_of_another_machine_is_refused_at_the_start() {
        let sources = SourceAddresses::new(vec!["192.0.2.7".parse().unwrap()]);
        let err = sources.check().unwrap_err();
        assert!(err.contains("192.0.2.7 cannot be bound"), "{err}");
        assert!(SourceAddresses::default().check().is_ok());
    }
}
