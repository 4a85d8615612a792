//! A push server pushbench did not write: a minimal SSE relay (written here on raw
//! sockets) that knows nothing of pushbench's envelopes, cursors or `latest`. It
//! relays each published body verbatim as `data:` and ends streams by closing the
//! connection (no chunked encoding). Measured through `[target]` templates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushbench_loadgen::{Progress, RunOptions, Scenario, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>>;

fn topic(topics: &Topics, name: &str) -> broadcast::Sender<Vec<u8>> {
    topics
        .lock()
        .expect("not poisoned")
        .entry(name.to_string())
        .or_insert_with(|| broadcast::channel(1024).0)
        .clone()
}

async fn connection(mut sock: TcpStream, topics: Topics, stop: CancellationToken) {
    let mut buf = Vec::new();
    loop {
        // One request head (pipelined requests stay in `buf`).
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::select! {
                r = sock.read(&mut chunk) => r.unwrap_or(0),
                _ = stop.cancelled() => 0,
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut words = head.split_whitespace();
        let (method, path) = (
            words.next().unwrap_or("").to_string(),
            words.next().unwrap_or("").to_string(),
        );
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        match (
            method.as_str(),
            path.strip_prefix("/pub/"),
            path.strip_prefix("/sub/"),
        ) {
            ("POST", Some(t), _) => {
                let _ = topic(&topics, t).send(body);
                if sock
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
            ("GET", _, Some(t)) => {
                let mut rx = topic(&topics, t).subscribe();
                if sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                loop {
                    let msg = tokio::select! {
                        m = rx.recv() => m,
                        _ = stop.cancelled() => return,
                    };
                    let Ok(msg) = msg else { return };
                    let mut frame = b"data: ".to_vec();
                    frame.extend_from_slice(&msg);
                    frame.extend_from_slice(b"\n\n");
                    if sock.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
            _ => {
                if sock
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn start_relay(stop: CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    let topics: Topics = Arc::default();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.cancelled() => return,
            };
            let Ok((sock, _)) = accepted else { return };
            tokio::spawn(connection(sock, topics.clone(), stop.clone()));
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_verbatim_sse_relay_through_target_templates() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let stop = CancellationToken::new();
        let url = start_relay(stop.clone()).await;
        let text = format!(
            r#"
name = "relay"
description = "an SSE relay that is not pushbench's server"
duration = "2s"
warmup = "500ms"
grace = "1s"
[publisher]
rate = 20
[[group]]
name = "sse"
strategy = "sse"
clients = 3
resume = false
[target]
base_url = "{url}"
[target.publish]
url = "/pub/{{topic}}"
[target.sse]
url = "/sub/{{topic}}"
cursor = "none"
"#
        );
        let s = Scenario::from_toml_str(&text, "relay.toml", &[]).expect("valid");
        let r = run(
            &s,
            RunOptions {
                base_url: url,
                embedded: false,
                server: None,
            },
            Arc::new(Progress::default()),
            CancellationToken::new(),
        )
        .await
        .expect("run");
        stop.cancel();
        assert_eq!(r.summary.publisher.publish_errors, 0);
        assert!(
            r.summary.publisher.published >= 30,
            "{:?}",
            r.summary.publisher
        );
        let g = &r.summary.groups[0];
        assert!(g.expected >= 90, "{g:?}");
        assert_eq!(
            (g.lost, g.duplicates, g.reordered, g.errors),
            (0, 0, 0, 0),
            "{g:?}"
        );
        assert!(g.latency_us.count > 0 && g.bytes_down > 0, "{g:?}");
    })
    .await
    .expect("finishes within 20s");
}
