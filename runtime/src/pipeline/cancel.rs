//! Stopping a run: first "stop taking rows" (Ctrl-C once), then "cancel
//! what is in flight" (Ctrl-C twice, or the grace period running out).

use std::sync::Arc;

use tokio::sync::watch;

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

    /// Stop taking rows; let calls in flight finish.
    pub fn cancel(&self) {
        self.raise(STOPPING);
    }

    /// Cancel the calls in flight too (implies [`cancel`](Self::cancel)).
    pub fn abort(&self) {
        self.raise(ABORTED);
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
}
