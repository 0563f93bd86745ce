//! Azure OpenAI mock: chat completions, files and the Batch API, speaking
//! the real JSON and checking the `api-key` header and `api-version`.
//!
//! Routes (all need `?api-version=`):
//! - `POST /openai/deployments/{deployment}/chat/completions`
//! - `POST /openai/files` (multipart: `purpose=batch`, `file`), `GET /openai/files/{id}`,
//!   `GET /openai/files/{id}/content`
//! - `POST /openai/batches`, `GET /openai/batches/{id}`, `POST /openai/batches/{id}/cancel`
//!
//! Batches follow the real lifecycle on a clock: `validating` →
//! `in_progress` → `finalizing` → `completed` (durations set by
//! [`BatchTiming`]); [`BatchOutcome`] makes them `expired` (half the lines
//! done) or `failed` instead. Output lines come back shuffled; lines whose
//! prompt holds a trigger word go to the error file.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use elspeth_mock::azure::AzureMock;
//! let azure = AzureMock::new("test-key");
//! let server = azure.start(0).await?;
//! println!("AZURE_OPENAI_ENDPOINT={}", server.url());
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::chat::{self, ChatRequest, LatencyStats, Outcome, Pacer};
use crate::server::{FaultPlan, MockServer};

/// How long a batch spends in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTiming {
    /// Time in `validating`.
    pub validating: Duration,
    /// Time in `in_progress`.
    pub in_progress: Duration,
    /// Time in `finalizing`.
    pub finalizing: Duration,
}

impl Default for BatchTiming {
    fn default() -> Self {
        Self {
            validating: Duration::from_millis(200),
            in_progress: Duration::from_millis(500),
            finalizing: Duration::from_millis(100),
        }
    }
}

/// How new batches end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchOutcome {
    /// Every line answered (some may fail per line).
    #[default]
    Complete,
    /// The completion window runs out: `expired`, half the lines answered.
    Expire,
    /// Validation fails: `failed` with an error, no output.
    Fail,
}

struct StoredFile {
    filename: String,
    purpose: String,
    bytes: Vec<u8>,
    created: u64,
}

/// What a test can see of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSnapshot {
    /// Batch id.
    pub id: String,
    /// Input file.
    pub input_file_id: String,
    /// Output file, once finished.
    pub output_file_id: Option<String>,
    /// Error file, once finished with failed lines.
    pub error_file_id: Option<String>,
    /// Creation time (Unix seconds).
    pub created_unix: u64,
    seq: u64,
}

struct StoredBatch {
    id: String,
    seq: u64,
    input_file_id: String,
    created: Instant,
    created_unix: u64,
    timing: BatchTiming,
    outcome: BatchOutcome,
    validation_error: Option<InputError>,
    cancel_requested: Option<Instant>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    counts: (u64, u64, u64),
    seed: u64,
}

#[derive(Default)]
struct Counters {
    chat_requests: AtomicU64,
    uploads: AtomicU64,
    batches_created: AtomicU64,
    batch_polls: AtomicU64,
    seq: AtomicU64,
}

struct Inner {
    api_key: String,
    chat_faults: FaultPlan,
    batch_faults: FaultPlan,
    timing: Mutex<BatchTiming>,
    outcome: Mutex<BatchOutcome>,
    files: Mutex<HashMap<String, StoredFile>>,
    batches: Mutex<HashMap<String, StoredBatch>>,
    counters: Counters,
    recorded: Mutex<VecDeque<Value>>,
    pacer: Pacer,
}

/// Bodies of the last this-many chat requests are kept for assertions.
pub const RECORDED_BODIES: usize = 1000;

/// The Azure OpenAI mock. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct AzureMock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AzureMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureMock").finish_non_exhaustive()
    }
}

