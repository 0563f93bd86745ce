//! What the five per-call transforms share: building requests from rows
//! (one per row, or one per query of a matrix), the client of their backend,
//! counting usage, and merging replies back into the row. Each transform is a
//! thin `#[llm_transform]` struct delegating to a [`ChatCore`].

use std::future::Future;
use std::sync::Arc;

use elspeth_schema::config::CallOptions;

use super::matrix::Query;
use super::prompt::Prompt;
use crate::clients::{AzureChatClient, ClientSettings, OpenRouterClient};
use crate::cost::TransformPrice;
use crate::llm::{LlmError, LlmErrorKind, LlmRequest, LlmResponse, PlannedCall};
use crate::plan::{Target, TransformSpec};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};
use crate::usage::UsageMeter;

/// A chat client a transform can be configured with.
pub(crate) trait ChatBackend: Send + Sync + Sized + 'static {
    /// Builds the client for the plan's `target`.
    fn connect(
        ctx: &StartContext,
        target: &Target,
        settings: &ClientSettings,
    ) -> Result<Self, StartError>;

    /// One chat call, with retries.
    fn chat(
        &self,
        request: &LlmRequest,
    ) -> impl Future<Output = Result<LlmResponse, LlmError>> + Send;

    /// The service's host (`server.address`).
    fn host(&self) -> &str;
}

/// The error of a target of another service than the client's (the plan
/// pairs each plugin with its service, so this is a bug, not bad input).
fn wrong_target(ctx: &StartContext, target: &Target) -> StartError {
    ctx.error(format_args!(
        "the plan gave this transform a target of another service ({})",
        target.url()
    ))
}

impl ChatBackend for AzureChatClient {
    fn connect(
        ctx: &StartContext,
        target: &Target,
        settings: &ClientSettings,
    ) -> Result<Self, StartError> {
        let Target::Azure(t) = target.clone() else {
            return Err(wrong_target(ctx, target));
        };
        AzureChatClient::new(t, settings).map_err(|e| ctx.error(e))
    }

    fn chat(
        &self,
        request: &LlmRequest,
    ) -> impl Future<Output = Result<LlmResponse, LlmError>> + Send {
        AzureChatClient::chat(self, request)
    }

    fn host(&self) -> &str {
        AzureChatClient::host(self)
    }
}

impl ChatBackend for OpenRouterClient {
    fn connect(
        ctx: &StartContext,
        target: &Target,
        settings: &ClientSettings,
    ) -> Result<Self, StartError> {
        let Target::OpenRouter(t) = target.clone() else {
            return Err(wrong_target(ctx, target));
        };
        OpenRouterClient::new(t, settings).map_err(|e| ctx.error(e))
    }

    fn chat(
        &self,
        request: &LlmRequest,
    ) -> impl Future<Output = Result<LlmResponse, LlmError>> + Send {
        OpenRouterClient::chat(self, request)
    }

    fn host(&self) -> &str {
        OpenRouterClient::host(self)
    }
}

/// Requests, client, usage and reply mapping of one per-call transform.
pub(crate) struct ChatCore<C> {
    prompt: Prompt,
    queries: Vec<Query>,
    call: CallOptions,
    target: Target,
    price: TransformPrice,
    /// The client and the transform's usage meter, once started.
    client: Option<(C, Arc<UsageMeter>)>,
}

impl<C: ChatBackend> ChatCore<C> {
    /// From the transform's resolved spec (no I/O).
    pub(super) fn from_spec(spec: TransformSpec) -> Self {
        Self {
            prompt: spec.prompt,
            queries: spec.queries,
            call: spec.call,
            target: spec.target,
            price: spec.price,
            client: None,
        }
    }

    /// The expanded queries (empty for a single-call transform).
    pub(super) fn queries(&self) -> &[Query] {
        &self.queries
    }

    /// `pool_size`.
    pub(super) fn concurrency(&self) -> usize {
        self.call.pool_size.max(1) as usize
    }

