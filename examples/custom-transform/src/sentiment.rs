//! `review_sentiment`: a hand-written LLM transform. It asks an
//! OpenAI-compatible chat endpoint (OpenRouter, or the bundled mock) for the
//! sentiment of each row's text, as JSON, checks the reply and writes it into
//! the row's `sentiment` field.
//!
//! The three pieces a custom transform needs:
//!
//! 1. An options type holding the tracing block, implementing
//!    [`HasTracing`] ([`SentimentOptions`]).
//! 2. The struct, with `#[elspeth::llm_transform(tracing(...), name = "...")]`
//!    ([`ReviewSentiment`]). The attribute writes the whole
//!    [`Transform`](elspeth::Transform) lifecycle: the provider check and
//!    tracer in `on_start`, one trace `elspeth.review_sentiment` per row with
//!    one `llm_call` generation per call (prompt, reply, model, usage,
//!    latency), and the final flush in `close`.
//! 3. An [`LlmCall`] impl: `setup` (build the client), `plan` (row → calls),
//!    `call` (one HTTP call) and `merge` (replies → row).

use std::sync::Arc;

use elspeth::clients::{ClientSettings, OpenRouterClient, OpenRouterTarget};
use elspeth::config::{EnvString, SecretRef, TracingConfig};
use elspeth::llm::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse,
    ResponseFormatRequest,
};
use elspeth::usage::UsageMeter;
use elspeth::{
    HasTracing, LlmCall, PlannedCall, Row, RowError, RowErrorKind, StartContext, StartError,
};
use serde::Deserialize;
use serde_json::Value;

/// Plugin name of the transform (the attribute's `name = "..."`): its traces
/// are named `elspeth.review_sentiment`.
pub const PLUGIN: &str = "review_sentiment";

/// Row field the sentiment (`positive`, `neutral` or `negative`) is written to.
pub const SENTIMENT_FIELD: &str = "sentiment";

/// The sentiments a reply may name.
pub const SENTIMENTS: [&str; 3] = ["positive", "neutral", "negative"];

/// `X-Title` sent with each call (OpenRouter shows it in its activity log).
pub const APP_TITLE: &str = "elspeth review_sentiment example";

const SYSTEM_PROMPT: &str =
    "You rate the sentiment of customer feedback: positive, neutral or negative.";

/// What the transform needs to know. Values that differ per environment are
/// `${VAR}` references, resolved when the pipeline starts (against the
/// run's environment), so no secret is ever held in the struct.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentOptions {
    /// Model id, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    /// Base URL of an OpenAI-compatible chat API (`…/chat/completions` is
    /// appended), e.g. `${OPENROUTER_BASE_URL:-https://openrouter.ai/api/v1}`.
    pub base_url: EnvString,
    /// The Bearer key, as a reference: `${OPENROUTER_API_KEY}`.
    pub api_key: SecretRef,
    /// Row field holding the text to rate.
    pub text_field: String,
    /// Most calls in flight at once.
    pub pool_size: usize,
    /// Tier 2 tracing; `None` runs untraced.
    pub tracing: Option<TracingConfig>,
}

impl SentimentOptions {
    /// OpenRouter (`${OPENROUTER_BASE_URL}`, default the public API) with
    /// `${OPENROUTER_API_KEY}`, model `openai/gpt-4o-mini`, rating the
    /// `text` field, traced as `tracing` says.
    pub fn openrouter(tracing: Option<TracingConfig>) -> Self {
        Self {
            model: "openai/gpt-4o-mini".into(),
            base_url: EnvString::new("${OPENROUTER_BASE_URL:-https://openrouter.ai/api/v1}"),
            api_key: SecretRef::new("${OPENROUTER_API_KEY}"),
            text_field: "text".into(),
            pool_size: 4,
            tracing,
        }
    }
}

/// Where `#[llm_transform(tracing)]` finds the tracing block: one line.
impl HasTracing for SentimentOptions {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.tracing.as_ref()
    }
}

