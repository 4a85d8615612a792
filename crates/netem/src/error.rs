//! The one error type of this crate: bad configuration, bad fault specs, socket errors.

/// Everything that can go wrong configuring or starting a proxy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bandwidth string could not be parsed.
    #[error(
        "invalid bandwidth {input:?}: {reason}; write a number and a unit, e.g. 1mbit, 500kbit, 2.5gbit, 64000bit"
    )]
    Bandwidth {
        /// What was given.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// No preset has this name.
    #[error("unknown network preset {0:?}; choose one of lan, wifi, 3g, satellite, lossy")]
    UnknownPreset(String),
    /// The impairment settings are inconsistent or out of range.
    #[error("invalid impairment: {0}")]
    Invalid(String),
    /// A fault spec could not be parsed.
    #[error(
        "invalid fault {input:?}: {reason}; write AT:KIND[:DURATION], e.g. 10s:blackhole:5s, 20s:reset, 30s:flap=2s/500ms:10s"
    )]
    Fault {
        /// What was given.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A socket operation failed while starting.
    #[error("proxy socket error: {0}")]
    Io(#[from] std::io::Error),
}
