//! The Azure OpenAI Batch API: upload a JSONL file (`purpose=batch`), create
//! a batch, poll it, download its output and error files.
//!
//! Paths (all with `?api-version=…` and the `api-key` header):
//! `POST /openai/files` (multipart), `GET /openai/files/{id}`,
//! `GET /openai/files/{id}/content`, `POST /openai/batches`,
//! `GET /openai/batches/{id}`, `POST /openai/batches/{id}/cancel`.

use crate::llm::{LlmError, LlmErrorKind, LlmRequest, LlmResponse};
use bytes::Bytes;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::azure::{AzureTarget, parse_endpoint};
use super::chat::{ChatBody, describe_error, response_from_value};
use super::http::Backend;
use super::send::{Answer, Sender, Verdict, classify_status, truncate};
use super::{ClientError, ClientSettings};

const SERVICE: &str = "Azure OpenAI Batch API";
const LINE_SERVICE: &str = "Azure OpenAI (batch line)";

/// Status of a batch job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchStatus {
    /// The input file is being validated.
    Validating,
    /// Running.
    InProgress,
    /// Done; results are being prepared.
    Finalizing,
    /// Results are ready.
    Completed,
    /// The input file failed validation.
    Failed,
    /// Not finished within the completion window (partial results).
    Expired,
    /// Being cancelled.
    Cancelling,
    /// Cancelled (partial results).
    Cancelled,
    /// A status this client does not know.
    Other(String),
}

impl BatchStatus {
    /// Parses a status; Azure has sent both `in_progress` and `InProgress`.
    pub fn parse(s: &str) -> Self {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        match norm.as_str() {
            "validating" => Self::Validating,
            "inprogress" => Self::InProgress,
            "finalizing" => Self::Finalizing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "cancelling" => Self::Cancelling,
            "cancelled" | "canceled" => Self::Cancelled,
            _ => Self::Other(s.to_string()),
        }
    }

    /// The API's snake_case name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Validating => "validating",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// Whether the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Expired | Self::Cancelled
        )
    }
}

impl std::fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch job as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchJob {
    /// Batch id (`batch_…`).
    pub id: String,
    /// Status.
    pub status: BatchStatus,
    /// Output file, once there are results.
    pub output_file_id: Option<String>,
    /// Error file, when lines failed.
    pub error_file_id: Option<String>,
    /// Job-level errors (validation failures), as `code: message [line n]`.
    pub errors: Vec<String>,
    /// `(total, completed, failed)` request counts, when reported.
    pub request_counts: Option<(u64, u64, u64)>,
}

#[derive(Deserialize)]
struct WireBatch {
    id: String,
    status: String,
    #[serde(default)]
    output_file_id: Option<String>,
    #[serde(default)]
    error_file_id: Option<String>,
    #[serde(default)]
    errors: Option<WireErrors>,
    #[serde(default)]
    request_counts: Option<WireCounts>,
}

#[derive(Deserialize)]
struct WireErrors {
    #[serde(default)]
    data: Option<Vec<WireErrorItem>>,
}

#[derive(Deserialize)]
struct WireErrorItem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    line: Option<u64>,
}

#[derive(Deserialize)]
struct WireCounts {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    completed: Option<u64>,
    #[serde(default)]
    failed: Option<u64>,
}

impl From<WireBatch> for BatchJob {
    fn from(w: WireBatch) -> Self {
        let errors = w
            .errors
            .and_then(|e| e.data)
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let mut s = format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("error"),
                    e.message.as_deref().unwrap_or("no message")
                );
                if let Some(line) = e.line {
                    s.push_str(&format!(" [line {line}]"));
                }
                s
            })
            .collect();
        Self {
            id: w.id,
            status: BatchStatus::parse(&w.status),
            output_file_id: w.output_file_id.filter(|s| !s.is_empty()),
            error_file_id: w.error_file_id.filter(|s| !s.is_empty()),
            errors,
            request_counts: w.request_counts.map(|c| {
                (
                    c.total.unwrap_or(0),
                    c.completed.unwrap_or(0),
                    c.failed.unwrap_or(0),
                )
            }),
        }
    }
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileObject {
    /// File id (`file-…`).
    pub id: String,
    /// `pending`, `uploaded`, `processed`, `error`, ...
    #[serde(default)]
    pub status: Option<String>,
}

