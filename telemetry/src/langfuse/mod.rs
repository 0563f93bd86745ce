//! The Langfuse exporter: OTLP/HTTP protobuf to
//! `POST {host}/api/public/otel/v1/traces`.
//!
//! Wire format (checked against the requests of the official Langfuse
//! Python SDK and against the Langfuse server's own
//! `OtelIngestionProcessor`, see `telemetry/README.md`):
//!
//! - body: an `ExportTraceServiceRequest`, protobuf, gzip
//!   (`Content-Encoding: gzip`; the Langfuse endpoint only decodes gzip);
//! - headers: `Content-Type: application/x-protobuf`, `Authorization: Basic
//!   base64(public_key:secret_key)`, `x-langfuse-public-key`,
//!   `x-langfuse-sdk-name: rust`, `x-langfuse-sdk-version: <elspeth version>`,
//!   `x-langfuse-ingestion-version: 4`;
//! - span names are the Langfuse observation names: `elspeth.<plugin>` for
//!   the row's root span and `llm_call` for a generation (Langfuse takes the
//!   observation name from the span name, so the GenAI name `chat {model}`
//!   is used for Application Insights only); generations are `CLIENT` spans;
//! - attributes: see [`attributes`].
//!
//! The legacy `/api/public/ingestion` endpoint is never used.

pub(crate) mod attributes;
mod encode;

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use secrecy::{ExposeSecret, SecretString};

use crate::export::{
    ExportConfig, Exporter, SendOutcome, Transport, classify_reqwest_error, classify_status,
};
use crate::record::{SharedStr, SpanRecord};
use crate::sink::BoxFuture;

pub(crate) use attributes::Decor;

/// Batches of up to this many spans are brief work for
/// [`crate::http::cpu_bound`] (well under a millisecond for the default
/// 512): encoded and compressed on the async worker itself when another
/// worker can take over meanwhile.
const INLINE_SPANS: usize = 1024;

/// Path of the Langfuse OTLP traces endpoint, under the host.
pub const OTEL_TRACES_PATH: &str = "/api/public/otel/v1/traces";

/// Resolved settings of one Langfuse exporter.
///
/// `Debug` never shows the secret key.
#[derive(Clone)]
pub struct LangfuseSettings {
    /// Base URL, e.g. `https://cloud.langfuse.com` (no trailing slash).
    pub host: String,
    /// Public key (`pk-lf-...`).
    pub public_key: String,
    /// Secret key (`sk-lf-...`).
    pub secret_key: SecretString,
    /// `langfuse.environment`, on the resource and every span.
    pub environment: Option<String>,
    /// `langfuse.release`, on the resource and every span.
    pub release: Option<String>,
    /// `langfuse.trace.tags` on every span.
    pub tags: Vec<String>,
}

impl fmt::Debug for LangfuseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangfuseSettings")
            .field("host", &self.host)
            .field("public_key", &self.public_key)
            .field("secret_key", &"<redacted>")
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("tags", &self.tags)
            .finish()
    }
}

impl LangfuseSettings {
    /// Settings for `host` and the two keys, nothing else set.
    pub fn new(
        host: impl Into<String>,
        public_key: impl Into<String>,
        secret_key: SecretString,
    ) -> Self {
        Self {
            host: host.into(),
            public_key: public_key.into(),
            secret_key,
            environment: None,
            release: None,
            tags: Vec::new(),
        }
    }

