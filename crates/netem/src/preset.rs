//! Named presets and where their numbers come from. `latency` is one way, so a
//! source's round-trip or per-request latency is split evenly between up and down.
//! docs/netem.md carries the same table for users.

use std::time::Duration;

use crate::{Bandwidth, Impairment, LinkConfig};

/// A named, documented [`Impairment`].
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The name used in scenarios and on the command line.
    pub name: &'static str,
    /// What the preset stands for, in one line.
    pub description: &'static str,
    /// Where its numbers come from.
    pub source: &'static str,
    /// The settings.
    pub impairment: Impairment,
}

const fn link(latency_us: u64, jitter_us: u64, bandwidth_bps: u64, loss: f64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_micros(latency_us),
        jitter: Duration::from_micros(jitter_us),
        bandwidth: Some(Bandwidth::from_bits_per_second(bandwidth_bps)),
        shared_bandwidth: None,
        loss,
    }
}

const fn asymmetric(up: LinkConfig, down: LinkConfig) -> Impairment {
    let mut i = Impairment::symmetric(up);
    i.down = down;
    i
}

/// Every preset, in order of increasing pain.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "lan",
        description: "switched gigabit Ethernet: 1 Gbit/s each way, no added delay",
        source: "IEEE 802.3ab (1000BASE-T) line rate; LAN round trips (~0.1-0.5 ms) are below the proxy's 1 ms timer resolution, so none is added",
        impairment: Impairment::symmetric(link(0, 0, 1_000_000_000, 0.0)),
    },
    Preset {
        name: "wifi",
        description: "good Wi-Fi: 30 Mibit/s down, 15 Mibit/s up, 2 ms round trip",
        source: "Firefox DevTools throttling profile \"Wi-Fi\" (devtools/client/shared/components/throttling/profiles.js: download 30 MBps, upload 15 MBps with 1 M = 2^20 bit, latency 2 ms)",
        impairment: asymmetric(
            link(1_000, 0, 15 * 1024 * 1024, 0.0),
            link(1_000, 0, 30 * 1024 * 1024, 0.0),
        ),
    },
    Preset {
        name: "3g",
        description: "mid-tier mobile: 1.44 Mbit/s down, 675 kbit/s up, 562.5 ms round trip",
        source: "Chrome DevTools \"Fast 3G\" (renamed \"Slow 4G\" in 2024; front_end/core/sdk/NetworkManager.ts: download 1.6 Mbit/s x 0.9, upload 750 kbit/s x 0.9, latency 150 ms x 3.75), also Lighthouse's mobile throttling",
        impairment: asymmetric(
            link(281_250, 0, 675_000, 0.0),
            link(281_250, 0, 1_440_000, 0.0),
        ),
    },
    Preset {
        name: "satellite",
        description: "geostationary satellite: ~600 ms round trip, 25 Mbit/s down, 3 Mbit/s up",
        source: "RFC 2488 sec. 2 (GEO propagation 239.6-279 ms one way ground-satellite-ground, RTT up to ~558 ms) plus ground segment, rounded to 300 ms one way (twice ITU-T G.114's 150 ms planning limit for interactive use); rates: a 25/3 Mbit/s consumer GEO plan (HughesNet Gen5), the kind measured in the FCC Measuring Broadband America reports",
        impairment: asymmetric(
            link(300_000, 0, 3_000_000, 0.0),
            link(300_000, 0, 25_000_000, 0.0),
        ),
    },
    Preset {
        name: "lossy",
        description: "a poor path: 40 ms ± 10 ms each way, 2 % segment loss each way, 10 Mbit/s",
        source: "illustrative, not measured: loss 20x the ITU-T Y.1541 class 0/1 objective (IPLR 1e-3) and delay variation within its 50 ms IPDV objective; min RTO 200 ms as Linux (RFC 6298 allows 1 s)",
        impairment: Impairment::symmetric(link(40_000, 10_000, 10_000_000, 0.02)),
    },
];

/// The preset called `name` (case-insensitive).
pub(crate) fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_validates_and_is_found() {
        for p in PRESETS {
            p.impairment.validate().expect(p.name);
            assert_eq!(Impairment::preset(p.name).unwrap(), p.impairment);
        }
        assert!(Impairment::preset("carrier-pigeon").is_err());
        let g3 = Impairment::preset("3G").unwrap();
        assert_eq!(
            g3.up.latency + g3.down.latency,
            Duration::from_micros(562_500)
        );
    }
}