/// One line of a batch input file.
#[derive(Serialize)]
struct InputLine<'a> {
    custom_id: &'a str,
    method: &'static str,
    url: &'static str,
    body: ChatBody<'a>,
}

/// Talks to the Batch API of one Azure OpenAI resource and deployment.
#[derive(Debug, Clone)]
pub struct AzureBatchClient {
    sender: Sender,
    base: reqwest::Url,
    api_version: String,
    deployment: String,
}

impl AzureBatchClient {
    /// A client for `target` (its deployment must be a Global-Batch one).
    pub fn new(target: AzureTarget, settings: &ClientSettings) -> Result<Self, ClientError> {
        let base = parse_endpoint(&target.endpoint)?;
        if base.cannot_be_a_base() {
            return Err(ClientError::NotABase {
                field: "endpoint",
                value: target.endpoint,
            });
        }
        Ok(Self {
            sender: Sender::new(
                Backend::AzureOpenAi,
                SERVICE,
                target.api_key,
                &base,
                settings,
            )?,
            base,
            api_version: target.api_version,
            deployment: target.deployment,
        })
    }

    /// The deployment every line targets.
    pub fn deployment(&self) -> &str {
        &self.deployment
    }

    /// The endpoint's host.
    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or_default()
    }

    /// One JSONL input line (no trailing newline): `custom_id`, `method`,
    /// `url: /chat/completions` and the body with `model` = the deployment.
    pub fn input_line(&self, custom_id: &str, request: &LlmRequest) -> String {
        let line = InputLine {
            custom_id,
            method: "POST",
            url: "/chat/completions",
            body: ChatBody::new(request, Some(&self.deployment)),
        };
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }

    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("openai").extend(segments);
        }
        url.query_pairs_mut()
            .append_pair("api-version", &self.api_version);
        url
    }

    fn get(&self, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.sender
            .http
            .get(url)
            .header("api-key", self.sender.key.expose_secret())
    }

    fn post(&self, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.sender
            .http
            .post(url)
            .header("api-key", self.sender.key.expose_secret())
    }

    /// Uploads `content` as a `purpose=batch` file named `filename` (multipart,
    /// the file part typed `application/json` as in Azure's own example).
    pub async fn upload(&self, filename: &str, content: Bytes) -> Result<FileObject, LlmError> {
        let url = self.url(&["files"]);
        let len = content.len() as u64;
        self.sender
            .execute(
                "llm.batch.upload",
                &content,
                || {
                    let part = reqwest::multipart::Part::stream_with_length(content.clone(), len)
                        .file_name(filename.to_string())
                        .mime_str("application/json")
                        .unwrap_or_else(|_| {
                            reqwest::multipart::Part::stream_with_length(content.clone(), len)
                                .file_name(filename.to_string())
                        });
                    let form = reqwest::multipart::Form::new()
                        .text("purpose", "batch")
                        .part("file", part);
                    self.post(url.clone()).multipart(form)
                },
                |a| json_answer::<FileObject>(a, "file upload"),
            )
            .await
    }

    /// The file's metadata (its processing `status`).
    pub async fn file(&self, file_id: &str) -> Result<FileObject, LlmError> {
        let url = self.url(&["files", file_id]);
        self.sender
            .execute(
                "llm.batch.file",
                b"",
                || self.get(url.clone()),
                |a| json_answer::<FileObject>(a, "file status"),
            )
            .await
    }

    /// A file's content (an output or error JSONL file).
    pub async fn file_content(&self, file_id: &str) -> Result<Bytes, LlmError> {
        let url = self.url(&["files", file_id, "content"]);
        self.sender
            .execute(
                "llm.batch.download",
                b"",
                || self.get(url.clone()),
                |a| {
                    if a.status.is_success() {
                        Verdict::Done(a.body.clone())
                    } else {
                        classify_status(SERVICE, a.status, &a.body)
                    }
                },
            )
            .await
    }

    /// Creates a batch over an uploaded file. Not retried after a timeout or
    /// a 5xx (the job may exist: retrying could pay for it twice).
    pub async fn create_batch(
        &self,
        input_file_id: &str,
        completion_window: &str,
    ) -> Result<BatchJob, LlmError> {
        let url = self.url(&["batches"]);
        let body = serde_json::to_vec(&serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": "/chat/completions",
            "completion_window": completion_window,
        }))
        .unwrap_or_default();
        self.sender
            .execute_with(
                false,
                "llm.batch.create",
                &body,
                || {
                    self.post(url.clone())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
                |a| match json_answer::<WireBatch>(a, "batch creation") {
                    Verdict::Retry(e) if a.status != http::StatusCode::TOO_MANY_REQUESTS => {
                        Verdict::Fail(e)
                    }
                    Verdict::Done(w) => Verdict::Done(BatchJob::from(w)),
                    Verdict::Retry(e) => Verdict::Retry(e),
                    Verdict::Fail(e) => Verdict::Fail(e),
                },
            )
            .await
    }

    /// The batch's current state.
    pub async fn batch(&self, batch_id: &str) -> Result<BatchJob, LlmError> {
        let url = self.url(&["batches", batch_id]);
        self.sender
            .execute(
                "llm.batch.poll",
                b"",
                || self.get(url.clone()),
                |a| match json_answer::<WireBatch>(a, "batch status") {
                    Verdict::Done(w) => Verdict::Done(BatchJob::from(w)),
                    Verdict::Retry(e) => Verdict::Retry(e),
                    Verdict::Fail(e) => Verdict::Fail(e),
                },
            )
            .await
    }

    /// Asks the service to cancel the batch.
    pub async fn cancel(&self, batch_id: &str) -> Result<BatchJob, LlmError> {
        let url = self.url(&["batches", batch_id, "cancel"]);
        self.sender
            .execute(
                "llm.batch.cancel",
                b"",
                || self.post(url.clone()),
                |a| match json_answer::<WireBatch>(a, "batch cancel") {
                    Verdict::Done(w) => Verdict::Done(BatchJob::from(w)),
                    Verdict::Retry(e) => Verdict::Retry(e),
                    Verdict::Fail(e) => Verdict::Fail(e),
                },
            )
            .await
    }
}