impl AzureMock {
    /// A mock accepting `api_key` in the `api-key` header.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                api_key: api_key.into(),
                chat_faults: FaultPlan::new(),
                batch_faults: FaultPlan::new(),
                timing: Mutex::new(BatchTiming::default()),
                outcome: Mutex::new(BatchOutcome::default()),
                files: Mutex::new(HashMap::new()),
                batches: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                recorded: Mutex::new(VecDeque::new()),
                pacer: Pacer::default(),
            }),
        }
    }

    /// The routes, to serve alone or merged with other mocks.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(chat_completions),
            )
            .route("/openai/files", post(upload_file))
            .route("/openai/files/{id}", get(get_file))
            .route("/openai/files/{id}/content", get(file_content))
            .route("/openai/batches", post(create_batch))
            .route("/openai/batches/{id}", get(get_batch))
            .route("/openai/batches/{id}/cancel", post(cancel_batch))
            .with_state(self.clone())
    }

    /// Serves the mock on `127.0.0.1:port` (0 = any free port).
    pub async fn start(&self, port: u16) -> std::io::Result<MockServer> {
        MockServer::start(self.router(), port).await
    }

    /// Faults of the chat endpoint (latency, scripted statuses, failure rate).
    pub fn chat_faults(&self) -> &FaultPlan {
        &self.inner.chat_faults
    }

    /// Faults of the files and batches endpoints.
    pub fn batch_faults(&self) -> &FaultPlan {
        &self.inner.batch_faults
    }

    /// Phase durations of batches created from now on.
    pub fn set_batch_timing(&self, timing: BatchTiming) -> &Self {
        *lock(&self.inner.timing) = timing;
        self
    }

    /// How batches created from now on end.
    pub fn set_batch_outcome(&self, outcome: BatchOutcome) -> &Self {
        *lock(&self.inner.outcome) = outcome;
        self
    }

    /// Chat requests received (including rejected ones).
    pub fn chat_requests(&self) -> u64 {
        self.inner.counters.chat_requests.load(Ordering::Relaxed)
    }

    /// Files uploaded.
    pub fn uploads(&self) -> u64 {
        self.inner.counters.uploads.load(Ordering::Relaxed)
    }

    /// Batches created (submissions).
    pub fn batches_created(&self) -> u64 {
        self.inner.counters.batches_created.load(Ordering::Relaxed)
    }

    /// Batch status polls answered.
    pub fn batch_polls(&self) -> u64 {
        self.inner.counters.batch_polls.load(Ordering::Relaxed)
    }

    /// Latency actually served by the chat endpoint (normal answers).
    pub fn chat_latency(&self) -> LatencyStats {
        self.inner.pacer.stats()
    }

    /// Bodies of the last [`RECORDED_BODIES`] accepted chat requests, oldest first.
    pub fn chat_bodies(&self) -> Vec<Value> {
        lock(&self.inner.recorded).iter().cloned().collect()
    }

    /// Every batch created so far, in creation order.
    pub fn batches(&self) -> Vec<BatchSnapshot> {
        let mut all: Vec<BatchSnapshot> = lock(&self.inner.batches)
            .values()
            .map(|b| BatchSnapshot {
                id: b.id.clone(),
                input_file_id: b.input_file_id.clone(),
                output_file_id: b.output_file_id.clone(),
                error_file_id: b.error_file_id.clone(),
                created_unix: b.created_unix,
                seq: b.seq,
            })
            .collect();
        all.sort_by_key(|b| b.seq);
        all
    }

    /// The content of a file (a batch input, output or error file), if it exists.
    pub fn file(&self, id: &str) -> Option<Vec<u8>> {
        lock(&self.inner.files).get(id).map(|f| f.bytes.clone())
    }

    fn next_id(&self, prefix: &str) -> String {
        let n = self.inner.counters.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{prefix}{n:08x}")
    }

    fn check(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> Option<Response> {
        let key = headers.get("api-key").and_then(|v| v.to_str().ok());
        if key != Some(self.inner.api_key.as_str()) {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
            ));
        }
        if query.get("api-version").is_none_or(|v| v.is_empty()) {
            return Some(error(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "404", "message": "Resource not found (missing api-version query parameter)"}}),
            ));
        }
        None
    }
}

