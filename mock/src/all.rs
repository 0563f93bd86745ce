//! Every mock backend at once, for `elspeth mock-server` and
//! `elspeth run --with-mocks`: Azure OpenAI, OpenRouter, Langfuse,
//! Application Insights and an OTLP collector, each on its own 127.0.0.1
//! port, plus the environment variables that point a pipeline at them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use elspeth_mock::all::{MockStack, StackOptions};
//! let stack = MockStack::start(StackOptions::default()).await?;
//! for (name, value) in stack.env() {
//!     println!("export {name}={value}");
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::appinsights::AppInsightsMock;
use crate::azure::AzureMock;
use crate::langfuse::LangfuseMock;
use crate::openrouter::{API_PREFIX, OpenRouterMock};
use crate::otlp::OtlpCollector;
use crate::server::MockServer;

/// API key the Azure OpenAI mock accepts.
pub const AZURE_KEY: &str = "mock-azure-openai-key";
/// API key the OpenRouter mock accepts.
pub const OPENROUTER_KEY: &str = "mock-openrouter-key";
/// Langfuse public key the Langfuse mock accepts.
pub const LANGFUSE_PUBLIC_KEY: &str = "pk-lf-mock";
/// Langfuse secret key the Langfuse mock accepts.
pub const LANGFUSE_SECRET_KEY: &str = "sk-lf-mock";
/// Instrumentation key of the Application Insights mock.
pub const INSTRUMENTATION_KEY: &str = "00000000-0000-4000-8000-000000000000";

/// How to start the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct StackOptions {
    /// First port; the backends take consecutive ports from it. 0 = any free ports.
    pub port: u16,
    /// Latency added to every LLM answer.
    pub latency: Duration,
    /// Fraction (0..=1) of LLM calls answered with HTTP 500.
    pub failure_rate: f64,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            port: 0,
            latency: Duration::ZERO,
            failure_rate: 0.0,
        }
    }
}

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Azure OpenAI chat + Batch API.
    Azure,
    /// OpenRouter.
    OpenRouter,
    /// Langfuse OTLP ingestion.
    Langfuse,
    /// Application Insights track endpoint.
    AppInsights,
    /// A plain OTLP/HTTP collector (Tier 1).
    Otlp,
}

/// One running backend.
#[derive(Debug)]
pub struct Backend {
    /// Which backend.
    pub kind: Kind,
    /// Display name, e.g. `Azure OpenAI`.
    pub name: &'static str,
    /// What it serves.
    pub serves: &'static str,
    /// The URL to configure (endpoint, base URL or host).
    pub url: String,
    server: MockServer,
}

/// The running mocks. Dropping it stops them.
#[derive(Debug)]
pub struct MockStack {
    /// The Azure OpenAI mock (counters, faults).
    pub azure: AzureMock,
    /// The OpenRouter mock.
    pub openrouter: OpenRouterMock,
    /// The Langfuse mock (decoded spans).
    pub langfuse: LangfuseMock,
    /// The Application Insights mock (parsed envelopes).
    pub appinsights: AppInsightsMock,
    /// The OTLP collector (Tier 1 spans).
    pub otlp: OtlpCollector,
    backends: Vec<Backend>,
}

