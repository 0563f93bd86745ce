//! Retry policy: exponential backoff with jitter, honouring the server's
//! `retry-after-ms` / `Retry-After`. elspeth's one policy and parser (from
//! `elspeth-core`, shared with the tracing exporters); the LLM clients use
//! [`RetryPolicy::new`], where the server's hint replaces the backoff.
//!
//! ```
//! use elspeth_runtime::clients::RetryPolicy;
//! use std::time::Duration;
//! let p = RetryPolicy::new(3);
//! let d = p.backoff(2);
//! assert!(d >= p.base_delay && d <= p.base_delay * 2);
//! ```
//!
//! ```
//! use elspeth_runtime::clients::retry::parse_retry_after;
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! let now = UNIX_EPOCH + Duration::from_secs(784111777);
//! assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
//! assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), Some(Duration::from_secs(3)));
//! assert_eq!(parse_retry_after("soon", now), None);
//! ```

pub use elspeth_core::http::{
    MAX_RETRY_AFTER, RetryPolicy, ServerHint, parse_retry_after, parse_retry_after_ms,
    retry_hint as retry_after,
};