    /// Checks the host (an `http(s)://` URL without query) and normalises it
    /// (no trailing `/`). The error says what is wrong; it never contains a key.
    pub fn validate(mut self) -> Result<Self, LangfuseSettingsError> {
        let host = self.host.trim().trim_end_matches('/').to_string();
        // Errors show the host masked: a malformed one may still hold a
        // password or a token.
        let shown = || elspeth_core::redact::url(&host).into_owned();
        let url = reqwest::Url::parse(&host).map_err(|e| LangfuseSettingsError::HostNotAUrl {
            host: shown(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LangfuseSettingsError::HostScheme { host: shown() });
        }
        if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(LangfuseSettingsError::HostNotPlain {
                host: url.host_str().unwrap_or("?").to_string(),
            });
        }
        if self.public_key.trim().is_empty() {
            return Err(LangfuseSettingsError::EmptyPublicKey);
        }
        if self.secret_key.expose_secret().trim().is_empty() {
            return Err(LangfuseSettingsError::EmptySecretKey);
        }
        if let Some(env) = &self.environment {
            let ok = env.len() <= 40
                && !env.starts_with("langfuse")
                && env
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return Err(LangfuseSettingsError::Environment {
                    environment: env.clone(),
                });
            }
        }
        self.host = host;
        Ok(self)
    }

    /// `{host}/api/public/otel/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("{}{OTEL_TRACES_PATH}", self.host.trim_end_matches('/'))
    }

    /// `langfuse <host> (<public key>)`: names the exporter in logs; the
    /// public key tells two projects on one host apart (it is not a secret).
    pub fn label(&self) -> String {
        format!(
            "langfuse {} ({})",
            elspeth_core::redact::url(&self.host),
            self.public_key
        )
    }
}

/// Why Langfuse settings cannot be used. Never contains a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LangfuseSettingsError {
    /// The host does not parse as a URL.
    #[error(
        "langfuse host `{host}` is not a valid URL ({reason}); use e.g. https://cloud.langfuse.com"
    )]
    HostNotAUrl {
        /// The host as given, credentials masked.
        host: String,
        /// The URL parser's complaint.
        reason: String,
    },
    /// The host is not `http(s)://`.
    #[error("langfuse host `{host}` must start with http:// or https://")]
    HostScheme {
        /// The host as given, credentials masked.
        host: String,
    },
    /// The host has credentials or a query string.
    #[error("langfuse host `{host}` must be a plain base URL (no credentials or query string)")]
    HostNotPlain {
        /// The host name only (the rest may hold credentials).
        host: String,
    },
    /// The public key is empty.
    #[error("langfuse public_key is empty. Use ${{LANGFUSE_PUBLIC_KEY}} in YAML.")]
    EmptyPublicKey,
    /// The secret key is empty.
    #[error("langfuse secret_key is empty. Use ${{LANGFUSE_SECRET_KEY}} in YAML.")]
    EmptySecretKey,
    /// The environment breaks Langfuse's rule.
    #[error(
        "langfuse environment `{environment}` is invalid: use at most 40 lowercase letters, digits, `-` or `_`, not starting with `langfuse`"
    )]
    Environment {
        /// The environment as given.
        environment: String,
    },
    /// The keys cannot be sent in an `Authorization` header.
    #[error("langfuse keys contain characters that cannot be sent in an HTTP header")]
    KeysNotAHeader,
    /// The public key cannot be sent in a header.
    #[error("langfuse public_key contains characters that cannot be sent in an HTTP header")]
    PublicKeyNotAHeader,
}

