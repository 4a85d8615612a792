//! Helpers shared by the integration tests: an upstream whose accepted sockets the
//! test holds, an echo upstream, a proxy in front of either, and statistics.

#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use pushbench_netem::{Impairment, Proxy, ProxyHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Runs `fut` or panics after `secs` seconds: no test may hang.
pub async fn within<F: Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test step timed out")
}

/// A listener standing in for the server; the test accepts from it itself.
pub async fn upstream() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream")
}

/// An upstream that echoes every byte on every connection, until the runtime ends.
pub async fn echo_upstream() -> SocketAddr {
    let listener = upstream().await;
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A proxy to `upstream` on a fresh 127.0.0.1 port.
pub async fn proxy(upstream: SocketAddr, impairment: Impairment, seed: u64) -> ProxyHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    Proxy::start(
        listener,
        upstream,
        impairment,
        seed,
        CancellationToken::new(),
    )
    .expect("start proxy")
}

/// Connects with Nagle off, as an interactive client would.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// One request/response round trip of `size` bytes through an echo upstream.
pub async fn echo_rtt(stream: &mut TcpStream, size: usize) -> Duration {
    let out = vec![7u8; size];
    let mut back = vec![0u8; size];
    let start = std::time::Instant::now();
    stream.write_all(&out).await.expect("write");
    stream.read_exact(&mut back).await.expect("read echo");
    start.elapsed()
}

/// The median of `samples` (sorts them).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The impairment with `f` applied to both directions.
pub fn both(mut f: impl FnMut(&mut pushbench_netem::LinkConfig)) -> Impairment {
    let mut i = Impairment::none();
    f(&mut i.up);
    f(&mut i.down);
    i
}

/// Polls `check` every 5 ms for up to 2 s until it gives a value; panics otherwise.
/// For counters, which the proxy's tasks bump just after the bytes moved.
pub async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached within 2 s");
}
