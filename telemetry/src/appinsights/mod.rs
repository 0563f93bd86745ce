//! The Azure AI / Application Insights exporter, built on
//! `opentelemetry-application-insights`.
//!
//! How a span travels:
//! 1. the shared export machinery ([`crate::export`]) takes a batch off the
//!    queue;
//! 2. each record becomes an OpenTelemetry SDK `SpanData` ([`convert`]);
//! 3. the crate's `Exporter` turns the batch into its envelopes, JSON, gzip
//!    (`SpanExporter::export`), handed to a capturing `HttpClient`
//!    ([`client`]);
//! 4. the envelopes are aligned with Microsoft's exporter and keep
//!    `error.type` / the HTTP status ([`envelope`]);
//! 5. the request is posted to `{IngestionEndpoint}/v2/track` with reqwest
//!    and the answer (200, 206 partial, 401/403, 413, 429/5xx) drives the
//!    machinery's retries, splitting and counting.
//!
//! With `enable_live_metrics`, each batch also feeds the crate's
//! `LiveMetricsSpanProcessor`, which talks to the LiveEndpoint (QuickPulse)
//! on its own.
//!
//! Application Insights is process-wide: see [`AzureMonitorSlot`]. Its
//! exporter is kept apart from OpenTelemetry's global tracer provider (it
//! never calls `global::set_tracer_provider`), so Tier 1 telemetry keeps
//! working next to it.

mod client;
mod connection_string;
mod convert;
mod envelope;
mod slot;

use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderValue;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_application_insights::LiveMetricsSpanProcessor;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanExporter, SpanProcessor};
use serde::Deserialize;

pub use connection_string::{
    ConnectionString, ConnectionStringError, DEFAULT_INGESTION_ENDPOINT, DEFAULT_LIVE_ENDPOINT,
};
pub use slot::{AzureMonitorSlot, Claim};

use crate::export::{
    ExportConfig, Exporter, SendOutcome, Transport, classify_reqwest_error, classify_status,
};
use crate::record::SpanRecord;
use crate::sink::BoxFuture;
use envelope::EnvelopeError;

/// Settings of the Application Insights exporter.
#[derive(Debug, Clone)]
pub struct AppInsightsSettings {
    /// Where and as whom to send.
    pub connection: ConnectionString,
    /// Feed live metrics (QuickPulse).
    pub live_metrics: bool,
}

type LiveProcessor = LiveMetricsSpanProcessor<opentelemetry_sdk::runtime::Tokio>;

/// Why an Application Insights exporter could not be started. Never
/// contains the instrumentation key.
#[derive(Debug, thiserror::Error)]
pub enum AppInsightsError {
    /// The connection string does not parse.
    #[error(
        "azure_ai tracing: the connection string is malformed: {0}. Expected `InstrumentationKey=<guid>;IngestionEndpoint=https://...`, as shown on the Application Insights resource's overview page"
    )]
    MalformedConnectionString(#[source] ConnectionStringError),
    /// The exporter crate refused the connection string.
    #[error("azure_ai tracing: opentelemetry-application-insights refused the connection string")]
    Refused,
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] elspeth_core::http::ClientBuildError),
    /// No Tokio runtime to run the export worker on.
    #[error(transparent)]
    NoRuntime(#[from] crate::export::NoRuntime),
}

/// Sends batches to one Application Insights resource.
pub(crate) struct AppInsightsTransport {
    client: reqwest::Client,
    track_url: String,
    label: String,
    exporter: opentelemetry_application_insights::Exporter<client::CaptureClient>,
    capture: client::CaptureClient,
    /// One conversion at a time: the capture slot is shared.
    export_lock: Mutex<()>,
    scope: InstrumentationScope,
    resource_keys: Vec<String>,
    live: Mutex<Option<LiveProcessor>>,
}

fn resource() -> Resource {
    let version = env!("CARGO_PKG_VERSION");
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "elspeth"),
            KeyValue::new("service.version", version),
            KeyValue::new("service.instance.id", crate::http::instance_id()),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "elspeth"),
            KeyValue::new("telemetry.sdk.version", version),
        ])
        .build()
}