fn json_answer<T: for<'de> Deserialize<'de>>(a: &Answer, what: &str) -> Verdict<T> {
    if !a.status.is_success() {
        return classify_status(SERVICE, a.status, &a.body);
    }
    match serde_json::from_slice::<T>(&a.body) {
        Ok(v) => Verdict::Done(v),
        Err(e) => Verdict::Fail(LlmError::new(
            LlmErrorKind::MalformedResponse,
            format!(
                "{SERVICE} sent an unexpected {what} reply: {e} (body starts with {:?})",
                truncate(String::from_utf8_lossy(&a.body).trim(), 80)
            ),
        )),
    }
}

#[derive(Deserialize)]
struct OutputLine {
    custom_id: String,
    #[serde(default)]
    response: Option<OutputResponse>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OutputResponse {
    status_code: u16,
    #[serde(default)]
    body: serde_json::Value,
}

/// One line's result: its `custom_id` and the reply or the error.
pub type LineResult = (String, Result<LlmResponse, LlmError>);

/// The results in an output or error file, in file order, plus a
/// description of each line that could not be read.
pub fn parse_results(content: &[u8]) -> (Vec<LineResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in content.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let parsed: OutputLine = match serde_json::from_slice(line) {
            Ok(l) => l,
            Err(e) => {
                bad.push(format!("line {}: {e}", n + 1));
                continue;
            }
        };
        let result = match (parsed.error.filter(|e| !e.is_null()), parsed.response) {
            (Some(error), _) => Err(line_error(&error)),
            (None, Some(response)) => {
                response_from_value(LINE_SERVICE, response.status_code, &response.body)
            }
            (None, None) => Err(LlmError::new(
                LlmErrorKind::MalformedResponse,
                "batch output line has neither `response` nor `error`",
            )),
        };
        results.push((parsed.custom_id, result));
    }
    (results, bad)
}

