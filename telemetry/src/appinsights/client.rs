//! The two `HttpClient`s handed to `opentelemetry-application-insights`.
//!
//! - [`CaptureClient`] takes the `/v2/track` request the crate builds (its
//!   envelopes, JSON, gzip) and answers "accepted" without sending it: the
//!   shared export machinery sends it instead, because the crate's own
//!   uploader retries for up to 35 s without honouring `Retry-After`, treats
//!   413 as final and reports failures only as an opaque string (no status),
//!   so 401/403 detection, 413 splitting and exact counting would be
//!   impossible through it.
//! - [`LiveClient`] really sends the live metrics (QuickPulse) requests, on
//!   reqwest. The crate rewrites every endpoint to `https://`; this client
//!   puts back the scheme written in the connection string for that host
//!   (Microsoft's exporters keep it too), so a local `http://` endpoint works.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};

/// Captures the request instead of sending it. Clones share the slot.
#[derive(Debug, Default, Clone)]
pub(crate) struct CaptureClient {
    captured: Arc<Mutex<Option<Request<Bytes>>>>,
}

impl CaptureClient {
    /// The request captured since the last call.
    pub(crate) fn take(&self) -> Option<Request<Bytes>> {
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

#[async_trait::async_trait]
impl HttpClient for CaptureClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        *self
            .captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request);
        Ok(Response::builder().status(200).body(Bytes::from_static(
            br#"{"itemsReceived":0,"itemsAccepted":0,"errors":[]}"#,
        ))?)
    }
}

/// Sends live metrics requests with reqwest.
#[derive(Debug)]
pub(crate) struct LiveClient {
    pub(crate) client: reqwest::Client,
    /// `host:port` of the configured live endpoint and the scheme written
    /// for it.
    pub(crate) authority: String,
    pub(crate) scheme: String,
}

#[async_trait::async_trait]
impl HttpClient for LiveClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
            && parts.uri.scheme_str() != Some(self.scheme.as_str())
        {
            let mut uri = parts.uri.clone().into_parts();
            uri.scheme = Some(self.scheme.parse()?);
            parts.uri = http::Uri::from_parts(uri)?;
        }
        let url = reqwest::Url::parse(&parts.uri.to_string())?;
        let response = self
            .client
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .timeout(std::time::Duration::from_secs(20))
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let mut out = Response::builder().status(status).body(bytes)?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}