/// Why a Langfuse exporter could not be started. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum LangfuseError {
    /// The settings are unusable.
    #[error(transparent)]
    Settings(#[from] LangfuseSettingsError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] elspeth_core::http::ClientBuildError),
    /// No Tokio runtime to run the export worker on.
    #[error(transparent)]
    NoRuntime(#[from] crate::export::NoRuntime),
}

/// Sends batches to one Langfuse project.
pub(crate) struct LangfuseTransport {
    client: reqwest::Client,
    url: String,
    label: String,
    headers: HeaderMap,
    encoder: encode::Encoder,
    /// Spans' buffers of earlier requests, for the next ones to fill again.
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl LangfuseTransport {
    pub(crate) fn new(
        settings: &LangfuseSettings,
        client: reqwest::Client,
    ) -> Result<Self, LangfuseSettingsError> {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            settings.public_key,
            settings.secret_key.expose_secret()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| LangfuseSettingsError::KeysNotAHeader)?;
        auth.set_sensitive(true);
        let public_key = HeaderValue::from_str(&settings.public_key)
            .map_err(|_| LangfuseSettingsError::PublicKeyNotAHeader)?;
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, auth);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        headers.insert("x-langfuse-sdk-name", HeaderValue::from_static("rust"));
        headers.insert(
            "x-langfuse-sdk-version",
            HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        headers.insert("x-langfuse-public-key", public_key);
        headers.insert(
            "x-langfuse-ingestion-version",
            HeaderValue::from_static("4"),
        );
        let decor = Decor {
            environment: settings.environment.clone(),
            release: settings.release.clone(),
            tags: settings
                .tags
                .iter()
                .map(|t| SharedStr::from(t.as_str()))
                .collect(),
        };
        Ok(Self {
            client,
            url: settings.endpoint(),
            label: settings.label(),
            headers,
            encoder: encode::Encoder::new(decor, &settings.public_key, &crate::http::instance_id()),
            buffers: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn body(
        &self,
        batch: &[SpanRecord],
        truncate_to: Option<usize>,
    ) -> Result<Vec<u8>, std::io::Error> {
        // The spans' buffer is reused from batch to batch (one per request
        // in flight): no new buffer of the batch's size per request.
        let mut scope = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default();
        let head = self.encoder.encode_into(batch, truncate_to, &mut scope);
        let body = crate::gzip::gzip(&[&head, &scope]);
        if let Ok(mut buffers) = self.buffers.lock()
            && buffers.len() < 4
        {
            buffers.push(scope);
        }
        body
    }

    async fn send_once(&self, batch: &[SpanRecord], truncate_to: Option<usize>) -> SendOutcome {
        let brief = batch.len() <= INLINE_SPANS;
        let body = crate::http::cpu_bound(brief, || self.body(batch, truncate_to));
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                return SendOutcome::Rejected {
                    status: 0,
                    reason: format!("could not compress the request: {e}"),
                };
            }
        };
        let response = match self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return classify_reqwest_error(&e),
        };
        if let Some(outcome) = classify_status(response.status(), response.headers()) {
            return outcome;
        }
        let is_protobuf = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-protobuf"));
        match response.bytes().await {
            Ok(body) => partial_success(&body, is_protobuf),
            // The status said OK; a broken body afterwards does not undo that.
            Err(_) => SendOutcome::Accepted,
        }
    }
}

/// Reads OTLP partial success (`rejected_spans`) from a 2xx answer.
fn partial_success(body: &[u8], is_protobuf: bool) -> SendOutcome {
    let rejected = if is_protobuf {
        ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| p.rejected_spans)
            .unwrap_or(0)
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                let p = v
                    .get("partialSuccess")
                    .or_else(|| v.get("partial_success"))?;
                let n = p.get("rejectedSpans").or_else(|| p.get("rejected_spans"))?;
                n.as_i64()
                    .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0)
    };
    if rejected > 0 {
        SendOutcome::Partial {
            retry: Vec::new(),
            rejected: usize::try_from(rejected).unwrap_or(usize::MAX),
        }
    } else {
        SendOutcome::Accepted
    }
}

impl Transport for LangfuseTransport {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn auth_hint(&self) -> String {
        "Check that LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY belong to the same project on this host.".into()
    }

    fn send<'a>(
        &'a self,
        batch: &'a [SpanRecord],
        truncate_to: Option<usize>,
    ) -> BoxFuture<'a, SendOutcome> {
        Box::pin(self.send_once(batch, truncate_to))
    }
}

/// Starts a Langfuse exporter (queue, background worker, transport) on the
/// current Tokio runtime. Most code gets one through
/// [`TracingRegistry`](crate::TracingRegistry); tests and benches build
/// them directly.
///
/// ```no_run
/// # async fn demo() -> Result<(), elspeth_telemetry::langfuse::LangfuseError> {
/// use elspeth_telemetry::export::ExportConfig;
/// use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};
/// let settings = LangfuseSettings::new("http://127.0.0.1:3000", "pk-lf-1", "sk-lf-1".into());
/// let exporter = langfuse_exporter(settings, ExportConfig::default())?;
/// # Ok(()) }
/// ```
pub fn langfuse_exporter(
    settings: LangfuseSettings,
    config: ExportConfig,
) -> Result<Arc<Exporter>, LangfuseError> {
    langfuse_exporter_with(settings, crate::http::client()?, config)
}

/// Starts a Langfuse exporter with a given HTTP client (the registry shares
/// one client between exporters).
pub(crate) fn langfuse_exporter_with(
    settings: LangfuseSettings,
    client: reqwest::Client,
    config: ExportConfig,
) -> Result<Arc<Exporter>, LangfuseError> {
    let settings = settings.validate()?;
    let transport = LangfuseTransport::new(&settings, client)?;
    Ok(Exporter::start(Arc::new(transport), config)?)
}
