//! OpenRouter mock: `POST /api/v1/chat/completions` with Bearer auth,
//! replies with usage including `cost`, records the attribution headers.
//!
//! The base URL to configure is `{server.url()}/api/v1`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::chat::{self, ChatRequest, LatencyStats, Outcome, Pacer};
use crate::server::{FaultPlan, MockServer};

/// Price per prompt token in USD (like a small hosted model).
pub const PROMPT_PRICE: f64 = 0.15 / 1_000_000.0;
/// Price per completion token in USD.
pub const COMPLETION_PRICE: f64 = 0.60 / 1_000_000.0;

/// The path prefix of the API (`base_url` = server URL + this).
pub const API_PREFIX: &str = "/api/v1";

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The JSON body.
    pub body: Value,
    /// `HTTP-Referer`, if sent.
    pub referer: Option<String>,
    /// `X-Title`, if sent.
    pub title: Option<String>,
}

struct Inner {
    api_key: String,
    faults: FaultPlan,
    requests: AtomicU64,
    seq: AtomicU64,
    recorded: Mutex<VecDeque<Received>>,
    pacer: Pacer,
}

/// The OpenRouter mock. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct OpenRouterMock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OpenRouterMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRouterMock").finish_non_exhaustive()
    }
}

/// Requests kept for assertions (the most recent ones).
pub const RECORDED_REQUESTS: usize = 1000;

impl OpenRouterMock {
    /// A mock accepting `Authorization: Bearer <api_key>`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                api_key: api_key.into(),
                faults: FaultPlan::new(),
                requests: AtomicU64::new(0),
                seq: AtomicU64::new(0),
                recorded: Mutex::new(VecDeque::new()),
                pacer: Pacer::default(),
            }),
        }
    }

    /// The routes, to serve alone or merged with other mocks.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("{API_PREFIX}/chat/completions"),
                post(chat_completions),
            )
            .with_state(self.clone())
    }

    /// Serves the mock on `127.0.0.1:port` (0 = any free port).
    pub async fn start(&self, port: u16) -> std::io::Result<MockServer> {
        MockServer::start(self.router(), port).await
    }

    /// Faults of the chat endpoint.
    pub fn faults(&self) -> &FaultPlan {
        &self.inner.faults
    }

    /// Requests received (including rejected ones).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Latency actually served (normal answers).
    pub fn latency(&self) -> LatencyStats {
        self.inner.pacer.stats()
    }

    /// The last [`RECORDED_REQUESTS`] accepted requests, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.inner
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// The cost OpenRouter would report for these token counts.
pub fn cost(prompt_tokens: u64, completion_tokens: u64) -> f64 {
    prompt_tokens as f64 * PROMPT_PRICE + completion_tokens as f64 * COMPLETION_PRICE
}

async fn chat_completions(
    State(mock): State<OpenRouterMock>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = std::time::Instant::now();
    mock.inner.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let expected = format!("Bearer {}", mock.inner.api_key);
    if header("authorization").as_deref() != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "No auth credentials found", "code": 401}})),
        )
            .into_response();
    }
    if let Some(fault) = mock.inner.pacer.apply(&mock.inner.faults, arrival).await {
        return fault;
    }
    let request = match ChatRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(e.body())).into_response(),
    };
    let Some(model) = request.model.clone().filter(|m| !m.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "No models provided", "code": 400}})),
        )
            .into_response();
    };
    {
        let mut recorded = mock
            .inner
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if recorded.len() == RECORDED_REQUESTS {
            recorded.pop_front();
        }
        recorded.push_back(Received {
            body: request.body.clone(),
            referer: header("http-referer"),
            title: header("x-title"),
        });
    }
    let n = mock.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let outcome = chat::answer(&request, |content, mut usage| {
        let p = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let c = usage["completion_tokens"].as_u64().unwrap_or(0);
        usage["cost"] = json!(cost(p, c));
        usage["prompt_tokens_details"] = json!({"cached_tokens": 0});
        usage["completion_tokens_details"] = json!({"reasoning_tokens": 0});
        json!({
            "id": format!("gen-mock-{n:010}"),
            "provider": "MockProvider",
            "model": model,
            "object": "chat.completion",
            "created": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop", "native_finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "refusal": null}}],
            "usage": usage,
        })
    });
    match outcome {
        Outcome::Completion(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Outcome::Error(code, mut v) => {
            // OpenRouter's error shape: numeric code, moderation metadata.
            if code == 400 {
                v = json!({"error": {"code": 403, "message": "Input flagged by content moderation (content_filter)",
                    "metadata": {"reasons": ["violence"], "flagged_input": "…", "provider_name": "MockProvider", "model_slug": model}}});
                return (StatusCode::FORBIDDEN, axum::Json(v)).into_response();
            }
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                axum::Json(v),
            )
                .into_response()
        }
        Outcome::Raw(text) => {
            (StatusCode::OK, [("content-type", "application/json")], text).into_response()
        }
    }
}
