//! A userspace TCP impairment proxy: what `tc netem` does to a link, done in a
//! process, so it works where kernel qdiscs are not available.
//!
//! The proxy sits between clients and a server. For every accepted connection it
//! dials the upstream and forwards bytes both ways ("up" = client to server, "down"
//! = server to client), applying per direction: latency, jitter, bandwidth (per
//! connection and optionally shared by all connections), and loss as TCP
//! experiences it. Faults are triggered at run time through the [`ProxyHandle`]:
//! blackhole (half-open), reset, flap, lift; or from a timeline of
//! [`ScheduledFault`]s. It knows nothing of HTTP.
//!
//! # Key decision: loss is a stall, never missing bytes
//!
//! The proxy terminates TCP on both sides, so it cannot drop a packet and let TCP
//! recover: a dropped chunk would corrupt the byte stream. Instead each segment is
//! "lost" with probability `loss`, and a lost segment is released one
//! retransmission timeout later (doubling if the retransmission is lost too), with
//! every byte behind it held back, which is what an application above TCP sees
//! (head-of-line blocking). Bytes inside one connection are never reordered: a
//! segment's release time is `max(previous release, departure + delay + stall)`.
//!
//! # Layout
//! - `config.rs`: [`Impairment`], [`LinkConfig`], [`Bandwidth`].
//! - `preset.rs`: named presets (lan, wifi, 3g, satellite, lossy) and their sources.
//! - `schedule.rs`: the per-connection, per-direction release-time computation.
//! - `fault.rs`: [`Fault`], [`ScheduledFault`] and the fault state the tasks watch.
//! - `counters.rs`: [`Counters`], the numbers a caller can query at any time.
//! - `connection.rs`: one proxied connection: two readers, two writers, one task.
//! - `proxy.rs`: [`Proxy::start`], the accept loop and [`ProxyHandle`].
//! - `error.rs`: [`Error`].

mod config;
mod connection;
mod counters;
mod error;
mod fault;
mod preset;
mod proxy;
mod schedule;

pub use config::{Bandwidth, Impairment, LinkConfig};
pub use counters::{Counters, DirectionCounters};
pub use error::Error;
pub use fault::{Fault, ScheduledFault};
pub use preset::{PRESETS, Preset};
pub use proxy::{Proxy, ProxyHandle};