impl AzureMock {
    /// Auth and `api-version`, then the next fault of the files and batches
    /// endpoints: `Some(response)` to answer with instead.
    async fn admit(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        if let Some(r) = self.check(headers, query) {
            return Some(r);
        }
        self.inner.batch_faults.apply().await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The chat-completion body Azure returns.
fn completion(id: String, model: &str, content: Option<String>, usage: Value) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "system_fingerprint": "fp_mock",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
            "hate": {"filtered": false, "severity": "safe"}, "self_harm": {"filtered": false, "severity": "safe"},
            "sexual": {"filtered": false, "severity": "safe"}, "violence": {"filtered": false, "severity": "safe"}}}],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "content_filter_results": {}}],
        "usage": usage,
    })
}

/// The model name Azure reports for a deployment.
fn model_of(deployment: &str) -> String {
    format!("{deployment}-2024-08-06")
}

async fn chat_completions(
    State(mock): State<AzureMock>,
    Path(deployment): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = std::time::Instant::now();
    mock.inner
        .counters
        .chat_requests
        .fetch_add(1, Ordering::Relaxed);
    if let Some(r) = mock.check(&headers, &query) {
        return r;
    }
    if let Some(fault) = mock
        .inner
        .pacer
        .apply(&mock.inner.chat_faults, arrival)
        .await
    {
        return fault;
    }
    let request = match ChatRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body()),
    };
    if request.json_schema.is_some()
        && !supports_json_schema(query.get("api-version").map_or("", String::as_str))
    {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "BadRequest", "message": "response_format value as json_schema is enabled only for api versions 2024-08-01-preview and later"}}),
        );
    }
    {
        let mut recorded = lock(&mock.inner.recorded);
        if recorded.len() == RECORDED_BODIES {
            recorded.pop_front();
        }
        recorded.push_back(request.body.clone());
    }
    let id = mock.next_id("chatcmpl-mock");
    match chat::answer(&request, |content, usage| {
        completion(id, &model_of(&deployment), content, usage)
    }) {
        Outcome::Completion(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Outcome::Error(code, v) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            v,
        ),
        Outcome::Raw(text) => {
            (StatusCode::OK, [("content-type", "application/json")], text).into_response()
        }
    }
}

/// Whether an `api-version` (`YYYY-MM-DD[-preview]`) accepts
/// `response_format` `json_schema`: 2024-08-01-preview and later, as Azure
/// OpenAI answers.
///
/// ```
/// use elspeth_mock::azure::supports_json_schema;
/// assert!(supports_json_schema("2024-10-21"));
/// assert!(supports_json_schema("2024-08-01-preview"));
/// assert!(!supports_json_schema("2024-06-01"));
/// assert!(!supports_json_schema(""));
/// ```
pub fn supports_json_schema(api_version: &str) -> bool {
    let date = api_version.strip_suffix("-preview").unwrap_or(api_version);
    date.len() == 10 && date >= "2024-08-01"
}

/// A file object; `status` is `pending` right after the upload (as Azure
/// answers) and `processed` afterwards.
fn file_object(id: &str, f: &StoredFile, status: &str) -> Value {
    json!({"id": id, "object": "file", "purpose": f.purpose, "filename": f.filename,
        "bytes": f.bytes.len(), "created_at": f.created, "status": status, "status_details": null})
}

