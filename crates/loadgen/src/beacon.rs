//! Beacon uploads (`navigator.sendBeacon`): each client POSTs stamped bodies to
//! `/beacon` on its own open-loop schedule and only waits for the status line. What
//! it teaches is the upstream cost per event, compared with a WebSocket frame.
//! Latency here is upload acknowledgement time (response - intended), not delivery.

use std::time::Duration;

use http::Method;
use pushbench_protocol::wire::{Stamp, encode_stamped_body};
use rand::Rng;

use crate::client::ClientCtx;
use crate::connect::{ClientError, HttpConn};
use crate::recorder::ClientRecorder;

/// Runs one beacon client until the run ends; returns its recorder.
///
/// The client's future is boxed here, at its own size: the task that runs a client
/// is as large as the largest strategy's future (4.8 KB), which every idle
/// connection would otherwise pay.
pub(crate) async fn run(
    ctx: ClientCtx,
    rec: ClientRecorder,
    publisher_id: u32,
    rate: f64,
    payload_bytes: usize,
) -> ClientRecorder {
    Box::pin(client(ctx, rec, publisher_id, rate, payload_bytes)).await
}

async fn client(
    mut ctx: ClientCtx,
    rec: ClientRecorder,
    publisher_id: u32,
    rate: f64,
    payload_bytes: usize,
) -> ClientRecorder {
    let mut backoff = ClientCtx::backoff();
    let mut conn: Option<HttpConn> = None;
    let period_ns = (1e9 / rate) as u64;
    let clock = ctx.group.clock;
    // A random phase, so clients do not upload in lockstep.
    let start = clock.now_ns() + ctx.rng.random_range(0..period_ns.max(1));
    let path = ctx.path(&ctx.endpoints.beacon.url, None, &[]);
    let mut pseq = 0u64;
    let end_ns = ctx
        .group
        .window_end_ns
        .load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let intended = start + pseq * period_ns;
        if intended >= end_ns {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(clock.instant(intended)) => {}
            _ = ctx.done.cancelled() => break,
        }
        pseq += 1;
        let sent = clock.now_ns();
        let stamp = Stamp {
            publisher: publisher_id,
            topic: 0,
            seq: pseq,
            intended_ns: intended,
            sent_ns: sent,
        };
        let body = encode_stamped_body(&stamp, payload_bytes);
        let result = async {
            let mut c = ctx.ensure_http(conn.take()).await?;
            ctx.count_request();
            let status = c
                .request(
                    Method::POST,
                    path.as_str(),
                    &[],
                    Some(&body),
                    Duration::from_secs(10),
                )
                .await?
                .status;
            Ok::<_, ClientError>((c, status))
        }
        .await;
        match result {
            Ok((c, status)) => {
                conn = Some(c);
                if (200..300).contains(&status) {
                    ctx.group.add(&ctx.group.counters.uploads, 1);
                    ctx.group
                        .record_upload_latency(intended, sent, clock.now_ns());
                } else {
                    ctx.group.error(&ClientError::Status(status));
                }
            }
            Err(e) => {
                if !ctx.fail(&e, &mut backoff).await {
                    break;
                }
            }
        }
    }
    // Idle until the grace period ends, like every other client.
    ctx.done.cancelled().await;
    rec
}
