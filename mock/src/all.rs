//! Every mock backend at once, for `elspeth mock-server` and
//! `elspeth run --with-mocks`: each on its own 127.0.0.1 port, plus the
//! environment variables that point a pipeline at them.

use std::time::Duration;

use crate::azure::AzureMock;
use crate::openrouter::{API_PREFIX, OpenRouterMock};
use crate::server::MockServer;

/// API key the Azure OpenAI mock accepts.
pub const AZURE_KEY: &str = "mock-azure-openai-key";
/// API key the OpenRouter mock accepts.
pub const OPENROUTER_KEY: &str = "mock-openrouter-key";

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

/// One running backend.
#[derive(Debug)]
pub struct Backend {
    /// Display name, e.g. `Azure OpenAI`.
    pub name: &'static str,
    /// What it serves, e.g. `chat + files + batches`.
    pub serves: &'static str,
    /// The URL to configure (base URL or endpoint).
    pub url: String,
    server: MockServer,
}

/// The running mocks. Dropping it stops them.
#[derive(Debug)]
pub struct MockStack {
    /// The Azure OpenAI mock (for counters and faults).
    pub azure: AzureMock,
    /// The OpenRouter mock.
    pub openrouter: OpenRouterMock,
    backends: Vec<Backend>,
}

impl MockStack {
    /// Starts every backend.
    pub async fn start(options: StackOptions) -> std::io::Result<Self> {
        let next_port = {
            let mut n = 0u16;
            move || {
                let p = if options.port == 0 {
                    0
                } else {
                    options.port.saturating_add(n)
                };
                n += 1;
                p
            }
        };
        let mut next_port = next_port;
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
        let mut backends = Vec::new();
        let server = azure.start(next_port()).await?;
        backends.push(Backend {
            name: "Azure OpenAI",
            serves: "chat completions, files, Batch API",
            url: server.url(),
            server,
        });
        let server = openrouter.start(next_port()).await?;
        backends.push(Backend {
            name: "OpenRouter",
            serves: "chat completions (usage with cost)",
            url: format!("{}{API_PREFIX}", server.url()),
            server,
        });
        Ok(Self {
            azure,
            openrouter,
            backends,
        })
    }

    /// The running backends, in start order.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// `(name, value)` of every environment variable that points a
    /// pipeline at the mocks.
    pub fn env(&self) -> Vec<(String, String)> {
        let url = |name: &str| {
            self.backends
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.url.clone())
                .unwrap_or_default()
        };
        vec![
            ("AZURE_OPENAI_ENDPOINT".into(), url("Azure OpenAI")),
            ("AZURE_OPENAI_KEY".into(), AZURE_KEY.into()),
            ("OPENROUTER_BASE_URL".into(), url("OpenRouter")),
            ("OPENROUTER_API_KEY".into(), OPENROUTER_KEY.into()),
        ]
    }

    /// Stops every backend.
    pub async fn stop(self) {
        for b in self.backends {
            b.server.stop().await;
        }
    }
}
