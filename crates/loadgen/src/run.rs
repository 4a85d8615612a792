//! One run: the timeline (warm-up, measured window, grace) and the record it returns.

use std::sync::Arc;

use pushbench_protocol::record::RunRecord;
use tokio_util::sync::CancellationToken;

use crate::{Progress, Scenario};

/// Where and how to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:40123`.
    pub base_url: String,
    /// True when the server runs in this process (recorded in the summary).
    pub embedded: bool,
}

/// Why a run could not produce results.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The base URL cannot be used.
    #[error("target URL {0:?} is not usable: give http://host:port (TLS is not supported)")]
    BadTarget(String),
    /// The server did not answer at all.
    #[error("cannot reach the server at {url}: {detail}; is it running?")]
    Unreachable {
        /// Base URL.
        url: String,
        /// The connect or HTTP error.
        detail: String,
    },
}

/// Runs the scenario. Cancelling `stop` ends the run early: results are still
/// returned, with `summary.partial = true`.
pub async fn run(
    scenario: &Scenario,
    options: RunOptions,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Result<RunRecord, LoadgenError> {
    let _ = (scenario, progress, stop);
    Err(LoadgenError::BadTarget(options.base_url))
}