/// Rates the sentiment of each row's text with one chat call, in JSON mode.
///
/// Traced to Langfuse only: `tracing(providers = [langfuse])` makes a config
/// naming `azure_ai` fail `on_start` with "… does not support tracing
/// provider `azure_ai`; it accepts: langfuse".
///
/// ```no_run
/// # async fn demo(pipeline: elspeth::pipeline::Pipeline) {
/// use elspeth_example_custom_transform::{ReviewSentiment, SentimentOptions};
/// let sentiment = ReviewSentiment::new(SentimentOptions::openrouter(None));
/// let pipeline = pipeline.with_transform(Box::new(sentiment));
/// # }
/// ```
#[elspeth::llm_transform(tracing(providers = [langfuse]), name = "review_sentiment")]
pub struct ReviewSentiment {
    #[tracing]
    options: SentimentOptions,
    /// Built by `setup`, when the run starts.
    client: Option<OpenRouterClient>,
    /// The run's token and cost counters (from `setup`), so this
    /// transform's calls appear in the run summary.
    usage: Arc<UsageMeter>,
}

impl ReviewSentiment {
    /// A transform with these options (no I/O until the run starts).
    pub fn new(options: SentimentOptions) -> Self {
        Self {
            options,
            client: None,
            usage: Arc::default(),
        }
    }
}

/// The reply the model is asked for: `{"sentiment": "negative"}`.
#[derive(Debug, Deserialize)]
struct Verdict {
    sentiment: String,
}

impl LlmCall for ReviewSentiment {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }

    fn model_label(&self) -> (&'static str, &str) {
        ("model", &self.options.model)
    }

    fn concurrency(&self) -> usize {
        self.options.pool_size.max(1)
    }

    fn server_address(&self) -> Option<&str> {
        self.client.as_ref().map(OpenRouterClient::host)
    }

    /// Resolves the `${VAR}` references against the run's environment (the
    /// one given to `RunOptions::with_env`) and builds the HTTP client.
    /// `StartContext` does the resolving and the error formatting: a
    /// missing variable fails the start with "transforms[i]
    /// (review_sentiment): api_key: environment variable `…` is not set
    /// (set it …)".
    async fn setup(&mut self, ctx: &StartContext) -> Result<(), StartError> {
        let target = OpenRouterTarget {
            base_url: ctx.resolve("base_url", &self.options.base_url)?,
            model: self.options.model.clone(),
            api_key: ctx.resolve_secret("api_key", &self.options.api_key)?,
            http_referer: None,
            app_title: Some(APP_TITLE.into()),
        };
        let settings = ClientSettings {
            max_in_flight: self.concurrency(),
            tier1: ctx.tier1.clone(),
            ..ClientSettings::default()
        };
        let client = OpenRouterClient::new(target, &settings).map_err(|e| ctx.error(e))?;
        self.client = Some(client);
        self.usage = ctx.usage.clone();
        Ok(())
    }

    /// One JSON-mode call per row.
    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        let field = &self.options.text_field;
        let text = row.get(field).and_then(Value::as_str).ok_or_else(|| {
            RowError::new(
                RowErrorKind::Template,
                format!("the row has no text field `{field}` to rate (set `text_field`)"),
            )
        })?;
        Ok(vec![PlannedCall::single(LlmRequest {
            messages: vec![
                ChatMessage::system(SYSTEM_PROMPT),
                ChatMessage::user(format!(
                    "Rate this customer feedback. Reply in JSON with keys: sentiment.\nFeedback: {text}"
                )),
            ],
            model: self.options.model.clone(),
            temperature: Some(0.0),
            max_tokens: Some(30),
            response_format: Some(ResponseFormatRequest::JsonObject),
        })])
    }

    async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let client = self.client.as_ref().ok_or_else(|| {
            LlmError::new(
                LlmErrorKind::Client,
                "review_sentiment was not started (on_start builds its client)",
            )
        })?;
        self.usage.recorded(client.chat(request).await)
    }

    /// Checks the JSON reply and writes its `sentiment` into the row.
    fn merge(
        &self,
        mut row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        let (_, result) = results
            .into_iter()
            .next()
            .ok_or_else(|| RowError::new(RowErrorKind::Llm, "no reply for the row"))?;
        let reply = result?;
        let verdict: Verdict = serde_json::from_str(&reply.content).map_err(|e| {
            RowError::new(
                RowErrorKind::Parse,
                format!(
                    "the reply is not {{\"sentiment\": \"positive|neutral|negative\"}}: {e} (reply: {:?})",
                    preview(&reply.content)
                ),
            )
        })?;
        if !SENTIMENTS.contains(&verdict.sentiment.as_str()) {
            return Err(RowError::new(
                RowErrorKind::Parse,
                format!(
                    "sentiment `{}` is not positive, neutral or negative",
                    preview(&verdict.sentiment)
                ),
            ));
        }
        row.insert(SENTIMENT_FIELD.into(), Value::String(verdict.sentiment));
        Ok(row)
    }
}

