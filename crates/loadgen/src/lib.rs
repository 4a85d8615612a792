//! `pushbench-loadgen`: runs a scenario against a push server and measures, per
//! strategy group, delivery latency, wire bytes and ordering.
//!
//! It must not print, read argv or install logging (the CLI does), and it depends on
//! the server crate only in its tests: it measures any server that speaks the API in
//! DESIGN.md, through `[target]` URL templates.
//!
//! Key decision: loss, duplication and order are judged against the publisher's own
//! stamp (publisher id, topic, publisher seq, intended time) carried in every event
//! body, never against the server's `seq`, so a server that drops or reorders is
//! caught. Latency is measured from the *intended* publish time of an open-loop
//! schedule (coordinated-omission corrected) and, beside it, from the actual send time.
//!
//! # Layout
//! - `scenario.rs`: TOML scenario files, `--set` overrides, validation, resolved TOML.
//! - `run.rs`: the timeline of one run (warm-up, measured window, grace) and the record.
//! - `progress.rs`: live counters the CLI shows while a run is going.
//! - `publisher.rs`: the open-loop publisher.
//! - `recorder.rs`: per-group histograms and counters; `ordering.rs`: the per-client
//!   ordering tracker (bounded memory); `registry.rs`: what was published when.
//! - `connect.rs`: metered TCP streams, HTTP/1 and WebSocket connections;
//!   `backoff.rs`: reconnect delays.
//! - One file per strategy: `poll.rs`, `long_poll.rs`, `sse.rs`, `websocket.rs`,
//!   `beacon.rs`, `chat.rs`; `client.rs` holds what they share (targets, event intake).
//! - `faults.rs`: `[network]` proxies (pushbench-netem, one per group), the
//!   `[[fault]]` timeline and [`ServerControl`] for server restarts.
//! - `health.rs`: the load generator's own CPU and saturation; `clock.rs`: the one
//!   wall clock (monotonic within a run) of stamps and receive times.
//!
//! Tests: unit tests at the bottom of each file; `tests/end_to_end.rs` runs
//! `scenarios/smoke.toml` against the real server on 127.0.0.1:0;
//! `tests/impairment.rs` puts pushbench-netem in between (jitter, reset, blackhole,
//! a `[[fault]]` timeline aimed at some groups); `tests/slow_consumer.rs` runs
//! `scenarios/slow-consumer.toml`; `tests/foreign_target.rs` measures a minimal SSE
//! relay that is not pushbench's. The other impairment scenarios are run through
//! the CLI in `crates/cli/tests/run_scenarios.rs` (their server restarts need it).

mod backoff;
mod beacon;
mod chat;
mod client;
mod clock;
mod connect;
mod faults;
mod health;
mod long_poll;
mod ordering;
mod poll;
mod progress;
mod publisher;
mod recorder;
mod registry;
mod run;
pub mod scenario;
mod source;
mod sse;
mod websocket;

pub use faults::{BoxFuture, ServerControl, ServerSnapshot};
pub use progress::{Progress, ProgressSnapshot};
pub use run::{LoadgenError, RunOptions, run};
pub use scenario::{Scenario, ScenarioError};