impl AppInsightsTransport {
    pub(crate) fn new(
        settings: &AppInsightsSettings,
        client: reqwest::Client,
    ) -> Result<Self, AppInsightsError> {
        let cs = &settings.connection;
        let capture = client::CaptureClient::default();
        let mut exporter =
            opentelemetry_application_insights::Exporter::new_from_connection_string(
                cs.canonical(),
                capture.clone(),
            )
            .map_err(|_| AppInsightsError::Refused)?;
        let resource = resource();
        exporter.set_resource(&resource);
        let resource_keys = resource.iter().map(|(k, _)| k.to_string()).collect();
        let live = if settings.live_metrics {
            let live_client = client::LiveClient {
                client: client.clone(),
                authority: cs
                    .live_endpoint
                    .host_str()
                    .map(|h| match cs.live_endpoint.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    })
                    .unwrap_or_default(),
                scheme: cs.live_endpoint.scheme().to_string(),
            };
            let mut live_exporter =
                opentelemetry_application_insights::Exporter::new_from_connection_string(
                    cs.canonical(),
                    live_client,
                )
                .map_err(|_| AppInsightsError::Refused)?;
            live_exporter.set_resource(&resource);
            let mut processor =
                LiveMetricsSpanProcessor::new(live_exporter, opentelemetry_sdk::runtime::Tokio);
            processor.set_resource(&resource);
            Some(processor)
        } else {
            None
        };
        let host = match (
            cs.ingestion_endpoint.host_str(),
            cs.ingestion_endpoint.port(),
        ) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => "?".to_string(),
        };
        Ok(Self {
            client,
            track_url: cs.track_url(),
            label: format!("azure_ai application insights {host}"),
            exporter,
            capture,
            export_lock: Mutex::new(()),
            scope: InstrumentationScope::builder("elspeth")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            resource_keys,
            live: Mutex::new(live),
        })
    }

    /// Builds the gzipped envelope array of `batch`: the crate converts the
    /// spans (its `export` future only awaits our [`client::CaptureClient`],
    /// so one poll completes it), then [`envelope::patch_body`] aligns the
    /// envelopes with Microsoft's exporter. All of it is CPU work, run off
    /// the async workers so it never delays the pipeline's own tasks.
    fn body(
        &self,
        batch: &[SpanRecord],
        truncate_to: Option<usize>,
    ) -> Result<Vec<u8>, EnvelopeError> {
        // Never brief: encoded inline, a batch measured no faster
        // (`runtime.throughput_azure_ai` within the noise), so it keeps the
        // handoff.
        crate::http::cpu_bound(false, || {
            let data: Vec<_> = batch
                .iter()
                .map(|r| convert::span_data(r, &self.scope, truncate_to))
                .collect();
            let request = {
                let _one_at_a_time = self
                    .export_lock
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                poll_once(self.exporter.export(data))
                    .ok_or(EnvelopeError::Unfinished)?
                    .map_err(|e| EnvelopeError::Build(e.to_string()))?;
                self.capture.take().ok_or(EnvelopeError::NotProduced)?
            };
            let (body, n) = envelope::patch_body(request.body(), &self.resource_keys)?;
            if n != batch.len() {
                return Err(EnvelopeError::Count {
                    expected: batch.len(),
                    got: n,
                });
            }
            Ok(body)
        })
    }

    async fn send_once(&self, batch: &[SpanRecord], truncate_to: Option<usize>) -> SendOutcome {
        let body = match self.body(batch, truncate_to) {
            Ok(b) => b,
            Err(e) => {
                return SendOutcome::Rejected {
                    status: 0,
                    reason: e.to_string(),
                };
            }
        };
        let response = match self
            .client
            .post(&self.track_url)
            .header(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .header(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            )
            .header(
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return classify_reqwest_error(&e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let code = status.as_u16();
        if code == 200 {
            return SendOutcome::Accepted;
        }
        if code == 206 || code == 500 {
            let body = response.bytes().await.unwrap_or_default();
            if let Ok(track) = serde_json::from_slice::<TrackResponse>(&body)
                && !track.errors.is_empty()
            {
                return track.outcome(batch.len());
            }
            if code == 206 {
                return SendOutcome::Accepted;
            }
        }
        classify_status(status, &headers).unwrap_or(SendOutcome::Accepted)
    }
}

/// The `/v2/track` answer: `{"itemsReceived", "itemsAccepted", "errors": [{"index", "statusCode", "message"}]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackResponse {
    #[serde(default)]
    errors: Vec<TrackError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackError {
    index: usize,
    status_code: u16,
}

impl TrackResponse {
    fn outcome(&self, n: usize) -> SendOutcome {
        let mut retry: Vec<usize> = self
            .errors
            .iter()
            .filter(|e| e.index < n && matches!(e.status_code, 408 | 429 | 439 | 500 | 503))
            .map(|e| e.index)
            .collect();
        retry.sort_unstable();
        retry.dedup();
        let mut failed: Vec<usize> = self
            .errors
            .iter()
            .filter(|e| e.index < n && !retry.contains(&e.index))
            .map(|e| e.index)
            .collect();
        failed.sort_unstable();
        failed.dedup();
        SendOutcome::Partial {
            retry,
            rejected: failed.len(),
        }
    }
}

impl Transport for AppInsightsTransport {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn auth_hint(&self) -> String {
        "Check APPLICATIONINSIGHTS_CONNECTION_STRING; resources that only accept Entra ID (local authentication disabled) are not supported.".into()
    }

    fn send<'a>(
        &'a self,
        batch: &'a [SpanRecord],
        truncate_to: Option<usize>,
    ) -> BoxFuture<'a, SendOutcome> {
        Box::pin(self.send_once(batch, truncate_to))
    }

    fn observe(&self, batch: &[SpanRecord]) {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(processor) = live.as_ref() {
            for record in batch {
                processor.on_end(convert::span_data(record, &self.scope, None));
            }
        }
    }

    fn on_shutdown(&self) {
        // Dropping the processor stops the live metrics task.
        let processor = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(p) = processor
            && let Err(e) = p.shutdown()
        {
            tracing::debug!(error = %e, "live metrics did not stop cleanly");
        }
    }
}

/// Starts an Application Insights exporter on the current Tokio runtime,
/// outside the process-wide [`AzureMonitorSlot`] (tests and benches; the
/// registry goes through the slot).
pub fn appinsights_exporter(
    settings: AppInsightsSettings,
    config: ExportConfig,
) -> Result<Arc<Exporter>, AppInsightsError> {
    appinsights_exporter_with(settings, crate::http::client()?, config)
}

pub(crate) fn appinsights_exporter_with(
    settings: AppInsightsSettings,
    client: reqwest::Client,
    config: ExportConfig,
) -> Result<Arc<Exporter>, AppInsightsError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(crate::export::NoRuntime.into());
    }
    let transport = AppInsightsTransport::new(&settings, client)?;
    Ok(Exporter::start(Arc::new(transport), config)?)
}

/// Polls `future` once; `None` if it is not ready. For futures that never
/// wait on anything (the crate's export into [`client::CaptureClient`]).
fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
