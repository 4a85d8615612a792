//! The one error type of this crate: every variant names the file it concerns.

use std::path::PathBuf;

/// What went wrong while writing or reading a run folder.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be created, written, renamed or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be encoded or decoded.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// serde_json's error (it carries the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file does not have the expected shape.
    #[error("{}:{line}: {detail}", path.display())]
    Csv {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        detail: String,
    },
    /// The HdrHistogram interval log could not be written or read.
    #[error("{}: {detail}", path.display())]
    Hlog {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A chart or report page could not be drawn.
    #[error("{}: cannot draw: {detail}", path.display())]
    Render {
        /// The file being drawn.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }
}
