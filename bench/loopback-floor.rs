//! The machine's latency floor for pushbench's latency path, with the simplest code
//! that can walk it: a publisher thread -> TCP -> a relay process -> TCP -> N
//! subscriber threads back in the publisher's process (the topology of
//! `pushbench run --target` against `pushbench serve`). Blocking sockets, one thread
//! per socket, no async runtime, no HTTP, no WebSocket framing: what is left is the
//! kernel's loopback TCP and the wake-ups of idle threads (vCPUs).
//!
//! Built by bench/latency-floor.sh with plain `rustc -O` (std only; not part of the
//! workspace). Usage:
//!   loopback-floor relay ADDR N            serve one publisher and N subscribers
//!   loopback-floor client ADDR N RATE SECS publish RATE msgs/s for SECS, print p50/p99
//! The publisher paces like pushbench's: sleep to 150 us before the intended time,
//! then spin. Messages are 256 bytes (pushbench's bench-latency payload), the first
//! 16 bytes carrying the intended and the sent time (ns since the client's start).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MSG: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: loopback-floor relay ADDR N | client ADDR N RATE SECS";
    match args.get(1).map(String::as_str) {
        Some("relay") if args.len() == 4 => relay(&args[2], args[3].parse().expect(usage)),
        Some("client") if args.len() == 6 => client(
            &args[2],
            args[3].parse().expect(usage),
            args[4].parse().expect(usage),
            args[5].parse().expect(usage),
        ),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

/// Accepts the publisher first, then N subscribers; copies every message to each
/// subscriber in turn, one write per subscriber (as a server writes one frame).
fn relay(addr: &str, n: usize) {
    let listener = TcpListener::bind(addr).expect("bind");
    let (mut publisher, _) = listener.accept().expect("accept publisher");
    publisher.set_nodelay(true).unwrap();
    let mut subs: Vec<TcpStream> = (0..n)
        .map(|_| {
            let (s, _) = listener.accept().expect("accept subscriber");
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let mut msg = [0u8; MSG];
    while publisher.read_exact(&mut msg).is_ok() {
        for s in &mut subs {
            if s.write_all(&msg).is_err() {
                return;
            }
        }
    }
}

fn client(addr: &str, n: usize, rate: f64, secs: f64) {
    let t0 = Instant::now();
    let ns = move || t0.elapsed().as_nanos() as u64;
    let mut publisher = connect(addr);
    // Subscribers connect after the publisher, in order (the relay accepts in order).
    let samples: Arc<Mutex<(Vec<u64>, Vec<u64>)>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..n {
        let mut s = connect(addr);
        let samples = samples.clone();
        readers.push(std::thread::spawn(move || {
            let mut msg = [0u8; MSG];
            let (mut corrected, mut uncorrected) = (Vec::new(), Vec::new());
            while s.read_exact(&mut msg).is_ok() {
                let now = ns();
                let intended = u64::from_le_bytes(msg[0..8].try_into().unwrap());
                let sent = u64::from_le_bytes(msg[8..16].try_into().unwrap());
                corrected.push(now.saturating_sub(intended));
                uncorrected.push(now.saturating_sub(sent));
            }
            let mut all = samples.lock().unwrap();
            all.0.extend(corrected);
            all.1.extend(uncorrected);
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let period = (1e9 / rate) as u64;
    let spin = 150_000u64.min(period / 20);
    let start = ns() + 10_000_000;
    let count = (rate * secs) as u64;
    let mut msg = [0u8; MSG];
    for i in 0..count {
        let intended = start + i * period;
        loop {
            let now = ns();
            if now >= intended {
                break;
            }
            if intended - now > spin {
                std::thread::sleep(Duration::from_nanos(intended - now - spin));
            } else {
                std::hint::spin_loop();
            }
        }
        msg[0..8].copy_from_slice(&intended.to_le_bytes());
        msg[8..16].copy_from_slice(&ns().to_le_bytes());
        publisher.write_all(&msg).expect("publish");
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(publisher); // the relay ends, closing every subscriber
    for r in readers {
        r.join().unwrap();
    }
    let mut all = samples.lock().unwrap();
    let pct = |v: &mut Vec<u64>, p: f64| {
        v.sort_unstable();
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .map_or(0.0, |x| *x as f64 / 1000.0)
    };
    let delivered = all.0.len();
    let (c50, c99) = (pct(&mut all.0, 0.5), pct(&mut all.0, 0.99));
    let (u50, u99) = (pct(&mut all.1, 0.5), pct(&mut all.1, 0.99));
    println!(
        "subscribers {n} delivered {delivered} p50 {c50:.0} p99 {c99:.0} uncorrected_p50 {u50:.0} uncorrected_p99 {u99:.0}"
    );
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    s
}