async fn upload_file(
    State(mock): State<AzureMock>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = mock.admit(&headers, &query).await {
        return r;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = match multipart::parse(content_type, &body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                chat::error_body("invalid_request_error", &e.to_string()),
            );
        }
    };
    let purpose = parts
        .iter()
        .find(|p| p.name == "purpose")
        .map(|p| String::from_utf8_lossy(&p.data).to_string());
    let Some(file) = parts
        .into_iter()
        .find(|p| p.name == "file" && p.filename.is_some())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            chat::error_body("invalid_request_error", "missing the `file` part"),
        );
    };
    let Some(purpose) =
        purpose.filter(|p| ["batch", "fine-tune", "assistants"].contains(&p.as_str()))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            chat::error_body(
                "invalid_request_error",
                "`purpose` must be one of batch, fine-tune, assistants",
            ),
        );
    };
    mock.inner.counters.uploads.fetch_add(1, Ordering::Relaxed);
    let id = mock.next_id("file-");
    let stored = StoredFile {
        filename: file.filename.unwrap_or_default(),
        purpose,
        bytes: file.data,
        created: unix_now(),
    };
    let body = file_object(&id, &stored, "pending");
    lock(&mock.inner.files).insert(id, stored);
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn get_file(
    State(mock): State<AzureMock>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.check(&headers, &query) {
        return r;
    }
    match lock(&mock.inner.files).get(&id) {
        Some(f) => (StatusCode::OK, axum::Json(file_object(&id, f, "processed"))).into_response(),
        None => not_found("file", &id),
    }
}

async fn file_content(
    State(mock): State<AzureMock>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.admit(&headers, &query).await {
        return r;
    }
    match lock(&mock.inner.files).get(&id) {
        Some(f) => (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            f.bytes.clone(),
        )
            .into_response(),
        None => not_found("file", &id),
    }
}

fn not_found(what: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        json!({"error": {"code": "404", "message": format!("{what} {id} not found")}}),
    )
}

/// Why a batch fails validation, as the service reports it: a code, a
/// message and the input line at fault.
#[derive(Debug, thiserror::Error)]
enum InputError {
    /// A line is not JSON.
    #[error("line is not valid JSON: {source}")]
    InvalidJson {
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    /// A line has no `custom_id`.
    #[error("every line needs a custom_id")]
    MissingCustomId { line: u64 },
    /// Two lines share a `custom_id`.
    #[error("custom_id {id} appears more than once")]
    DuplicateCustomId { line: u64, id: String },
    /// A line's method is not `POST`.
    #[error("method must be POST")]
    Method { line: u64 },
    /// A line's url is not `/chat/completions`.
    #[error("url must be /chat/completions")]
    Url { line: u64 },
    /// A line names no model.
    #[error("body.model must name the Global-Batch deployment")]
    NoModel { line: u64 },
    /// The lines name different models.
    #[error("every line must target the same deployment")]
    MixedModels { line: u64 },
    /// The file has no line.
    #[error("the input file has no requests")]
    Empty,
    /// The batch was scripted to fail ([`BatchOutcome::Fail`]).
    #[error("the input file failed validation")]
    Scripted,
}

impl InputError {
    /// The service's error code.
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json_line",
            Self::MissingCustomId { .. } => "missing_custom_id",
            Self::DuplicateCustomId { .. } => "duplicate_custom_id",
            Self::Method { .. } => "invalid_method",
            Self::Url { .. } => "invalid_url",
            Self::NoModel { .. } => "model_not_found",
            Self::MixedModels { .. } => "mismatched_model",
            Self::Empty => "empty_file",
            Self::Scripted => "validation_failed",
        }
    }

    /// The input line at fault (1-based), when there is one.
    fn line(&self) -> Option<u64> {
        match self {
            Self::InvalidJson { line, .. }
            | Self::MissingCustomId { line }
            | Self::DuplicateCustomId { line, .. }
            | Self::Method { line }
            | Self::Url { line }
            | Self::NoModel { line }
            | Self::MixedModels { line } => Some(*line),
            Self::Empty | Self::Scripted => None,
        }
    }
}

