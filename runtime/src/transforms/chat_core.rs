//! What the five per-call transforms share: building requests from rows
//! (one per row, or one per query of a matrix), the client of their backend,
//! counting usage, and merging replies back into the row. Each transform is a
//! thin `#[llm_transform]` struct delegating to a [`ChatCore`].

use std::future::Future;

use elspeth_schema::config::{
    AzureConnection, CallOptions, OpenRouterConnection, PromptOptions, QueryMatrix,
};
use elspeth_telemetry::TransformLabel;
use elspeth_telemetry::call::{LlmError, LlmErrorKind, LlmRequest, LlmResponse};

use super::context::{BuildContext, start_error};
use super::matrix::{Query, expand};
use super::prompt::Prompt;
use crate::clients::{AzureChatClient, ClientSettings, OpenRouterClient};
use crate::llm::PlannedCall;
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// A chat client a transform can be configured with.
pub(crate) trait ChatBackend: Send + Sync + Sized + 'static {
    /// The connection options in the YAML.
    type Connection;

    /// Resolves the connection's `${VAR}`s and builds the client.
    fn connect(
        ctx: &BuildContext,
        label: &TransformLabel,
        connection: &Self::Connection,
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

impl ChatBackend for AzureChatClient {
    type Connection = AzureConnection;

    fn connect(
        ctx: &BuildContext,
        label: &TransformLabel,
        connection: &AzureConnection,
        settings: &ClientSettings,
    ) -> Result<Self, StartError> {
        let target = ctx.azure_target(label, connection)?;
        AzureChatClient::new(target, settings).map_err(|m| start_error(label, m))
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
    type Connection = OpenRouterConnection;

    fn connect(
        ctx: &BuildContext,
        label: &TransformLabel,
        connection: &OpenRouterConnection,
        settings: &ClientSettings,
    ) -> Result<Self, StartError> {
        let target = ctx.openrouter_target(label, connection)?;
        OpenRouterClient::new(target, settings).map_err(|m| start_error(label, m))
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
    queries: Option<Vec<Query>>,
    call: CallOptions,
    ctx: BuildContext,
    client: Option<C>,
}

impl<C: ChatBackend> ChatCore<C> {
    /// Compiles the template and expands the query matrix (no I/O).
    pub fn new(
        prompt: &PromptOptions,
        call: &CallOptions,
        model: &str,
        queries: Option<&QueryMatrix>,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            prompt: Prompt::new(prompt, call, model)?,
            queries: queries.map(expand).transpose().map_err(|e| e.to_string())?,
            call: call.clone(),
            ctx: ctx.clone(),
            client: None,
        })
    }

    /// The expanded queries (empty for a single-call transform).
    pub fn queries(&self) -> &[Query] {
        self.queries.as_deref().unwrap_or_default()
    }

    /// `pool_size`.
    pub fn concurrency(&self) -> usize {
        self.call.pool_size.max(1) as usize
    }

    /// The backend's host, once connected.
    pub fn server_address(&self) -> Option<&str> {
        self.client.as_ref().map(ChatBackend::host)
    }

    /// Builds the client (from `on_start`).
    pub fn connect(
        &mut self,
        start: &StartContext,
        connection: &C::Connection,
    ) -> Result<(), StartError> {
        let settings = self.ctx.client_settings(&self.call, &start.tier1);
        self.client = Some(C::connect(&self.ctx, &start.label, connection, &settings)?);
        Ok(())
    }

    /// One call for the row, or one per query (a template error names the query).
    pub fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        let Some(queries) = &self.queries else {
            return Ok(vec![PlannedCall::single(self.prompt.request(row, None)?)]);
        };
        queries
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

    /// Makes the call and counts its usage.
    pub async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let client = self.client.as_ref().ok_or_else(not_started)?;
        let result = client.chat(request).await;
        self.ctx.meter.record_result(&result);
        result
    }

    /// Puts the replies into the row.
    pub fn merge(
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
/// names the struct, its [`GenAiSystem`](elspeth_telemetry::call::GenAiSystem)
/// variant, the trace metadata key and the connection field holding the
/// deployment or model.
macro_rules! llm_call_via_core {
    ($ty:ident, $system:ident, $model_key:literal, $model_field:ident) => {
        impl $crate::llm::LlmCall for $ty {
            fn system(&self) -> ::elspeth_telemetry::call::GenAiSystem {
                ::elspeth_telemetry::call::GenAiSystem::$system
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
                self.core.connect(ctx, &self.config.connection)
            }

            fn plan(
                &self,
                row: &$crate::row::Row,
            ) -> Result<Vec<$crate::llm::PlannedCall>, $crate::transform::RowError> {
                self.core.plan(row)
            }

            async fn call(
                &self,
                request: &::elspeth_telemetry::call::LlmRequest,
            ) -> Result<::elspeth_telemetry::call::LlmResponse, ::elspeth_telemetry::call::LlmError>
            {
                self.core.call(request).await
            }

            fn merge(
                &self,
                row: $crate::row::Row,
                results: Vec<(
                    $crate::llm::PlannedCall,
                    Result<
                        ::elspeth_telemetry::call::LlmResponse,
                        ::elspeth_telemetry::call::LlmError,
                    >,
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
