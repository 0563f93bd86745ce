//! A Langfuse OTLP endpoint: `POST /api/public/otel/v1/traces`.
//!
//! Like the real server it gunzips the body, decodes the protobuf
//! `ExportTraceServiceRequest`, checks `Authorization: Basic
//! base64(public_key:secret_key)` (401 otherwise) and the headers the
//! Langfuse SDKs send (`x-langfuse-public-key` equal to the key,
//! `x-langfuse-sdk-name`, `x-langfuse-sdk-version`,
//! `x-langfuse-ingestion-version`, `content-type: application/x-protobuf`;
//! 400 when one is missing). Every request is recorded (headers and
//! decompressed body), faulted or not; any other path (e.g. the legacy
//! `/api/public/ingestion`) answers 404 and is recorded too, so tests can
//! prove it is never called.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use elspeth_mock::langfuse::LangfuseMock;
//! let langfuse = LangfuseMock::spawn("pk-lf-test", "sk-lf-test").await?;
//! let host = langfuse.url(); // tracing.host
//! langfuse.faults().push(elspeth_mock::Fault::status(429));
//! // ... run ...
//! let spans = langfuse.spans();
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::otlp::{BODY_LIMIT, DecodedSpan, RecordedRequest, Running, lock, record};
use crate::server::{FaultPlan, MockServer};

/// The OTLP traces path.
pub const TRACES_PATH: &str = "/api/public/otel/v1/traces";

/// A Langfuse OTLP endpoint for one project. Cheap to clone; clones share
/// state.
#[derive(Clone)]
pub struct LangfuseMock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LangfuseMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LangfuseMock")
            .field("public_key", &self.inner.public_key)
            .finish_non_exhaustive()
    }
}

struct Inner {
    public_key: String,
    secret_key: String,
    faults: FaultPlan,
    max_body: Mutex<Option<usize>>,
    requests: Mutex<Vec<RecordedRequest>>,
    decoded: Mutex<Vec<ExportTraceServiceRequest>>,
}

impl LangfuseMock {
    /// A project accepting these keys.
    pub fn new(public_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                public_key: public_key.into(),
                secret_key: secret_key.into(),
                faults: FaultPlan::new(),
                max_body: Mutex::new(None),
                requests: Mutex::new(Vec::new()),
                decoded: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The routes (OTLP traces; anything else is a recorded 404).
    pub fn router(&self) -> Router {
        Router::new()
            .route(TRACES_PATH, post(traces))
            .fallback(other)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.inner.clone())
    }

    /// Serves on `127.0.0.1:port` (0 = any free port).
    pub async fn start(&self, port: u16) -> std::io::Result<MockServer> {
        MockServer::start(self.router(), port).await
    }

    /// A new project on any free port.
    pub async fn spawn(
        public_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> std::io::Result<Running<Self>> {
        let mock = Self::new(public_key, secret_key);
        let server = mock.start(0).await?;
        Ok(Running { mock, server })
    }

    /// Its fault plan (slow answers, 429, 500, 401, 413, dropped connections).
    pub fn faults(&self) -> &FaultPlan {
        &self.inner.faults
    }

    /// Answers 413 to requests whose decompressed body is larger than
    /// `bytes` (`None`: no limit).
    pub fn set_max_body(&self, bytes: Option<usize>) -> &Self {
        *lock(&self.inner.max_body) = bytes;
        self
    }

    /// Every request received, in order (faulted and rejected ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// The accepted `ExportTraceServiceRequest`s, in order.
    pub fn export_requests(&self) -> Vec<ExportTraceServiceRequest> {
        lock(&self.inner.decoded).clone()
    }

    /// The raw protobuf bodies of the accepted requests (decompressed), e.g.
    /// to feed Langfuse's own converter.
    pub fn accepted_bodies(&self) -> Vec<Vec<u8>> {
        lock(&self.inner.decoded)
            .iter()
            .map(Message::encode_to_vec)
            .collect()
    }

    /// Every accepted span, in arrival order.
    pub fn spans(&self) -> Vec<DecodedSpan> {
        lock(&self.inner.decoded)
            .iter()
            .enumerate()
            .flat_map(|(i, r)| DecodedSpan::from_request(r, i))
            .collect()
    }

    /// Number of accepted spans.
    pub fn span_count(&self) -> usize {
        lock(&self.inner.decoded)
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        lock(&self.inner.requests).clear();
        lock(&self.inner.decoded).clear();
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

async fn traces(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = match record(&method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let response = answer(&inner, &recorded).await;
    recorded.status = response.status().as_u16();
    lock(&inner.requests).push(recorded);
    response
}

async fn answer(inner: &Inner, recorded: &RecordedRequest) -> Response {
    if let Some(fault) = inner.faults.apply().await {
        return fault;
    }
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", inner.public_key, inner.secret_key));
    let authorized = recorded
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v.trim() == expected);
    if !authorized {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials. Confirm that you've configured the correct host.",
        );
    }
    let mut missing = Vec::new();
    for name in [
        "x-langfuse-sdk-name",
        "x-langfuse-sdk-version",
        "x-langfuse-ingestion-version",
    ] {
        if recorded.header(name).is_none_or(str::is_empty) {
            missing.push(name);
        }
    }
    if recorded.header("x-langfuse-public-key") != Some(inner.public_key.as_str()) {
        missing.push("x-langfuse-public-key");
    }
    if !recorded
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-protobuf"))
    {
        missing.push("content-type: application/x-protobuf");
    }
    if !missing.is_empty() {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("missing or wrong headers: {}", missing.join(", ")),
        );
    }
    if let Some(max) = *lock(&inner.max_body)
        && recorded.body.len() > max
    {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    match ExportTraceServiceRequest::decode(recorded.body.as_slice()) {
        Ok(request) => {
            lock(&inner.decoded).push(request);
            (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
        }
        Err(e) => json_error(
            StatusCode::BAD_REQUEST,
            &format!("body is not an OTLP ExportTraceServiceRequest: {e}"),
        ),
    }
}

async fn other(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = record(&method, &uri, &headers, &body).unwrap_or_else(|_| RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: Vec::new(),
        body: body.to_vec(),
        status: 0,
    });
    recorded.status = 404;
    lock(&inner.requests).push(recorded);
    json_error(StatusCode::NOT_FOUND, "not found")
}