impl MockStack {
    /// Starts every backend.
    pub async fn start(options: StackOptions) -> std::io::Result<Self> {
        let mut n = 0u16;
        let mut next_port = move || {
            let p = if options.port == 0 {
                0
            } else {
                options.port.saturating_add(n)
            };
            n += 1;
            p
        };
        let azure = AzureMock::new(AZURE_KEY);
        azure
            .chat_faults()
            .set_latency(options.latency)
            .set_failure_rate(options.failure_rate);
        let openrouter = OpenRouterMock::new(OPENROUTER_KEY);
        openrouter
            .faults()
            .set_latency(options.latency)
            .set_failure_rate(options.failure_rate);
        let langfuse = LangfuseMock::new(LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY);
        let appinsights = AppInsightsMock::new(INSTRUMENTATION_KEY);
        let otlp = OtlpCollector::new();

        let mut backends = Vec::new();
        let server = azure.start(next_port()).await?;
        backends.push(Backend {
            kind: Kind::Azure,
            name: "Azure OpenAI",
            serves: "chat completions, files, Batch API",
            url: server.url(),
            server,
        });
        let server = openrouter.start(next_port()).await?;
        backends.push(Backend {
            kind: Kind::OpenRouter,
            name: "OpenRouter",
            serves: "chat completions (usage with cost)",
            url: format!("{}{API_PREFIX}", server.url()),
            server,
        });
        let server = langfuse.start(next_port()).await?;
        backends.push(Backend {
            kind: Kind::Langfuse,
            name: "Langfuse",
            serves: "OTLP trace ingestion (/api/public/otel/v1/traces)",
            url: server.url(),
            server,
        });
        let server = appinsights.start(next_port()).await?;
        backends.push(Backend {
            kind: Kind::AppInsights,
            name: "Application Insights",
            serves: "track endpoint (/v2.1/track), Live Metrics",
            url: server.url(),
            server,
        });
        let server = otlp.start(next_port()).await?;
        backends.push(Backend {
            kind: Kind::Otlp,
            name: "OTLP collector",
            serves: "Tier 1 telemetry (/v1/traces)",
            url: server.url(),
            server,
        });
        Ok(Self {
            azure,
            openrouter,
            langfuse,
            appinsights,
            otlp,
            backends,
        })
    }

    /// The running backends, in start order.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The URL of a backend.
    pub fn url(&self, kind: Kind) -> String {
        self.backends
            .iter()
            .find(|b| b.kind == kind)
            .map(|b| b.url.clone())
            .unwrap_or_default()
    }

    /// `(name, value)` of every environment variable that points a
    /// pipeline at the mocks.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_OPENAI_ENDPOINT".into(), self.url(Kind::Azure)),
            ("AZURE_OPENAI_KEY".into(), AZURE_KEY.into()),
            ("OPENROUTER_BASE_URL".into(), self.url(Kind::OpenRouter)),
            ("OPENROUTER_API_KEY".into(), OPENROUTER_KEY.into()),
            ("LANGFUSE_HOST".into(), self.url(Kind::Langfuse)),
            ("LANGFUSE_PUBLIC_KEY".into(), LANGFUSE_PUBLIC_KEY.into()),
            ("LANGFUSE_SECRET_KEY".into(), LANGFUSE_SECRET_KEY.into()),
            (
                "APPLICATIONINSIGHTS_CONNECTION_STRING".into(),
                self.appinsights
                    .connection_string_for(&self.url(Kind::AppInsights)),
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), self.url(Kind::Otlp)),
        ]
    }

    /// What the tracing backends received so far: `(backend, items)`:
    /// Langfuse spans, Application Insights dependency envelopes, OTLP spans.
    pub fn received(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("Langfuse", self.langfuse.span_count()),
            ("Application Insights", self.appinsights.dependency_count()),
            ("OTLP collector", self.otlp.span_count()),
        ]
    }

    /// Stops every backend.
    pub async fn stop(self) {
        for b in self.backends {
            b.server.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_every_backend_with_its_env() {
        let stack = MockStack::start(StackOptions::default()).await.unwrap();
        assert_eq!(stack.backends().len(), 5);
        let env = stack.env();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert!(get("AZURE_OPENAI_ENDPOINT").starts_with("http://127.0.0.1:"));
        assert!(get("OPENROUTER_BASE_URL").ends_with("/api/v1"));
        assert!(
            get("APPLICATIONINSIGHTS_CONNECTION_STRING")
                .starts_with("InstrumentationKey=00000000-")
        );
        let urls: std::collections::HashSet<_> =
            stack.backends().iter().map(|b| b.url.clone()).collect();
        assert_eq!(urls.len(), 5, "each backend on its own port");
        assert_eq!(
            stack.received(),
            vec![
                ("Langfuse", 0),
                ("Application Insights", 0),
                ("OTLP collector", 0)
            ]
        );
        stack.stop().await;
    }
}
