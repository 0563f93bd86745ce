//! Running a mock backend on 127.0.0.1, and the faults it can be told to inject.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A mock server bound on `127.0.0.1:<port>`; stops when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serves `router` on `127.0.0.1:port` (0 = any free port).
    pub async fn start(router: Router, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "mock server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One injected behaviour for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer with this status (and optional `Retry-After` seconds) and a
    /// small JSON error body.
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` header, in seconds.
        retry_after: Option<f64>,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Send the status line and headers, then break the connection.
    DropConnection,
}

impl Fault {
    /// A plain status fault.
    pub fn status(code: u16) -> Self {
        Self::Status {
            code,
            retry_after: None,
        }
    }
}

/// What a mock does to incoming requests: a script of faults taken one per
/// request, then a default, plus latency and a random failure rate.
///
/// ```
/// use elspeth_mock::server::{Fault, FaultPlan};
/// let plan = FaultPlan::new();
/// plan.push(Fault::status(429));
/// assert_eq!(plan.next(), Fault::status(429));
/// assert_eq!(plan.next(), Fault::None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    inner: Arc<Mutex<PlanState>>,
}

#[derive(Debug, Default)]
struct PlanState {
    script: VecDeque<Fault>,
    default: Option<Fault>,
    latency: Duration,
    failure_rate: f64,
}

impl FaultPlan {
    /// No faults, no latency.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a fault for the next request without one.
    pub fn push(&self, fault: Fault) -> &Self {
        self.state().script.push_back(fault);
        self
    }

    /// Queues `n` copies of `fault`.
    pub fn push_n(&self, fault: Fault, n: usize) -> &Self {
        let mut s = self.state();
        for _ in 0..n {
            s.script.push_back(fault.clone());
        }
        drop(s);
        self
    }

    /// The fault used once the script is empty (`None` = answer normally).
    pub fn set_default(&self, fault: Option<Fault>) -> &Self {
        self.state().default = fault;
        self
    }

    /// Latency added to every normal answer.
    pub fn set_latency(&self, latency: Duration) -> &Self {
        self.state().latency = latency;
        self
    }

    /// Latency added to every normal answer.
    pub fn latency(&self) -> Duration {
        self.state().latency
    }

    /// Fraction (0..=1) of otherwise normal requests answered with a 500.
    pub fn set_failure_rate(&self, rate: f64) -> &Self {
        self.state().failure_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Removes every scripted fault and the default.
    pub fn clear(&self) {
        let mut s = self.state();
        s.script.clear();
        s.default = None;
    }

    /// The fault for the next request.
    pub fn next(&self) -> Fault {
        let mut s = self.state();
        if let Some(f) = s.script.pop_front() {
            return f;
        }
        if let Some(f) = s.default.clone() {
            return f;
        }
        if s.failure_rate > 0.0 && fastrand::f64() < s.failure_rate {
            return Fault::status(500);
        }
        Fault::None
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the next fault: `Some(response)` to answer with instead of the
    /// normal one, `None` to answer normally (after sleeping any delay and
    /// the configured latency).
    pub async fn apply(&self) -> Option<Response> {
        let fault = self.next();
        let latency = self.latency();
        match fault {
            Fault::None => {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                None
            }
            Fault::Delay(d) => {
                tokio::time::sleep(d + latency).await;
                None
            }
            Fault::Status { code, retry_after } => Some(status_response(code, retry_after)),
            Fault::DropConnection => Some(broken_response()),
        }
    }
}

/// A JSON error answer with `code` and an optional `Retry-After`.
pub fn status_response(code: u16, retry_after: Option<f64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "error": {"code": code.to_string(), "message": format!("mock fault: HTTP {code}")}
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&format!("{secs}"))
    {
        response.headers_mut().insert("retry-after", v);
    }
    response
}

/// A response whose body fails at once: the client sees the connection break.
pub fn broken_response() -> Response {
    let stream = futures_stream_error();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn futures_stream_error()
-> impl futures_core_stream::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    futures_core_stream::once_err()
}

/// A tiny one-item error stream, without pulling in `futures-util`.
mod futures_core_stream {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub(super) use futures_core::Stream;

    pub(super) struct OnceErr(bool);

    pub(super) fn once_err() -> OnceErr {
        OnceErr(false)
    }

    impl Stream for OnceErr {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if self.0 {
                Poll::Ready(None)
            } else {
                self.0 = true;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "mock fault: connection dropped",
                ))))
            }
        }
    }
}
