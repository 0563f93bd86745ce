//! An Application Insights ingestion endpoint: `POST /v2/track` and
//! `/v2.1/track` (envelopes; also `//v2.1/track` and `//v2/track`, which
//! Microsoft's exporters post to when the connection string's
//! `IngestionEndpoint` ends with `/`, as the Azure portal shows it, and
//! which the real service accepts), plus the live metrics (QuickPulse) `ping` /
//! `post` endpoints.
//!
//! Like the real service it accepts a JSON array of envelopes (also a single
//! object or newline-delimited JSON), gzip or not, checks each envelope
//! (`name`, `time`, `iKey` equal to the resource's key, `data.baseType`) and
//! answers `{"itemsReceived": n, "itemsAccepted": m, "errors": [{"index",
//! "statusCode", "message"}]}` — 200 when all were accepted, 206 when some
//! were, 400 when none were. Scripted per-item failures
//! ([`AppInsightsMock::push_partial`]) exercise partial-success handling.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use elspeth_mock::appinsights::AppInsightsMock;
//! let ai = AppInsightsMock::spawn("00000000-0000-0000-0000-000000000000").await?;
//! let cs = ai.connection_string(); // tracing.connection_string
//! // ... run ...
//! for envelope in ai.envelopes() {
//!     println!("{}", envelope["data"]["baseData"]["type"]);
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::kept::Kept;
use crate::otlp::{BODY_LIMIT, RecordedRequest, Running, lock, record};
use crate::server::{FaultPlan, MockServer};

/// An Application Insights resource. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct AppInsightsMock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppInsightsMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInsightsMock").finish_non_exhaustive()
    }
}

struct Inner {
    instrumentation_key: String,
    faults: FaultPlan,
    max_body: Mutex<Option<usize>>,
    partial: Mutex<VecDeque<Vec<(usize, u16)>>>,
    subscribed: AtomicBool,
    requests: Kept<RecordedRequest>,
    envelopes: Kept<Value>,
    live: Kept<RecordedRequest>,
    /// Accepted `RemoteDependencyData` envelopes, kept or not.
    dependency_total: AtomicUsize,
}

impl AppInsightsMock {
    /// A resource with this instrumentation key.
    pub fn new(instrumentation_key: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                instrumentation_key: instrumentation_key.into(),
                faults: FaultPlan::new(),
                max_body: Mutex::new(None),
                partial: Mutex::new(VecDeque::new()),
                subscribed: AtomicBool::new(false),
                requests: Kept::default(),
                envelopes: Kept::default(),
                live: Kept::default(),
                dependency_total: AtomicUsize::new(0),
            }),
        }
    }

    /// The routes: track (v2 and v2.1), QuickPulse ping/post, anything else
    /// a recorded 404.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2/track", post(track))
            .route("/v2.1/track", post(track))
            .route("//v2/track", post(track))
            .route("//v2.1/track", post(track))
            .route("/QuickPulseService.svc/ping", post(quick_pulse))
            .route("/QuickPulseService.svc/post", post(quick_pulse))
            .fallback(other)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.inner.clone())
    }

    /// Serves on `127.0.0.1:port` (0 = any free port).
    pub async fn start(&self, port: u16) -> std::io::Result<MockServer> {
        MockServer::start(self.router(), port).await
    }

    /// A new resource on any free port.
    pub async fn spawn(instrumentation_key: impl Into<String>) -> std::io::Result<Running<Self>> {
        let mock = Self::new(instrumentation_key);
        let server = mock.start(0).await?;
        Ok(Running { mock, server })
    }

    /// The connection string pointing at this mock served at `url`.
    pub fn connection_string_for(&self, url: &str) -> String {
        format!(
            "InstrumentationKey={};IngestionEndpoint={url}/;LiveEndpoint={url}/",
            self.inner.instrumentation_key
        )
    }

    /// Its fault plan for the track endpoint.
    pub fn faults(&self) -> &FaultPlan {
        &self.inner.faults
    }

    /// Answers 413 to track requests whose decompressed body is larger than
    /// `bytes`.
    pub fn set_max_body(&self, bytes: Option<usize>) -> &Self {
        *lock(&self.inner.max_body) = bytes;
        self
    }

    /// The next (non-faulted) track request refuses the envelopes at these
    /// indices with these statuses (e.g. `[(1, 429), (2, 400)]`).
    pub fn push_partial(&self, errors: Vec<(usize, u16)>) -> &Self {
        lock(&self.inner.partial).push_back(errors);
        self
    }

    /// What QuickPulse answers in `x-ms-qps-subscribed` (whether someone
    /// watches Live Metrics).
    pub fn set_live_subscribed(&self, subscribed: bool) -> &Self {
        self.inner.subscribed.store(subscribed, Ordering::Release);
        self
    }

    /// Keeps only the last `n` track requests, accepted envelopes and Live
    /// Metrics requests (each) instead of all of them, so a long-running
    /// mock (`elspeth mock-server`) does not grow without bound;
    /// [`dependency_count`](Self::dependency_count) still counts every
    /// accepted dependency. Default: all are kept.
    pub fn keep_last(&self, n: usize) -> &Self {
        self.inner.requests.keep_last(n);
        self.inner.envelopes.keep_last(n);
        self.inner.live.keep_last(n);
        self
    }

    /// Every track request, in order (faulted and rejected ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests.to_vec()
    }

    /// Every accepted envelope, in order.
    pub fn envelopes(&self) -> Vec<Value> {
        self.inner.envelopes.to_vec()
    }

    /// Number of accepted `RemoteDependencyData` envelopes (all of them,
    /// also those no longer kept: see [`keep_last`](Self::keep_last)).
    pub fn dependency_count(&self) -> usize {
        self.inner.dependency_total.load(Ordering::Relaxed)
    }

    /// Accepted envelopes whose `data.baseType` is `RemoteDependencyData`.
    pub fn dependencies(&self) -> Vec<Value> {
        self.envelopes().into_iter().filter(is_dependency).collect()
    }

    /// Live metrics requests (ping and post).
    pub fn live_requests(&self) -> Vec<RecordedRequest> {
        self.inner.live.to_vec()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        self.inner.requests.clear();
        self.inner.envelopes.clear();
        self.inner.live.clear();
        self.inner.dependency_total.store(0, Ordering::Relaxed);
    }
}

