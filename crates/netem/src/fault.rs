//! Faults: what can be done to the link at run time ([`Fault`]), a timeline entry
//! ([`ScheduledFault`], parsed from `10s:blackhole:5s`), and the state that every
//! connection task watches ([`FaultState`], in a `tokio::sync::watch` channel so a
//! change reaches every task at once without a queue per connection).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// Something that happens to the link, triggered through [`crate::ProxyHandle::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Half-open link: nothing is forwarded either way, and no FIN and no RST either,
    /// for existing and new connections (new ones are accepted by the kernel but the
    /// upstream is not dialled), until [`crate::ProxyHandle::lift`]. Held bytes are
    /// delivered after the lift, as TCP retransmission would.
    Blackhole,
    /// Every current connection is reset (RST to both client and server). Instant.
    Reset,
    /// The link goes down every `period` for `down`: at the start of each down phase
    /// every connection is reset, and connections accepted while down are reset at
    /// once (connection refused). Until lifted.
    Flap {
        /// Time from one down phase's start to the next.
        period: Duration,
        /// Length of each down phase; shorter than `period`.
        down: Duration,
    },
}

impl Fault {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Fault::Flap { period, down } = *self {
            if down.is_zero() || down >= period {
                return Err(Error::Invalid(format!(
                    "flap down time {down:?} must be positive and shorter than its period {period:?}"
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Blackhole => f.write_str("blackhole"),
            Fault::Reset => f.write_str("reset"),
            Fault::Flap { period, down } => write!(
                f,
                "flap={}/{}",
                humantime::format_duration(*period),
                humantime::format_duration(*down)
            ),
        }
    }
}

impl FromStr for Fault {
    type Err = Error;

    /// `blackhole`, `reset` or `flap=PERIOD/DOWN` (e.g. `flap=2s/500ms`).
    fn from_str(input: &str) -> Result<Self, Error> {
        let err = |reason: String| Error::Fault {
            input: input.to_owned(),
            reason,
        };
        let fault = match input.trim() {
            "blackhole" => Fault::Blackhole,
            "reset" => Fault::Reset,
            other => {
                let spec = other.strip_prefix("flap=").ok_or_else(|| {
                    err(format!(
                        "unknown fault kind {other:?}; use blackhole, reset or flap=PERIOD/DOWN"
                    ))
                })?;
                let (period, down) = spec
                    .split_once('/')
                    .ok_or_else(|| err("flap needs PERIOD/DOWN, e.g. flap=2s/500ms".to_owned()))?;
                let parse = |d: &str| {
                    humantime::parse_duration(d.trim()).map_err(|e| err(format!("{d:?}: {e}")))
                };
                Fault::Flap {
                    period: parse(period)?,
                    down: parse(down)?,
                }
            }
        };
        fault.validate().map_err(|e| err(e.to_string()))?;
        Ok(fault)
    }
}

/// One entry of a fault timeline: apply `fault` at `at` (from the timeline's start)
/// and lift it after `duration` (never, for `None`; a reset has no duration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduledFault {
    /// Offset from the timeline's start.
    pub at: Duration,
    /// What happens.
    pub fault: Fault,
    /// How long it lasts before [`crate::ProxyHandle::lift`]; `None`: until the end.
    pub duration: Option<Duration>,
}

impl FromStr for ScheduledFault {
    type Err = Error;

    /// `AT:KIND[:DURATION]`, e.g. `10s:blackhole:5s`, `20s:reset`, `30s:flap=2s/500ms:10s`.
    fn from_str(input: &str) -> Result<Self, Error> {
        let err = |reason: String| Error::Fault {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.trim().split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(err("expected 2 or 3 parts separated by ':'".to_owned()));
        }
        let duration =
            |d: &str| humantime::parse_duration(d.trim()).map_err(|e| err(format!("{d:?}: {e}")));
        let at = duration(parts[0])?;
        let fault: Fault = parts[1].parse()?;
        let duration = parts.get(2).map(|d| duration(d)).transpose()?;
        if fault == Fault::Reset && duration.is_some() {
            return Err(err(
                "a reset is instantaneous and takes no duration".to_owned()
            ));
        }
        Ok(Self {
            at,
            fault,
            duration,
        })
    }
}

impl fmt::Display for ScheduledFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", humantime::format_duration(self.at), self.fault)?;
        if let Some(d) = self.duration {
            write!(f, ":{}", humantime::format_duration(d))?;
        }
        Ok(())
    }
}

/// What every connection task obeys right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultState {
    /// Forward nothing, signal nothing.
    pub blackhole: bool,
    /// Reset connections as soon as they are accepted (a flap's down phase).
    pub refuse: bool,
    /// Bumped by every reset; a connection that sees it change resets itself.
    pub reset_epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timeline_entries() {
        let f: ScheduledFault = "10s:blackhole:5s".parse().unwrap();
        assert_eq!(
            f,
            ScheduledFault {
                at: Duration::from_secs(10),
                fault: Fault::Blackhole,
                duration: Some(Duration::from_secs(5)),
            }
        );
        let f: ScheduledFault = "1500ms:reset".parse().unwrap();
        assert_eq!(f.fault, Fault::Reset);
        assert_eq!(f.at, Duration::from_millis(1500));
        let f: ScheduledFault = "30s:flap=2s/500ms:10s".parse().unwrap();
        assert_eq!(
            f.fault,
            Fault::Flap {
                period: Duration::from_secs(2),
                down: Duration::from_millis(500)
            }
        );
        assert_eq!(f.to_string(), "30s:flap=2s/500ms:10s");
        for bad in [
            "",
            "10s",
            "10s:melt",
            "10s:reset:5s",
            "x:blackhole",
            "1s:flap=1s/2s",
            "1s:flap=2s",
        ] {
            assert!(
                bad.parse::<ScheduledFault>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }
}