fn line_error(error: &serde_json::Value) -> LlmError {
    let (message, code) = describe_error(error);
    let message = message.unwrap_or_else(|| "no message".into());
    let kind = match code.as_deref() {
        Some("content_filter") | Some("ResponsibleAIPolicyViolation") => {
            LlmErrorKind::ContentFilter
        }
        Some("rate_limit_exceeded") | Some("429") => LlmErrorKind::RateLimited,
        Some("server_error") | Some("internal_error") => LlmErrorKind::Server,
        _ => LlmErrorKind::Job,
    };
    let code = code.unwrap_or_else(|| "error".into());
    LlmError::new(kind, format!("batch line failed ({code}): {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;
    use secrecy::SecretString;

    fn client() -> AzureBatchClient {
        AzureBatchClient::new(
            AzureTarget {
                endpoint: "https://res.openai.azure.com".into(),
                deployment: "gpt-4o-batch".into(),
                api_version: "2024-10-21".into(),
                api_key: SecretString::from("key"),
            },
            &ClientSettings::default(),
        )
        .unwrap()
    }

    #[test]
    fn statuses_parse_in_both_spellings() {
        assert_eq!(BatchStatus::parse("in_progress"), BatchStatus::InProgress);
        assert_eq!(BatchStatus::parse("InProgress"), BatchStatus::InProgress);
        assert_eq!(BatchStatus::parse("Validating"), BatchStatus::Validating);
        assert_eq!(
            BatchStatus::parse("weird"),
            BatchStatus::Other("weird".into())
        );
        assert!(BatchStatus::Expired.is_terminal());
        assert!(!BatchStatus::Cancelling.is_terminal());
    }

    #[test]
    fn urls_and_lines() {
        let c = client();
        assert_eq!(
            c.url(&["batches", "batch_1"]).as_str(),
            "https://res.openai.azure.com/openai/batches/batch_1?api-version=2024-10-21"
        );
        assert_eq!(
            c.url(&["files", "file-1", "content"]).as_str(),
            "https://res.openai.azure.com/openai/files/file-1/content?api-version=2024-10-21"
        );
        let line: serde_json::Value =
            serde_json::from_str(&c.input_line("row-7", &LlmRequest::user("ignored", "hi")))
                .unwrap();
        assert_eq!(
            line,
            serde_json::json!({"custom_id": "row-7", "method": "POST", "url": "/chat/completions",
                "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]}})
        );
    }

    #[test]
    fn results_in_any_order_with_failures() {
        let content = concat!(
            r#"{"custom_id":"row-2","response":{"status_code":200,"request_id":"r2","body":{"id":"chatcmpl-2","model":"gpt-4o","choices":[{"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}},"error":null}"#,
            "\n\n",
            r#"{"custom_id":"row-1","response":{"status_code":400,"body":{"error":{"code":"content_filter","message":"filtered"}}},"error":null}"#,
            "\n",
            r#"{"custom_id":"row-3","response":null,"error":{"code":"server_error","message":"boom"}}"#,
            "\nnot json\n"
        );
        let (results, bad) = parse_results(content.as_bytes());
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("line 5:"), "{bad:?}");
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].0, "row-2");
        let ok = results[0].1.as_ref().unwrap();
        assert_eq!(ok.content, "two");
        assert_eq!(
            ok.usage,
            Some(Usage {
                input: 5,
                output: 1,
                total: 6,
                ..Default::default()
            })
        );
        let filtered = results[1].1.as_ref().unwrap_err();
        assert_eq!(filtered.kind, LlmErrorKind::ContentFilter);
        assert_eq!(filtered.http_status, Some(400));
        let failed = results[2].1.as_ref().unwrap_err();
        assert_eq!(failed.kind, LlmErrorKind::Server);
        assert_eq!(failed.message, "batch line failed (server_error): boom");
    }

    #[test]
    fn batch_objects_parse() {
        let w: WireBatch = serde_json::from_str(r#"{"id":"batch_1","status":"Failed","created_at":"2024-07-19T17:13:57Z","errors":{"object":"list","data":[{"code":"invalid_json_line","message":"bad line","line":2}]},"request_counts":{"total":null,"completed":null,"failed":null}}"#).unwrap();
        let b = BatchJob::from(w);
        assert_eq!(b.status, BatchStatus::Failed);
        assert_eq!(
            b.errors,
            vec!["invalid_json_line: bad line [line 2]".to_string()]
        );
        assert_eq!(b.request_counts, Some((0, 0, 0)));
    }
}