impl Running<AppInsightsMock> {
    /// `InstrumentationKey=...;IngestionEndpoint=<url>/;LiveEndpoint=<url>/`.
    pub fn connection_string(&self) -> String {
        self.mock.connection_string_for(&self.url())
    }
}

fn track_answer(
    status: StatusCode,
    received: usize,
    accepted: usize,
    errors: Vec<Value>,
) -> Response {
    (
        status,
        axum::Json(json!({"itemsReceived": received, "itemsAccepted": accepted, "errors": errors})),
    )
        .into_response()
}

/// Whether an envelope is a dependency (`data.baseType` is
/// `RemoteDependencyData`).
fn is_dependency(envelope: &Value) -> bool {
    envelope.pointer("/data/baseType").and_then(Value::as_str) == Some("RemoteDependencyData")
}

async fn track(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = match record(&method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => {
            return track_answer(
                StatusCode::BAD_REQUEST,
                0,
                0,
                vec![json!({"index": 0, "statusCode": 400, "message": e.to_string()})],
            );
        }
    };
    let response = answer(&inner, &recorded).await;
    recorded.status = response.status().as_u16();
    inner.requests.push(recorded);
    response
}

/// Why a track request or one of its envelopes is refused; the message is
/// the one the real endpoint gives.
#[derive(Debug, thiserror::Error)]
enum TrackError {
    /// The body is JSON, but neither an array nor an object.
    #[error("expected a JSON array of envelopes")]
    NotEnvelopes,
    /// A line of a newline-delimited body is not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A required envelope field is missing or empty.
    #[error("Field '{0}' on type 'Envelope' is required.")]
    MissingField(&'static str),
    /// The envelope's `iKey` is not the mock's instrumentation key.
    #[error("Invalid instrumentation key")]
    WrongKey,
    /// The envelope has no `data.baseType`.
    #[error("Field 'baseType' on type 'Data' is required.")]
    MissingBaseType,
}

/// Parses a JSON array, a single envelope or newline-delimited envelopes.
fn parse_items(body: &[u8]) -> Result<Vec<Value>, TrackError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(item @ Value::Object(_)) => Ok(vec![item]),
        Ok(_) => Err(TrackError::NotEnvelopes),
        Err(_) => body
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| serde_json::from_slice(line).map_err(TrackError::Json))
            .collect(),
    }
}

fn check_envelope(item: &Value, ikey: &str) -> Result<(), TrackError> {
    for field in ["name", "time"] {
        if item
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(TrackError::MissingField(field));
        }
    }
    match item.get("iKey").and_then(Value::as_str) {
        None => return Err(TrackError::MissingField("iKey")),
        Some(k)
            if !k
                .replace('-', "")
                .eq_ignore_ascii_case(&ikey.replace('-', "")) =>
        {
            return Err(TrackError::WrongKey);
        }
        Some(_) => {}
    }
    if item
        .pointer("/data/baseType")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(TrackError::MissingBaseType);
    }
    Ok(())
}

async fn answer(inner: &Inner, recorded: &RecordedRequest) -> Response {
    if let Some(fault) = inner.faults.apply().await {
        return fault;
    }
    if let Some(max) = *lock(&inner.max_body)
        && recorded.body.len() > max
    {
        return track_answer(StatusCode::PAYLOAD_TOO_LARGE, 0, 0, Vec::new());
    }
    let items = match parse_items(&recorded.body) {
        Ok(items) => items,
        Err(e) => {
            return track_answer(
                StatusCode::BAD_REQUEST,
                0,
                0,
                vec![json!({"index": 0, "statusCode": 400, "message": e.to_string()})],
            );
        }
    };
    let scripted: Vec<(usize, u16)> = lock(&inner.partial).pop_front().unwrap_or_default();
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let Some((_, status)) = scripted.iter().find(|(i, _)| *i == index) {
            errors.push(json!({"index": index, "statusCode": status, "message": format!("mock: item refused with {status}")}));
            continue;
        }
        match check_envelope(item, &inner.instrumentation_key) {
            Ok(()) => accepted.push(item.clone()),
            Err(e) => {
                errors.push(json!({"index": index, "statusCode": 400, "message": e.to_string()}))
            }
        }
    }
    let n_accepted = accepted.len();
    let dependencies = accepted.iter().filter(|e| is_dependency(e)).count();
    inner
        .dependency_total
        .fetch_add(dependencies, Ordering::Relaxed);
    inner.envelopes.extend(accepted);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else if n_accepted > 0 {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::BAD_REQUEST
    };
    track_answer(status, items.len(), n_accepted, errors)
}

async fn quick_pulse(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Ok(mut recorded) = record(&method, &uri, &headers, &body) {
        recorded.status = 200;
        inner.live.push(recorded);
    }
    let subscribed = if inner.subscribed.load(Ordering::Acquire) {
        "true"
    } else {
        "false"
    };
    (StatusCode::OK, [("x-ms-qps-subscribed", subscribed)]).into_response()
}

async fn other(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Ok(mut recorded) = record(&method, &uri, &headers, &body) {
        recorded.status = 404;
        inner.requests.push(recorded);
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}
