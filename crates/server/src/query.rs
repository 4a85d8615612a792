//! Query strings and request headers read into typed values, each with an error that
//! names the parameter, what was sent, and what is accepted.

use std::time::Duration;

use pushbench_protocol::wire::Cursor;

use crate::reply::ApiError;

/// The recognised query parameters. Unknown ones are ignored (browsers add cache busters).
#[derive(Debug, Default)]
pub struct Query<'a> {
    /// `since=N`.
    pub since: Option<&'a str>,
    /// `limit=M`.
    pub limit: Option<&'a str>,
    /// `wait=25s`.
    pub wait: Option<&'a str>,
    /// `format=text|binary`.
    pub format: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Splits `a=1&b=2`; the last of repeated keys wins.
    pub fn parse(q: Option<&'a str>) -> Query<'a> {
        let mut out = Query::default();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "since" => out.since = Some(v),
                "limit" => out.limit = Some(v),
                "wait" => out.wait = Some(v),
                "format" => out.format = Some(v),
                _ => {}
            }
        }
        out
    }

    /// The `since` cursor, if given.
    pub fn since(&self) -> Result<Option<u64>, ApiError> {
        self.since
            .map(|s| {
                Cursor::parse(s)
                    .map(|c| c.0)
                    .map_err(|e| ApiError::bad_request("bad_since", format!("since: {e}")))
            })
            .transpose()
    }

    /// `limit`, default 100, clamped to 1000; 0 or non-numbers are errors.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
                _ => Err(ApiError::bad_request(
                    "bad_limit",
                    format!(
                        "limit {s:?} is not a positive integer: use 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
                    ),
                )),
            },
        }
    }

    /// `wait`, clamped to `max`. `None` when absent (a short poll).
    pub fn wait(&self, max: Duration) -> Result<Option<Duration>, ApiError> {
        self.wait
            .map(|s| parse_wait(s).map(|d| d.min(max)))
            .transpose()
    }
}

/// Default `limit` of a poll.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` of a poll; larger values are clamped.
pub const MAX_LIMIT: usize = 1000;

/// `25s`, `25` (seconds), `500ms`, `1m`.
fn parse_wait(s: &str) -> Result<Duration, ApiError> {
    let err = || {
        ApiError::bad_request(
            "bad_wait",
            format!(
                "wait {s:?} is not a duration: use a non-negative number of seconds or milliseconds, such as 25s, 25 or 500ms (values above --max-wait are clamped)"
            ),
        )
    };
    let (num, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    if num.is_empty() || num.len() > 9 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = num.parse().map_err(|_| err())?;
    Ok(Duration::from_millis(n * unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits() {
        let max = Duration::from_secs(30);
        let w = |s: &str| Query::parse(Some(s)).wait(max);
        assert_eq!(w("wait=25s").ok().flatten(), Some(Duration::from_secs(25)));
        assert_eq!(
            w("wait=500ms").ok().flatten(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(w("wait=10").ok().flatten(), Some(Duration::from_secs(10)));
        assert_eq!(w("wait=5m").ok().flatten(), Some(max), "clamped");
        assert!(w("wait=-1").is_err());
        assert!(w("wait=abc").is_err());
        assert!(w("wait=99999999999999999999s").is_err());
        assert!(w("wait=").is_err());
        assert_eq!(w("since=3").ok().flatten(), None);
    }

    #[test]
    fn since_and_limit() {
        let q = Query::parse(Some("since=abc&limit=0&_=1"));
        assert!(q.since().is_err());
        assert!(q.limit().is_err());
        let q = Query::parse(Some("since=7&limit=5000"));
        assert_eq!(q.since().ok().flatten(), Some(7));
        assert_eq!(q.limit().ok(), Some(MAX_LIMIT));
    }
}
