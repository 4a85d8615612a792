//! What to impair: one direction's link ([`LinkConfig`]), the whole proxy
//! ([`Impairment`]) and the [`Bandwidth`] unit with its `1mbit`-style parsing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// A link rate in bits per second (SI prefixes: 1 kbit = 1000 bit, as tc and ITU use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth {
    bits_per_second: u64,
}

impl Bandwidth {
    /// A rate of `bits_per_second`; must be positive to be valid in an [`Impairment`].
    pub const fn from_bits_per_second(bits_per_second: u64) -> Self {
        Self { bits_per_second }
    }

    /// A rate of `kbit` kilobits (1000 bits) per second.
    pub const fn from_kbit(kbit: u64) -> Self {
        Self::from_bits_per_second(kbit * 1000)
    }

    /// A rate of `mbit` megabits (10^6 bits) per second.
    pub const fn from_mbit(mbit: u64) -> Self {
        Self::from_bits_per_second(mbit * 1_000_000)
    }

    /// The rate in bits per second.
    pub const fn bits_per_second(self) -> u64 {
        self.bits_per_second
    }

    /// How long `bytes` take to serialize at this rate (rounded up to the nanosecond).
    pub fn transmit_time(self, bytes: usize) -> Duration {
        let bps = u128::from(self.bits_per_second.max(1));
        let nanos = (bytes as u128 * 8 * 1_000_000_000).div_ceil(bps);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl FromStr for Bandwidth {
    type Err = Error;

    /// Parses `<number><unit>` with unit `bit`, `kbit`, `mbit` or `gbit` (case
    /// insensitive, optional `/s`, optional space), e.g. `1mbit`, `1.5 Mbit/s`.
    /// `bps`-style units are rejected: tc reads them as bytes, most people as bits.
    fn from_str(input: &str) -> Result<Self, Error> {
        let err = |reason: &str| Error::Bandwidth {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let lower = input.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix("/s").unwrap_or(&lower);
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        let (number, unit) = lower.split_at(split);
        let number: f64 = number.parse().map_err(|_| err("not a number"))?;
        let multiplier: f64 = match unit.trim() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            u if u.ends_with("bps") || u.ends_with('b') => {
                return Err(err(
                    "byte-or-bit-ambiguous unit; use bit, kbit, mbit or gbit (bits per second)",
                ));
            }
            _ => return Err(err("unknown unit")),
        };
        let bits = number * multiplier;
        if !bits.is_finite() || !(1.0..=1e12).contains(&bits) {
            return Err(err("must be between 1bit and 1000gbit"));
        }
        Ok(Self::from_bits_per_second(bits.round() as u64))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_second;
        for (unit, scale) in [
            ("gbit", 1_000_000_000u64),
            ("mbit", 1_000_000),
            ("kbit", 1000),
        ] {
            if b >= scale {
                return if b % scale == 0 {
                    write!(f, "{}{unit}", b / scale)
                } else {
                    let value = format!("{:.3}", b as f64 / scale as f64);
                    write!(f, "{}{unit}", value.trim_end_matches('0'))
                };
            }
        }
        write!(f, "{b}bit")
    }
}

/// Impairment of one direction of every connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way delay added to every segment (propagation).
    pub latency: Duration,
    /// Each segment's delay is drawn uniformly from `latency ± jitter` (floored at
    /// zero), independently per connection; bytes are still never reordered.
    pub jitter: Duration,
    /// Rate of each connection's own bottleneck (a pacing token bucket); `None`: unlimited.
    pub bandwidth: Option<Bandwidth>,
    /// Rate of one bottleneck shared by every connection in this direction; `None`: none.
    pub shared_bandwidth: Option<Bandwidth>,
    /// Probability in `[0, 1)` that a segment is lost and must be retransmitted
    /// (modelled as a stall of one RTO, doubling per repeated loss).
    pub loss: f64,
}

impl LinkConfig {
    /// A link that adds nothing.
    pub const NONE: Self = Self {
        latency: Duration::ZERO,
        jitter: Duration::ZERO,
        bandwidth: None,
        shared_bandwidth: None,
        loss: 0.0,
    };

    /// True when this direction needs segmenting (rate or loss act per segment).
    pub(crate) fn segments(&self) -> bool {
        self.bandwidth.is_some() || self.shared_bandwidth.is_some() || self.loss > 0.0
    }

    fn validate(&self, direction: &str) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.loss) || self.loss.is_nan() {
            return Err(Error::Invalid(format!(
                "{direction} loss {} is outside [0, 1); give a probability such as 0.01 for 1 %",
                self.loss
            )));
        }
        for (what, bw) in [
            ("bandwidth", self.bandwidth),
            ("shared bandwidth", self.shared_bandwidth),
        ] {
            if bw.is_some_and(|b| b.bits_per_second() == 0) {
                return Err(Error::Invalid(format!(
                    "{direction} {what} is zero; leave it unset for an unlimited link"
                )));
            }
        }
        Ok(())
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::NONE
    }
}

impl fmt::Display for LinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "latency {}", humantime::format_duration(self.latency))?;
        if !self.jitter.is_zero() {
            write!(f, " ± {}", humantime::format_duration(self.jitter))?;
        }
        match self.bandwidth {
            Some(b) => write!(f, ", {b} per connection")?,
            None => write!(f, ", unlimited")?,
        }
        if let Some(b) = self.shared_bandwidth {
            write!(f, ", {b} shared")?;
        }
        if self.loss > 0.0 {
            write!(f, ", loss {}%", self.loss * 100.0)?;
        }
        Ok(())
    }
}