    /// The backend's host, once connected.
    pub(super) fn server_address(&self) -> Option<&str> {
        self.client.as_ref().map(|(c, _)| c.host())
    }

    /// Builds the client (from `on_start`).
    pub(super) fn connect(&mut self, start: &StartContext) -> Result<(), StartError> {
        let settings = start.client_settings(&self.call);
        let client = C::connect(start, &self.target, &settings)?;
        self.client = Some((client, start.usage.clone()));
        Ok(())
    }

    /// One call for the row, or one per query (a template error names the query).
    pub(super) fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        if self.queries.is_empty() {
            return Ok(vec![PlannedCall::single(self.prompt.request(row, None)?)]);
        }
        self.queries
            .iter()
            .map(|q| {
                let request = self.prompt.request(row, Some(&q.values)).map_err(|mut e| {
                    e.message = format!("query `{}`: {}", q.name, e.message);
                    e
                })?;
                Ok(PlannedCall {
                    query: Some(q.name.clone()),
                    request,
                })
            })
            .collect()
    }

    /// Makes the call, prices the reply (when the provider did not) and
    /// counts its usage and latency.
    pub(super) async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let (client, usage) = self.client.as_ref().ok_or_else(not_started)?;
        let started = std::time::Instant::now();
        let mut result = client.chat(request).await;
        usage.record_latency(started.elapsed());
        if let Ok(response) = &mut result {
            self.price.apply(response);
        }
        usage.record_result(&result);
        result
    }

    /// Puts the replies into the row.
    pub(super) fn merge(
        &self,
        row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        self.prompt.merge(row, results)
    }
}

/// Implements [`LlmCall`](crate::llm::LlmCall) for a transform struct with
/// fields `config` (options with a `connection`) and `core: ChatCore<_>`:
/// every method delegates to the core.
///
/// `llm_call_via_core!(AzureLlm, AzureOpenAi, "deployment", deployment_name)`
/// names the struct, its [`GenAiSystem`](crate::llm::GenAiSystem)
/// variant, the trace metadata key and the connection field holding the
/// deployment or model.
macro_rules! llm_call_via_core {
    ($ty:ident, $system:ident, $model_key:literal, $model_field:ident) => {
        impl $crate::llm::LlmCall for $ty {
            fn system(&self) -> $crate::llm::GenAiSystem {
                $crate::llm::GenAiSystem::$system
            }

            fn model_label(&self) -> (&'static str, &str) {
                ($model_key, &self.config.connection.$model_field)
            }

            fn concurrency(&self) -> usize {
                self.core.concurrency()
            }

            fn server_address(&self) -> Option<&str> {
                self.core.server_address()
            }

            async fn setup(
                &mut self,
                ctx: &$crate::transform::StartContext,
            ) -> Result<(), $crate::transform::StartError> {
                self.core.connect(ctx)
            }

            fn plan(
                &self,
                row: &$crate::row::Row,
            ) -> Result<Vec<$crate::llm::PlannedCall>, $crate::transform::RowError> {
                self.core.plan(row)
            }

            async fn call(
                &self,
                request: &$crate::llm::LlmRequest,
            ) -> Result<$crate::llm::LlmResponse, $crate::llm::LlmError> {
                self.core.call(request).await
            }

            fn merge(
                &self,
                row: $crate::row::Row,
                results: Vec<(
                    $crate::llm::PlannedCall,
                    Result<$crate::llm::LlmResponse, $crate::llm::LlmError>,
                )>,
            ) -> Result<$crate::row::Row, $crate::transform::RowError> {
                self.core.merge(row, results)
            }
        }
    };
}
pub(crate) use llm_call_via_core;

/// The error of a call made before `on_start`.
pub(crate) fn not_started() -> LlmError {
    LlmError::new(
        LlmErrorKind::Transport,
        "the transform was not started (on_start was not called)",
    )
}
