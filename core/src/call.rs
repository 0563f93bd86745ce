//! The vocabulary of one LLM call: request, response, usage and error.
//!
//! Clients make calls with them, transforms plan them, the tracer records
//! them and the run store keeps them: they live here, apart from all of
//! those, and `elspeth-runtime` re-exports them as `elspeth::llm`.

use serde::{Deserialize, Serialize};

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System instructions.
    System,
    /// The user's prompt.
    User,
    /// The model's reply.
    Assistant,
}

impl Role {
    /// The wire name (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// Which LLM service answered, in OpenTelemetry GenAI terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GenAiSystem {
    /// Azure OpenAI: `gen_ai.provider.name = azure.ai.openai`, `gen_ai.system = az.ai.openai`.
    AzureOpenAi,
    /// OpenRouter: `gen_ai.provider.name = gen_ai.system = openrouter`.
    OpenRouter,
    /// Anything else (custom transforms): both attributes carry this name.
    Other(String),
}

impl GenAiSystem {
    /// `gen_ai.provider.name` (current semantic conventions).
    pub fn provider_name(&self) -> &str {
        match self {
            Self::AzureOpenAi => "azure.ai.openai",
            Self::OpenRouter => "openrouter",
            Self::Other(s) => s,
        }
    }
    /// `gen_ai.system` (deprecated, but Application Insights keys its
    /// dependency type on it).
    pub fn system_name(&self) -> &str {
        match self {
            Self::AzureOpenAi => "az.ai.openai",
            Self::OpenRouter => "openrouter",
            Self::Other(s) => s,
        }
    }
}

/// A chat-completion request, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// The messages, system first.
    pub messages: Vec<ChatMessage>,
    /// The model or deployment asked for.
    pub model: String,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// The reply format asked for (`None`: free text).
    pub response_format: Option<ResponseFormatRequest>,
}

/// The `response_format` of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormatRequest {
    /// Any JSON object (`{"type": "json_object"}`).
    JsonObject,
    /// A JSON object matching a JSON Schema (structured outputs:
    /// `{"type": "json_schema", "json_schema": {name, schema, strict}}`).
    JsonSchema(JsonSchemaRequest),
}

/// The JSON Schema a reply must match.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemaRequest {
    /// The schema's name (`^[A-Za-z0-9_-]{1,64}$`).
    pub name: String,
    /// The schema (shared by every request of a transform).
    pub schema: std::sync::Arc<serde_json::Value>,
    /// Ask the service to enforce the schema while generating.
    pub strict: bool,
}

impl LlmRequest {
    /// A request with one user message and no options.
    pub fn user(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            messages: vec![ChatMessage::user(prompt)],
            model: model.into(),
            temperature: None,
            max_tokens: None,
            response_format: None,
        }
    }

    /// The last user message (the rendered prompt), if any.
    pub fn prompt(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// Total tokens as reported (input + output when not reported).
    pub total: u64,
    /// Of the prompt tokens, those served from the provider's prompt cache
    /// (`prompt_tokens_details.cached_tokens`), priced at the cached rate.
    #[serde(default)]
    pub cached_input: u64,
    /// Of the completion tokens, the model's reasoning
    /// (`completion_tokens_details.reasoning_tokens`); priced as output.
    #[serde(default)]
    pub reasoning: u64,
}

impl Usage {
    /// Prompt and completion tokens, the total as their sum, no details.
    pub fn new(input: u64, output: u64) -> Self {
        Self {
            input,
            output,
            total: input + output,
            ..Self::default()
        }
    }
}

/// What one call cost, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// The whole call.
    pub total: f64,
    /// How the total splits, when elspeth priced the call from a price
    /// table or a `pricing` override; `None` when the provider reported
    /// only a total (OpenRouter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<CostParts>,
}

/// The parts of a priced call (they add up to [`Cost::total`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CostParts {
    /// Prompt tokens not served from the cache.
    pub input: f64,
    /// Prompt tokens served from the cache.
    pub cached_input: f64,
    /// Completion tokens other than reasoning.
    pub output: f64,
    /// Reasoning tokens (priced as output).
    pub reasoning: f64,
}

impl Cost {
    /// A cost the provider reported as one figure.
    pub fn reported(total: f64) -> Self {
        Self { total, parts: None }
    }
}

/// A chat-completion reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmResponse {
    /// The reply text.
    pub content: String,
    /// The model that answered, as reported (e.g. `gpt-4o-2024-08-06`).
    pub model: Option<String>,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped (`stop`, `length`, `content_filter`, ...).
    pub finish_reason: Option<String>,
    /// The provider's response id (e.g. `chatcmpl-...`).
    pub id: Option<String>,
    /// What the call cost: reported by the backend (OpenRouter), else
    /// priced by the transform's price ([`crate::price`]); `None` when
    /// neither knows.
    pub cost: Option<Cost>,
}

/// Broad class of an LLM call failure; also the `error.type` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlmErrorKind {
    /// 429 after all retries.
    RateLimited,
    /// 5xx after all retries.
    Server,
    /// Other 4xx (bad request, not found, ...).
    Client,
    /// 401 / 403.
    Auth,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset, TLS or DNS failure.
    Transport,
    /// The answer was not the expected JSON.
    MalformedResponse,
    /// The service's content filter blocked the prompt or the reply.
    ContentFilter,
    /// A batch job failed, expired or was cancelled.
    Job,
    /// The run was cancelled (Ctrl-C).
    Cancelled,
    /// The reply was paid but could not be committed to the run store.
    Store,
}

impl LlmErrorKind {
    /// Short stable name, used as `error.type` when there is no HTTP status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Server => "server_error",
            Self::Client => "client_error",
            Self::Auth => "auth_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport_error",
            Self::MalformedResponse => "malformed_response",
            Self::ContentFilter => "content_filter",
            Self::Job => "batch_job_failed",
            Self::Cancelled => "cancelled",
            Self::Store => "store_error",
        }
    }
}

/// A failed LLM call. Messages never contain API keys.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct LlmError {
    /// What kind of failure.
    pub kind: LlmErrorKind,
    /// HTTP status of the last attempt, if there was one.
    pub http_status: Option<u16>,
    /// Human-readable description (e.g. `HTTP 500: upstream overloaded`).
    pub message: String,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

impl LlmError {
    /// A new error with one attempt and no HTTP status.
    pub fn new(kind: LlmErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            http_status: None,
            message: message.into(),
            attempts: 1,
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// `error.type` per the OpenTelemetry conventions: the HTTP status code
    /// when there is one, else the kind's name.
    pub fn error_type(&self) -> String {
        match self.http_status {
            Some(s) => s.to_string(),
            None => self.kind.as_str().to_string(),
        }
    }
}