/// Checks a batch input file like the service does: JSONL lines with a
/// unique `custom_id`, `method: POST`, `url: /chat/completions` and one
/// `model` for the whole file; the first problem otherwise.
fn validate_input(bytes: &[u8]) -> Result<Vec<Value>, InputError> {
    let mut lines = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut model: Option<String> = None;
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_slice(raw)
            .map_err(|source| InputError::InvalidJson { line, source })?;
        let id = v
            .get("custom_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if id.is_empty() {
            return Err(InputError::MissingCustomId { line });
        }
        if !ids.insert(id.clone()) {
            return Err(InputError::DuplicateCustomId { line, id });
        }
        if v.get("method").and_then(Value::as_str) != Some("POST") {
            return Err(InputError::Method { line });
        }
        if v.get("url").and_then(Value::as_str) != Some("/chat/completions") {
            return Err(InputError::Url { line });
        }
        let line_model = v
            .pointer("/body/model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if line_model.is_empty() {
            return Err(InputError::NoModel { line });
        }
        match &model {
            None => model = Some(line_model),
            Some(m) if *m != line_model => return Err(InputError::MixedModels { line }),
            Some(_) => {}
        }
        lines.push(v);
    }
    if lines.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(lines)
}

async fn create_batch(
    State(mock): State<AzureMock>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = mock.admit(&headers, &query).await {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            chat::error_body("invalid_request_error", "body is not JSON"),
        );
    };
    let input_file_id = req
        .get("input_file_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if req.get("endpoint").and_then(Value::as_str) != Some("/chat/completions") {
        return error(
            StatusCode::BAD_REQUEST,
            chat::error_body(
                "invalid_request_error",
                "endpoint must be /chat/completions",
            ),
        );
    }
    if req.get("completion_window").and_then(Value::as_str) != Some("24h") {
        return error(
            StatusCode::BAD_REQUEST,
            chat::error_body("invalid_request_error", "completion_window must be 24h"),
        );
    }
    let validation_error = {
        let files = lock(&mock.inner.files);
        let Some(file) = files.get(&input_file_id) else {
            return not_found("file", &input_file_id);
        };
        if file.purpose != "batch" {
            return error(
                StatusCode::BAD_REQUEST,
                chat::error_body(
                    "invalid_request_error",
                    "the input file's purpose must be batch",
                ),
            );
        }
        validate_input(&file.bytes).err()
    };
    mock.inner
        .counters
        .batches_created
        .fetch_add(1, Ordering::Relaxed);
    let seq = mock.inner.counters.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("batch_mock-{seq:08x}");
    let batch = StoredBatch {
        id: id.clone(),
        seq,
        input_file_id,
        created: Instant::now(),
        created_unix: unix_now(),
        timing: *lock(&mock.inner.timing),
        outcome: *lock(&mock.inner.outcome),
        validation_error,
        cancel_requested: None,
        output_file_id: None,
        error_file_id: None,
        counts: (0, 0, 0),
        seed: fastrand::u64(..),
    };
    let body = batch_object(&batch, "validating");
    lock(&mock.inner.batches).insert(id, batch);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn batch_object(b: &StoredBatch, status: &str) -> Value {
    let errors = match (&b.validation_error, status) {
        (Some(e), "failed") => {
            json!({"object": "list", "data": [{"code": e.code(), "message": e.to_string(), "param": null, "line": e.line()}]})
        }
        _ => Value::Null,
    };
    json!({
        "id": b.id, "object": "batch", "endpoint": "/chat/completions", "errors": errors,
        "input_file_id": b.input_file_id, "completion_window": "24h", "status": status,
        "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
        "created_at": b.created_unix, "expires_at": b.created_unix + 86_400,
        "request_counts": {"total": b.counts.0, "completed": b.counts.1, "failed": b.counts.2},
        "metadata": null,
    })
}

/// The status a batch has now, producing its output on first completion.
fn advance(mock: &AzureMock, b: &mut StoredBatch) -> &'static str {
    let elapsed = b.created.elapsed();
    let t = b.timing;
    if let Some(at) = b.cancel_requested {
        if at.elapsed() < t.finalizing {
            return "cancelling";
        }
        finish(mock, b, Some(0.0));
        return "cancelled";
    }
    if elapsed < t.validating {
        return "validating";
    }
    if b.validation_error.is_some() || b.outcome == BatchOutcome::Fail {
        if b.validation_error.is_none() {
            b.validation_error = Some(InputError::Scripted);
        }
        return "failed";
    }
    if elapsed < t.validating + t.in_progress {
        return "in_progress";
    }
    if b.outcome == BatchOutcome::Expire {
        finish(mock, b, Some(0.5));
        return "expired";
    }
    if elapsed < t.validating + t.in_progress + t.finalizing {
        return "finalizing";
    }
    finish(mock, b, None);
    "completed"
}

