//! What a backend does with one batch, and how HTTP answers are classified.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::record::SpanRecord;
use crate::sink::BoxFuture;

/// The result of sending one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Every span was accepted.
    Accepted,
    /// Some spans were accepted: the ones at `retry` (indices into the batch)
    /// may be retried, `rejected` more were refused for good.
    Partial {
        /// Indices of spans worth retrying.
        retry: Vec<usize>,
        /// Spans refused for good.
        rejected: usize,
    },
    /// Try again later: 408, 429, 5xx, timeout, connection error.
    Retry {
        /// Short reason for logs (`HTTP 503`, `connection refused`, ...).
        reason: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// 401 / 403: the credentials are wrong. The exporter disables itself.
    Unauthorized {
        /// The status code.
        status: u16,
    },
    /// 413: the request was too large.
    TooLarge,
    /// Any other refusal (400, 404, ...): the batch is counted as failed.
    Rejected {
        /// The status code.
        status: u16,
        /// Short reason for logs.
        reason: String,
    },
}

/// A tracing backend: turns a batch of spans into one request and reports
/// what the backend answered. Implemented by the Langfuse and Application
/// Insights exporters; the shared [`Exporter`](super::Exporter) does the
/// queueing, batching, retries, splitting and counting.
pub trait Transport: Send + Sync + 'static {
    /// Label for logs and summaries; never a secret.
    fn label(&self) -> String;

    /// What to tell the user when the backend answers 401/403.
    fn auth_hint(&self) -> String;

    /// Sends `batch` once. `truncate_to` is `Some(limit)` after a 413 for a
    /// single span: every attribute value longer than `limit` bytes must be
    /// shortened and the span marked as truncated.
    fn send<'a>(
        &'a self,
        batch: &'a [SpanRecord],
        truncate_to: Option<usize>,
    ) -> BoxFuture<'a, SendOutcome>;

    /// Sees every batch once, when it leaves the queue (before any retry).
    /// Application Insights feeds live metrics from here.
    fn observe(&self, batch: &[SpanRecord]) {
        let _ = batch;
    }

    /// Called once when the exporter shuts down.
    fn on_shutdown(&self) {}
}

/// Classifies a non-success HTTP status (`None` for 2xx).
///
/// 408, 429, 439 (Application Insights quota) and 5xx are retried (with
/// `Retry-After` when given); 401/403 disable the exporter; 413 splits the
/// batch; every other status is a final refusal.
pub fn classify_status(status: StatusCode, headers: &HeaderMap) -> Option<SendOutcome> {
    let code = status.as_u16();
    if status.is_success() {
        return None;
    }
    Some(match code {
        401 | 403 => SendOutcome::Unauthorized { status: code },
        413 => SendOutcome::TooLarge,
        408 | 429 | 439 | 500..=599 => SendOutcome::Retry {
            reason: format!("HTTP {code}"),
            retry_after: headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| elspeth_core::http::parse_retry_after(v, SystemTime::now())),
        },
        _ => SendOutcome::Rejected {
            status: code,
            reason: format!("HTTP {code}"),
        },
    })
}

/// Classifies a transport error (connection refused or reset, timeout,
/// broken body): always worth a retry. The reason never contains the URL's
/// query or credentials (reqwest errors are printed without the URL).
pub fn classify_reqwest_error(error: &reqwest::Error) -> SendOutcome {
    let kind = if error.is_timeout() {
        "request timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "connection broken while reading the answer"
    } else {
        "request failed"
    };
    // The innermost cause ("connection refused", "connection reset"), not
    // reqwest's own text, which repeats the URL.
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    // An error without a cause is reqwest's own text, URL included.
    let detail = elspeth_core::redact::url(&detail);
    SendOutcome::Retry {
        reason: format!("{kind}: {detail}"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let mut h = HeaderMap::new();
        assert_eq!(classify_status(StatusCode::OK, &h), None);
        assert_eq!(
            classify_status(StatusCode::UNAUTHORIZED, &h),
            Some(SendOutcome::Unauthorized { status: 401 })
        );
        assert_eq!(
            classify_status(StatusCode::PAYLOAD_TOO_LARGE, &h),
            Some(SendOutcome::TooLarge)
        );
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(SendOutcome::Retry {
                reason: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(2))
            })
        );
        assert!(matches!(
            classify_status(StatusCode::BAD_REQUEST, &h),
            Some(SendOutcome::Rejected { status: 400, .. })
        ));
    }
}