/// At most 80 characters of a model's reply, for error messages.
fn preview(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        v.as_object().cloned().expect("an object")
    }

    fn merged(content: &str) -> Result<Row, RowError> {
        let t = ReviewSentiment::new(SentimentOptions::openrouter(None));
        let call = t.plan(&row(json!({"text": "hi"}))).unwrap().remove(0);
        let reply = LlmResponse {
            content: content.into(),
            ..LlmResponse::default()
        };
        t.merge(row(json!({"id": 1})), vec![(call, Ok(reply))])
    }

    #[test]
    fn plans_one_json_call_naming_the_keys() {
        let t = ReviewSentiment::new(SentimentOptions::openrouter(None));
        let calls = t.plan(&row(json!({"text": "Love it"}))).unwrap();
        assert_eq!(calls.len(), 1);
        let request = &calls[0].request;
        assert_eq!(
            request.response_format,
            Some(ResponseFormatRequest::JsonObject)
        );
        assert_eq!(request.model, "openai/gpt-4o-mini");
        assert_eq!(
            request.prompt(),
            Some(
                "Rate this customer feedback. Reply in JSON with keys: sentiment.\nFeedback: Love it"
            )
        );
        let e = t.plan(&row(json!({"body": "x"}))).unwrap_err();
        assert_eq!(e.kind, "template");
        assert!(e.message.contains("`text`"), "{}", e.message);
    }

    #[test]
    fn merges_a_valid_reply_and_rejects_others() {
        let r = merged(r#"{"sentiment": "negative"}"#).unwrap();
        assert_eq!(Value::Object(r), json!({"id": 1, "sentiment": "negative"}));

        for (content, needle) in [
            ("Sure! It is negative.", "is not {\"sentiment\""),
            (r#"{"sentiment": "meh"}"#, "`meh` is not positive"),
            (r#"{"mood": "neutral"}"#, "missing field `sentiment`"),
            (r#"{"sentiment": 3}"#, "invalid type: integer `3`"),
        ] {
            let e = merged(content).unwrap_err();
            assert_eq!(e.kind, "parse", "{content}");
            assert!(e.message.contains(needle), "{content}: {}", e.message);
        }
    }

    #[test]
    fn a_failed_call_fails_the_row_with_its_error() {
        let t = ReviewSentiment::new(SentimentOptions::openrouter(None));
        let call = t.plan(&row(json!({"text": "hi"}))).unwrap().remove(0);
        let error =
            LlmError::new(LlmErrorKind::Server, "OpenRouter answered HTTP 503").with_status(503);
        let e = t
            .merge(row(json!({})), vec![(call, Err(error))])
            .unwrap_err();
        assert_eq!((e.kind.as_str(), e.http_status), ("llm", Some(503)));
    }

    #[test]
    fn previews_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), 81);
        assert!(p.ends_with('…'));
        assert_eq!(preview("short"), "short");
    }
}
