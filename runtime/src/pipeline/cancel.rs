//! Stopping a run: first "stop taking rows" (Ctrl-C once, SIGTERM, SIGHUP,
//! or a fail-fast breaker), then "cancel what is in flight" (a second
//! signal, or the grace period running out). The first stop records a
//! [`StopReason`] that the [`RunSummary`](super::RunSummary) reports.

use std::sync::{Arc, Mutex};

use elspeth_telemetry::TransformLabel;
use tokio::sync::watch;

use crate::transform::RowError;

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`docker stop`, Kubernetes, systemd).
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
}

impl StopSignal {
    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
        }
    }

    /// The POSIX signal number (the shell's exit code of a process it
    /// killed is 128 + this).
    pub fn number(self) -> u8 {
        match self {
            Self::Interrupt => 2,
            Self::Terminate => 15,
            Self::Hangup => 1,
        }
    }
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a run stopped before its source was exhausted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`CancelToken::cancel`] was called without a reason (a program
    /// embedding the runtime).
    Cancelled,
    /// A signal ([`StopSignal`]).
    Signal(StopSignal),
    /// A transform got an authentication error (HTTP 401 / 403): every
    /// further call would fail the same way.
    AuthFailed {
        /// The transform.
        transform: TransformLabel,
        /// Its error.
        error: RowError,
    },
    /// A transform's last `count` rows all failed (after their retries).
    ConsecutiveFailures {
        /// The transform.
        transform: TransformLabel,
        /// How many rows failed in a row (`fail_fast.consecutive_failures`).
        count: u32,
        /// The last of their errors.
        last_error: RowError,
    },
    /// Taking one more row could have passed the run's budget: the rows
    /// already taken were finished and written, no other row was taken.
    Budget {
        /// The budget, USD.
        limit_usd: f64,
        /// What the run had spent when it stopped taking rows (replies
        /// from the run store included at what they cost when paid).
        spent_usd: f64,
    },
}

impl StopReason {
    /// Whether a fail-fast breaker stopped the run (not a person or a
    /// program asking it to stop).
    pub fn is_breaker(&self) -> bool {
        matches!(
            self,
            Self::AuthFailed { .. } | Self::ConsecutiveFailures { .. }
        )
    }

    /// The transform a breaker stopped the run for.
    pub fn transform(&self) -> Option<&TransformLabel> {
        match self {
            Self::AuthFailed { transform, .. } | Self::ConsecutiveFailures { transform, .. } => {
                Some(transform)
            }
            Self::Cancelled | Self::Signal(_) | Self::Budget { .. } => None,
        }
    }

    /// The error a breaker tripped on.
    pub fn last_error(&self) -> Option<&RowError> {
        match self {
            Self::AuthFailed { error, .. } => Some(error),
            Self::ConsecutiveFailures { last_error, .. } => Some(last_error),
            Self::Cancelled | Self::Signal(_) | Self::Budget { .. } => None,
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = |e: &RowError| {
            e.http_status
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default()
        };
        match self {
            Self::Cancelled => f.write_str("the run was cancelled"),
            Self::Signal(signal) => write!(f, "the run was interrupted ({signal})"),
            Self::AuthFailed { transform, error } => write!(
                f,
                "{transform} got an authentication error{}: {}",
                status(error),
                error.message
            ),
            Self::ConsecutiveFailures {
                transform,
                count,
                last_error,
            } => write!(
                f,
                "the last {count} rows of {transform} all failed; last error{}: {}",
                status(last_error),
                last_error.message
            ),
            Self::Budget {
                limit_usd,
                spent_usd,
            } => write!(
                f,
                "the budget of ${limit_usd:.2} was reached: ${spent_usd:.4} spent, and the next rows could have passed it"
            ),
        }
    }
}

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const ABORTED: u8 = 2;

/// A two-level cancellation signal shared by everything in a run. Cheap to clone.
///
/// ```
/// use elspeth_runtime::pipeline::CancelToken;
/// let token = CancelToken::new();
/// assert!(!token.is_cancelled());
/// token.cancel();
/// assert!(token.is_cancelled() && !token.is_aborted());
/// token.abort();
/// assert!(token.is_aborted());
/// ```
#[derive(Debug, Clone)]
pub struct CancelToken {
    state: Arc<watch::Sender<u8>>,
    /// The first stop's reason: later ones (a signal after a breaker
    /// tripped, a second breaker) do not replace it.
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(RUNNING)),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    fn raise(&self, level: u8) {
        self.state.send_if_modified(|s| {
            if *s < level {
                *s = level;
                true
            } else {
                false
            }
        });
    }

