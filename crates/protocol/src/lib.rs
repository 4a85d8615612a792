//! pushbench's two contracts, shared by the server, the load generator and the report.
//!
//! - [`wire`]: what travels between server and clients: the event envelope and its
//!   encodings (JSON text, the compact binary WebSocket envelope, SSE framing), gap
//!   notices, cursors, and the publisher's stamp inside every event body.
//! - [`record`]: what a run writes down: the results schema (`summary.json`,
//!   `summary.csv`, `timeseries.csv`, `meta.json`).
//!
//! This crate must not do I/O and must not depend on an async runtime: both sides of
//! every contract (encoder and decoder) live here so they cannot drift apart, and
//! they are tested by round trips.
//!
//! # Layout
//! - `wire/event.rs`: events, envelopes, gap notices, cursors.
//! - `wire/sse.rs`: SSE framing and an incremental SSE parser.
//! - `wire/stamp.rs`: the publisher's stamp (identity, sequence, intended and actual time).
//! - `record.rs`: the results schema.

pub mod record;
pub mod wire;
