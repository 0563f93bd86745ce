//! An OTLP/HTTP collector (`POST /v1/traces`, protobuf, optional gzip), as
//! Tier 1 telemetry talks to; plus the pieces the other telemetry mocks
//! share: [`RecordedRequest`], [`DecodedSpan`], [`Running`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use elspeth_mock::otlp::OtlpCollector;
//! let collector = OtlpCollector::spawn().await?;
//! let endpoint = collector.url(); // configure `telemetry.exporters[].options.endpoint`
//! // ... run ...
//! for span in collector.spans() {
//!     println!("{} {:?}", span.span.name, span.str_attr("server.address"));
//! }
//! # Ok(()) }
//! ```

use std::io::Read;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::kept::SpanLog;
use crate::server::{FaultPlan, MockServer};

/// Largest request body the telemetry mocks read (after decompression).
pub(crate) const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// One HTTP request as a mock received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `POST`, ...
    pub method: String,
    /// Path, e.g. `/v1/traces`.
    pub path: String,
    /// Query string, without `?`.
    pub query: Option<String>,
    /// Headers in received order (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body, decompressed when it was gzip.
    pub body: Vec<u8>,
    /// The status the mock answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every byte of the request a backend could store: header names and
    /// values, path, query and the decompressed body.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.path.as_bytes());
        if let Some(q) = &self.query {
            out.extend_from_slice(q.as_bytes());
        }
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }
}

/// A request body the mocks cannot read; its message is the answer to give.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// `Content-Encoding: gzip` over a body that does not decompress.
    #[error("body is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
}

/// Reads a request into a [`RecordedRequest`] (status to be filled in),
/// gunzipping a `Content-Encoding: gzip` body. `Err` is the answer to give
/// when the body cannot be decompressed.
pub(crate) fn record(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RecordedRequest, RecordError> {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        let mut out = Vec::with_capacity(body.len() * 4);
        GzDecoder::new(body)
            .take(BODY_LIMIT as u64 + 1)
            .read_to_end(&mut out)
            .map_err(RecordError::Gzip)?;
        out
    } else {
        body.to_vec()
    };
    Ok(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        status: 0,
    })
}

/// One span out of an `ExportTraceServiceRequest`, with its resource and
/// scope.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedSpan {
    /// The resource it was sent under.
    pub resource: Resource,
    /// Its instrumentation scope.
    pub scope: InstrumentationScope,
    /// The span.
    pub span: Span,
    /// Index of the request (in arrival order) it came in.
    pub request: usize,
}

impl DecodedSpan {
    /// Splits a request into its spans.
    pub fn from_request(request: &ExportTraceServiceRequest, index: usize) -> Vec<Self> {
        let mut out = Vec::new();
        for rs in &request.resource_spans {
            let resource = rs.resource.clone().unwrap_or_default();
            for ss in &rs.scope_spans {
                let scope = ss.scope.clone().unwrap_or_default();
                for span in &ss.spans {
                    out.push(Self {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span: span.clone(),
                        request: index,
                    });
                }
            }
        }
        out
    }

    /// The value of span attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&any_value::Value> {
        find(&self.span.attributes, key)
    }

    /// A string attribute.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key)? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    /// An int attribute.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }

    /// A bool attribute.
    pub fn bool_attr(&self, key: &str) -> Option<bool> {
        match self.attr(key)? {
            any_value::Value::BoolValue(b) => Some(*b),
            _ => None,
        }
    }

    /// A resource attribute (string).
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        match find(&self.resource.attributes, key)? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    /// Every attribute key, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect()
    }

    /// Trace id, lowercase hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// Span id, lowercase hex.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// Parent span id, lowercase hex (empty for a root span).
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

fn find<'a>(
    list: &'a [opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<&'a any_value::Value> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A mock and the server it runs on. Derefs to the mock; stops when dropped.
#[derive(Debug)]
pub struct Running<M> {
    /// The mock (state, faults, captured data).
    pub mock: M,
    /// The server.
    pub server: MockServer,
}

impl<M> Running<M> {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl<M> Deref for Running<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.mock
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An OTLP/HTTP trace collector. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct OtlpCollector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OtlpCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpCollector").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    faults: FaultPlan,
    required_headers: Mutex<Vec<(String, String)>>,
    log: SpanLog,
}

impl OtlpCollector {
    /// A collector accepting any request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires header `name: value` on every request (401 otherwise).
    pub fn require_header(&self, name: &str, value: &str) -> &Self {
        lock(&self.inner.required_headers).push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// `POST /v1/traces`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/traces", post(traces))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.inner.clone())
    }

    /// Serves on `127.0.0.1:port` (0 = any free port).
    pub async fn start(&self, port: u16) -> std::io::Result<MockServer> {
        MockServer::start(self.router(), port).await
    }

    /// A new collector on any free port.
    pub async fn spawn() -> std::io::Result<Running<Self>> {
        let mock = Self::new();
        let server = mock.start(0).await?;
        Ok(Running { mock, server })
    }

    /// Its fault plan (slow answers, 429, 500, 401, 413, dropped connections).
    pub fn faults(&self) -> &FaultPlan {
        &self.inner.faults
    }

    /// Keeps only the last `requests` requests (received and accepted)
    /// instead of all of them, so a long-running mock (`elspeth
    /// mock-server`) does not grow without bound;
    /// [`span_count`](Self::span_count) still counts every accepted span.
    /// Default: all are kept.
    pub fn keep_last(&self, requests: usize) -> &Self {
        self.inner.log.keep_last(requests);
        self
    }

    /// Every request received, faulted ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.log.requests.to_vec()
    }

    /// The decoded requests that were accepted.
    pub fn export_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.inner.log.accepted.to_vec()
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
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let answer = answer(&inner, &recorded).await;
    recorded.status = answer.status().as_u16();
    inner.log.requests.push(recorded);
    answer
}

async fn answer(inner: &Inner, recorded: &RecordedRequest) -> Response {
    if let Some(fault) = inner.faults.apply().await {
        return fault;
    }
    let required = lock(&inner.required_headers).clone();
    for (name, value) in required {
        if recorded.header(&name) != Some(value.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                format!("missing or wrong header {name}"),
            )
                .into_response();
        }
    }
    let is_protobuf = recorded
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    if !is_protobuf {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "only application/x-protobuf is supported",
        )
            .into_response();
    }
    match ExportTraceServiceRequest::decode(recorded.body.as_slice()) {
        Ok(request) => {
            inner.log.accept(request);
            (
                StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not an ExportTraceServiceRequest: {e}"),
        )
            .into_response(),
    }
}