/// Answers the batch's lines (all, or the first `fraction` of them) into
/// shuffled output and error files, once.
fn finish(mock: &AzureMock, b: &mut StoredBatch, fraction: Option<f64>) {
    if b.output_file_id.is_some() || b.error_file_id.is_some() || b.counts.0 > 0 {
        return;
    }
    let input = lock(&mock.inner.files)
        .get(&b.input_file_id)
        .map(|f| f.bytes.clone())
        .unwrap_or_default();
    let lines = validate_input(&input).unwrap_or_default();
    let total = lines.len();
    let done = match fraction {
        Some(f) => ((total as f64) * f).floor() as usize,
        None => total,
    };
    let mut output = Vec::new();
    let mut errors = Vec::new();
    for line in lines.iter().take(done) {
        let custom_id = line["custom_id"].clone();
        let body = serde_json::to_vec(&line["body"]).unwrap_or_default();
        let request_id = mock.next_id("req-");
        let entry = match ChatRequest::parse(&body) {
            Err(e) => (
                false,
                json!({"custom_id": custom_id, "response": {"status_code": 400, "request_id": request_id, "body": e.body()}, "error": null}),
            ),
            Ok(req) if req.prompt.contains(chat::TRIGGER_LINE_FAIL) => (
                false,
                json!({"custom_id": custom_id, "response": null,
                "error": {"code": "server_error", "message": "The server had an error processing this line."}}),
            ),
            Ok(req) => {
                let model = model_of(req.model.as_deref().unwrap_or("deployment"));
                let id = mock.next_id("chatcmpl-mock");
                match chat::answer(&req, |content, usage| {
                    completion(id, &model, content, usage)
                }) {
                    Outcome::Completion(v) => (
                        true,
                        json!({"custom_id": custom_id, "response": {"status_code": 200, "request_id": request_id, "body": v}, "error": null}),
                    ),
                    Outcome::Error(code, v) => (
                        false,
                        json!({"custom_id": custom_id, "response": {"status_code": code, "request_id": request_id, "body": v}, "error": null}),
                    ),
                    // A 200 line whose body is not a chat completion.
                    Outcome::Raw(text) => (
                        true,
                        json!({"custom_id": custom_id, "response": {"status_code": 200, "request_id": request_id, "body": text}, "error": null}),
                    ),
                }
            }
        };
        if entry.0 {
            output.push(entry.1)
        } else {
            errors.push(entry.1)
        }
    }
    let mut rng = fastrand::Rng::with_seed(b.seed);
    rng.shuffle(&mut output);
    rng.shuffle(&mut errors);
    b.counts = (total as u64, output.len() as u64, errors.len() as u64);
    let store = |lines: Vec<Value>, name: &str| -> Option<String> {
        if lines.is_empty() {
            return None;
        }
        let mut bytes = Vec::new();
        for l in lines {
            bytes.extend_from_slice(l.to_string().as_bytes());
            bytes.push(b'\n');
        }
        let id = mock.next_id("file-");
        lock(&mock.inner.files).insert(
            id.clone(),
            StoredFile {
                filename: format!("{}_{name}.jsonl", b.id),
                purpose: "batch_output".into(),
                bytes,
                created: unix_now(),
            },
        );
        Some(id)
    };
    b.output_file_id = store(output, "output");
    b.error_file_id = store(errors, "error");
}