    /// Stop taking rows; let calls in flight finish. The reason is
    /// [`StopReason::Cancelled`] unless one was given before.
    pub fn cancel(&self) {
        self.cancel_with(StopReason::Cancelled);
    }

    /// Stop taking rows because of `reason`; let calls in flight finish.
    /// Only the first reason is kept. Returns whether this call stopped the
    /// run (false when it was stopped already).
    pub fn cancel_with(&self, reason: StopReason) -> bool {
        let first = {
            let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(reason);
                true
            } else {
                false
            }
        };
        // The reason is set before the level is raised, so whoever wakes on
        // the level finds it.
        self.raise(STOPPING);
        first
    }

    /// Cancel the calls in flight too (implies [`cancel`](Self::cancel)).
    pub fn abort(&self) {
        {
            let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(StopReason::Cancelled);
        }
        self.raise(ABORTED);
    }

    /// Why the run was stopped, once it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether [`cancel`](Self::cancel) or [`abort`](Self::abort) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.state.borrow() >= STOPPING
    }

    /// Whether [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        *self.state.borrow() >= ABORTED
    }

    async fn reached(&self, level: u8) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| *s >= level).await;
    }

    /// Resolves once the run is cancelled.
    pub async fn cancelled(&self) {
        self.reached(STOPPING).await;
    }

    /// Resolves once in-flight work must be cancelled.
    pub async fn aborted(&self) {
        self.reached(ABORTED).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_on_each_level() {
        let token = CancelToken::new();
        let t = token.clone();
        let soft = tokio::spawn(async move { t.cancelled().await });
        let t = token.clone();
        let hard = tokio::spawn(async move { t.aborted().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!soft.is_finished());
        token.cancel();
        soft.await.unwrap();
        assert!(!hard.is_finished());
        token.cancel();
        token.abort();
        hard.await.unwrap();
        // Already reached: returns at once.
        token.cancelled().await;
        token.aborted().await;
    }

    #[test]
    fn the_first_reason_is_kept() {
        let token = CancelToken::new();
        assert_eq!(token.stop_reason(), None);
        assert!(token.cancel_with(StopReason::Signal(StopSignal::Terminate)));
        assert!(!token.cancel_with(StopReason::Signal(StopSignal::Interrupt)));
        token.cancel();
        token.abort();
        assert_eq!(
            token.stop_reason(),
            Some(StopReason::Signal(StopSignal::Terminate))
        );
        assert!(token.is_aborted());
        // An abort without a cancel still records a reason.
        let token = CancelToken::new();
        token.abort();
        assert_eq!(token.stop_reason(), Some(StopReason::Cancelled));
    }

    #[test]
    fn reasons_read_well() {
        let transform = TransformLabel {
            index: 0,
            plugin: "azure_llm".into(),
        };
        let mut error = RowError::new("llm", "Azure OpenAI answered HTTP 401 (check the API key)");
        error.http_status = Some(401);
        let auth = StopReason::AuthFailed {
            transform: transform.clone(),
            error: error.clone(),
        };
        assert!(auth.is_breaker());
        assert_eq!(auth.transform(), Some(&transform));
        assert_eq!(
            auth.to_string(),
            "transforms[0] (azure_llm) got an authentication error (HTTP 401): Azure OpenAI answered HTTP 401 (check the API key)"
        );
        let run = StopReason::ConsecutiveFailures {
            transform,
            count: 25,
            last_error: RowError::new("parse", "not JSON"),
        };
        assert_eq!(
            run.to_string(),
            "the last 25 rows of transforms[0] (azure_llm) all failed; last error: not JSON"
        );
        let signal = StopReason::Signal(StopSignal::Hangup);
        assert!(!signal.is_breaker() && signal.last_error().is_none());
        assert_eq!(signal.to_string(), "the run was interrupted (SIGHUP)");
        assert_eq!(
            (
                StopSignal::Interrupt.number(),
                StopSignal::Terminate.number(),
                StopSignal::Hangup.number()
            ),
            (2, 15, 1)
        );
    }
}