/// Everything the proxy applies: one [`LinkConfig`] per direction plus the TCP
/// model's constants and the memory bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Client to server.
    pub up: LinkConfig,
    /// Server to client.
    pub down: LinkConfig,
    /// Retransmission timeout of the loss model (Linux's minimum RTO is 200 ms).
    pub rto: Duration,
    /// Segment size for rate and loss (an Ethernet MSS by default, 1460 bytes).
    pub segment_bytes: usize,
    /// Most bytes queued per connection per direction before the proxy stops reading
    /// from the sender (backpressure); also the depth of the bottleneck's buffer.
    pub queue_bytes: usize,
    /// Charge connection set-up one round trip (`up.latency + down.latency`, no
    /// jitter): the kernel completes the client's TCP handshake with the proxy at
    /// once, so without this a new connection's first bytes would arrive one RTT
    /// earlier than on a real link. On by default.
    pub handshake: bool,
}

impl Impairment {
    /// Default retransmission timeout: Linux `TCP_RTO_MIN`.
    pub const DEFAULT_RTO: Duration = Duration::from_millis(200);
    /// Default segment size: the TCP MSS on a 1500-byte Ethernet MTU.
    pub const DEFAULT_SEGMENT_BYTES: usize = 1460;
    /// Default per-direction queue bound: 64 KiB, a typical TCP window's worth.
    pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

    /// No impairment: a plain forwarding proxy.
    pub const fn none() -> Self {
        Self::symmetric(LinkConfig::NONE)
    }

    /// The same link settings in both directions, default TCP constants.
    pub const fn symmetric(link: LinkConfig) -> Self {
        Self {
            up: link,
            down: link,
            rto: Self::DEFAULT_RTO,
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            queue_bytes: Self::DEFAULT_QUEUE_BYTES,
            handshake: true,
        }
    }

    /// The named preset (`lan`, `wifi`, `3g`, `satellite`, `lossy`); see [`crate::PRESETS`].
    pub fn preset(name: &str) -> Result<Self, Error> {
        crate::preset::find(name)
            .map(|p| p.impairment)
            .ok_or_else(|| Error::UnknownPreset(name.to_owned()))
    }

    /// Checks ranges and consistency; [`crate::Proxy::start`] calls it.
    pub fn validate(&self) -> Result<(), Error> {
        self.up.validate("up")?;
        self.down.validate("down")?;
        if (self.up.loss > 0.0 || self.down.loss > 0.0) && self.rto.is_zero() {
            return Err(Error::Invalid(
                "loss needs a positive rto (e.g. 200ms)".to_owned(),
            ));
        }
        if !(64..=65_536).contains(&self.segment_bytes) {
            return Err(Error::Invalid(format!(
                "segment size {} is outside 64..=65536 bytes",
                self.segment_bytes
            )));
        }
        if self.queue_bytes < crate::connection::READ_CHUNK || self.queue_bytes > 1 << 30 {
            return Err(Error::Invalid(format!(
                "queue size {} is outside {}..=1GiB bytes",
                self.queue_bytes,
                crate::connection::READ_CHUNK
            )));
        }
        Ok(())
    }
}

impl Default for Impairment {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "up: {}; down: {}", self.up, self.down)?;
        if self.up.loss > 0.0 || self.down.loss > 0.0 {
            write!(f, "; rto {:?}", self.rto)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bandwidth_units() {
        assert_eq!(
            "1mbit".parse::<Bandwidth>().unwrap().bits_per_second(),
            1_000_000
        );
        assert_eq!(
            "1.5 Mbit/s".parse::<Bandwidth>().unwrap().bits_per_second(),
            1_500_000
        );
        assert_eq!(
            "500kbit".parse::<Bandwidth>().unwrap().bits_per_second(),
            500_000
        );
        assert_eq!(
            "64000bit".parse::<Bandwidth>().unwrap().bits_per_second(),
            64_000
        );
        assert_eq!("2gbit".parse::<Bandwidth>().unwrap().to_string(), "2gbit");
        assert_eq!(
            Bandwidth::from_bits_per_second(1_440_000).to_string(),
            "1.44mbit"
        );
        for bad in [
            "",
            "1",
            "mbit",
            "1mbps",
            "1MB",
            "0bit",
            "-1mbit",
            "1 furlong",
        ] {
            assert!(
                bad.parse::<Bandwidth>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn transmit_time_is_exact() {
        let b = Bandwidth::from_mbit(1);
        assert_eq!(b.transmit_time(125_000), Duration::from_secs(1));
        assert_eq!(b.transmit_time(1460), Duration::from_micros(11_680));
    }

    #[test]
    fn validation_rejects_bad_values() {
        let mut i = Impairment::none();
        assert!(i.validate().is_ok());
        i.up.loss = 1.0;
        assert!(i.validate().is_err());
        i.up.loss = 0.1;
        i.rto = Duration::ZERO;
        assert!(i.validate().is_err());
        let mut i = Impairment::none();
        i.down.bandwidth = Some(Bandwidth::from_bits_per_second(0));
        assert!(i.validate().is_err());
    }
}
