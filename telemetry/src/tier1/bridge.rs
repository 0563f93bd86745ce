//! An `HttpClient` for the OpenTelemetry batch span processor.
//!
//! The SDK's batch processor exports from a plain OS thread
//! (`futures_executor::block_on`), where reqwest's async client cannot run
//! (it needs a Tokio reactor). This bridge spawns each request on the
//! pipeline's Tokio runtime and waits for its `JoinHandle`, which works from
//! any executor.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};

#[derive(Debug, Clone)]
pub(crate) struct TokioBridge {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
    timeout: Duration,
}

impl TokioBridge {
    pub(crate) fn new(
        client: reqwest::Client,
        handle: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            handle,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for TokioBridge {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let task = self.handle.spawn(async move {
            let (parts, body) = request.into_parts();
            let url = reqwest::Url::parse(&parts.uri.to_string())?;
            let response = client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| e.without_url())?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| e.without_url())?;
            let mut out = Response::builder().status(status).body(bytes)?;
            *out.headers_mut() = headers;
            Ok::<_, HttpError>(out)
        });
        task.await.map_err(|e| -> HttpError {
            format!("Tier 1 export task did not finish: {e}").into()
        })?
    }
}
