//! A Langfuse OTLP endpoint: `POST /api/public/otel/v1/traces`.
//!
//! Like the real server it gunzips the body, checks `Authorization: Basic
//! base64(public_key:secret_key)` (401 otherwise) and decodes the
//! `ExportTraceServiceRequest` as OTLP/protobuf (`content-type:
//! application/x-protobuf`) or OTLP/JSON (`application/json`); any other
//! content type, or a body that does not decode, is a 400. The
//! `x-langfuse-*` headers the Langfuse SDKs add (`x-langfuse-public-key`,
//! `x-langfuse-sdk-name`, …) are optional, as on the real route: a plain
//! OpenTelemetry exporter sends none and is accepted; when
//! `x-langfuse-public-key` is sent it must be the key (401 otherwise).
//! Every request is recorded (headers and
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

use crate::kept::SpanLog;
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
    log: SpanLog,
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
                log: SpanLog::default(),
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

    /// Keeps only the last `requests` requests (received and accepted
    /// ones: [`requests`](Self::requests), [`spans`](Self::spans), ...)
    /// instead of all of them, so a long-running mock (`elspeth
    /// mock-server`) does not grow without bound; [`span_count`](Self::span_count)
    /// still counts every accepted span. Default: all are kept.
    pub fn keep_last(&self, requests: usize) -> &Self {
        self.inner.log.keep_last(requests);
        self
    }

    /// Every request received, in order (faulted and rejected ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.log.requests.to_vec()
    }

    /// The accepted `ExportTraceServiceRequest`s, in order.
    pub fn export_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.inner.log.accepted.to_vec()
    }

    /// The raw protobuf bodies of the accepted requests (decompressed), e.g.
    /// to feed Langfuse's own converter.
    pub fn accepted_bodies(&self) -> Vec<Vec<u8>> {
        self.inner
            .log
            .accepted
            .with(|d| d.iter().map(Message::encode_to_vec).collect())
    }

    /// Every accepted span, in arrival order.
    pub fn spans(&self) -> Vec<DecodedSpan> {
        self.inner.log.spans()
    }

    /// Number of accepted spans (all of them, also those no longer kept:
    /// see [`keep_last`](Self::keep_last)).
    pub fn span_count(&self) -> usize {
        self.inner.log.span_count()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        self.inner.log.clear();
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
    inner.log.requests.push(recorded);
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
    if recorded
        .header("x-langfuse-public-key")
        .is_some_and(|key| key != inner.public_key)
    {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "x-langfuse-public-key does not match the key of the Authorization header",
        );
    }
    let Some(encoding) = recorded.header("content-type").and_then(Encoding::of) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "unsupported content-type: send application/x-protobuf or application/json",
        );
    };
    if let Some(max) = *lock(&inner.max_body)
        && recorded.body.len() > max
    {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    match encoding.decode(&recorded.body) {
        Ok(request) => {
            inner.log.accept(request);
            (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
        }
        Err(e) => json_error(
            StatusCode::BAD_REQUEST,
            &format!("body is not an OTLP ExportTraceServiceRequest ({encoding:?}): {e}"),
        ),
    }
}

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a `content-type` names (parameters such as `charset`
    /// ignored), if OTLP has one.
    fn of(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next()?.trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn decode(self, body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
        Ok(match self {
            Self::Protobuf => ExportTraceServiceRequest::decode(body)?,
            Self::Json => serde_json::from_slice(body)?,
        })
    }
}

/// Why a body is not an `ExportTraceServiceRequest`.
#[derive(Debug, thiserror::Error)]
enum DecodeError {
    #[error(transparent)]
    Protobuf(#[from] prost::DecodeError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
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
    inner.log.requests.push(recorded);
    json_error(StatusCode::NOT_FOUND, "not found")
}