async fn get_batch(
    State(mock): State<AzureMock>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.admit(&headers, &query).await {
        return r;
    }
    mock.inner
        .counters
        .batch_polls
        .fetch_add(1, Ordering::Relaxed);
    let mut batches = lock(&mock.inner.batches);
    let Some(b) = batches.get_mut(&id) else {
        return not_found("batch", &id);
    };
    let status = advance(&mock, b);
    (StatusCode::OK, axum::Json(batch_object(b, status))).into_response()
}

async fn cancel_batch(
    State(mock): State<AzureMock>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = mock.check(&headers, &query) {
        return r;
    }
    let mut batches = lock(&mock.inner.batches);
    let Some(b) = batches.get_mut(&id) else {
        return not_found("batch", &id);
    };
    let status = advance(&mock, b);
    if matches!(status, "completed" | "failed" | "expired" | "cancelled") {
        return error(
            StatusCode::CONFLICT,
            chat::error_body(
                "invalid_request_error",
                &format!("cannot cancel a batch with status {status}"),
            ),
        );
    }
    b.cancel_requested = Some(Instant::now());
    (StatusCode::OK, axum::Json(batch_object(b, "cancelling"))).into_response()
}

/// A minimal `multipart/form-data` reader (RFC 7578) for the file upload.
mod multipart {
    /// One part.
    pub(super) struct Part {
        pub name: String,
        pub filename: Option<String>,
        pub data: Vec<u8>,
    }

    /// Why a body is not a `multipart/form-data` upload the mock can read.
    #[derive(Debug, thiserror::Error)]
    pub(super) enum MultipartError {
        /// The content type is another one.
        #[error("expected multipart/form-data, got `{0}`")]
        NotMultipart(String),
        /// Something is missing or malformed; the text says what.
        #[error("{0}")]
        Malformed(&'static str),
    }

    /// Splits `body` by the boundary of `content_type`.
    pub(super) fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
        use MultipartError::Malformed;
        let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
        if mime.trim() != "multipart/form-data" {
            return Err(MultipartError::NotMultipart(mime.trim().to_string()));
        }
        let boundary = params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_string())
            .ok_or(Malformed("multipart body without a boundary"))?;
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = body;
        let first = find(rest, delimiter.as_bytes())
            .ok_or(Malformed("multipart body without a first boundary"))?;
        rest = &rest[first + delimiter.len()..];
        loop {
            if rest.starts_with(b"--") {
                return Ok(parts);
            }
            rest = rest
                .strip_prefix(b"\r\n")
                .ok_or(Malformed("boundary not followed by CRLF"))?;
            let head_end = find(rest, b"\r\n\r\n").ok_or(Malformed("part without headers end"))?;
            let head = std::str::from_utf8(&rest[..head_end])
                .map_err(|_| Malformed("part headers are not UTF-8"))?;
            rest = &rest[head_end + 4..];
            let end_marker = format!("\r\n{delimiter}");
            let end = find(rest, end_marker.as_bytes())
                .ok_or(Malformed("part without a closing boundary"))?;
            let data = rest[..end].to_vec();
            rest = &rest[end + end_marker.len()..];
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .ok_or(Malformed("part without Content-Disposition"))?;
            let param = |key: &str| {
                disposition.split(';').find_map(|p| {
                    p.trim()
                        .strip_prefix(&format!("{key}="))
                        .map(|v| v.trim_matches('"').to_string())
                })
            };
            parts.push(Part {
                name: param("name").ok_or(Malformed("part without a name"))?,
                filename: param("filename"),
                data,
            });
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_fields_and_files() {
            let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"a\":1}\n\r\n--XyZ--\r\n";
            let parts = super::parse("multipart/form-data; boundary=XyZ", body).unwrap();
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0].name, "purpose");
            assert_eq!(parts[0].data, b"batch");
            assert_eq!(parts[1].filename.as_deref(), Some("in.jsonl"));
            assert_eq!(parts[1].data, b"{\"a\":1}\n");
            assert!(super::parse("application/json", body).is_err());
            assert!(super::parse("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_err());
        }
    }
}
