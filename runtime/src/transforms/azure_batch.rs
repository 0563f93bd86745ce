//! `azure_batch_llm`: rows in jobs of `batch_size` through the Azure OpenAI
//! Batch API — upload the JSONL, create the batch, poll it, download the
//! output and error files, match lines back to rows by `custom_id`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use std::sync::Arc;

use elspeth_schema::config::AzureBatchLlmOptions;

use super::chat_core::not_started;
use super::checkpoint::{CheckpointDir, job_key};
use super::prompt::Prompt;
use crate::clients::azure_batch::parse_results;
use crate::clients::{AzureBatchClient, BatchJob, BatchStatus};
use crate::llm::{
    GenAiSystem, JobLine, JobOutcome, LlmError, LlmErrorKind, LlmJob, LlmRequest, LlmResponse,
};
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, Target, TransformSpec};
use crate::row::Row;
use crate::transform::{DynTransform, RowError, StartContext, StartError};
use crate::usage::UsageMeter;

const PLUGIN: &str = "azure_batch_llm";

/// The Azure OpenAI Batch API, one job per `batch_size` rows.
///
/// Tracing: one job span (batch id, rows, final status) holding one
/// generation per row rebuilt from the output file. The batch id is
/// checkpointed next to the sink as soon as the job exists, so a re-run after
/// a crash resumes polling that job (see [`super::checkpoint`]).
#[elspeth_macros::llm_transform(tracing, name = "azure_batch_llm", mode = job, crate = crate)]
pub struct AzureBatchLlm {
    config: AzureBatchLlmOptions,
    prompt: Prompt,
    target: Target,
    client: Option<AzureBatchClient>,
    /// How its lines are priced (the batch discount applied).
    price: crate::cost::TransformPrice,
    /// The transform's usage meter, from `on_start`.
    usage: Option<Arc<UsageMeter>>,
    checkpoints: Option<CheckpointDir>,
}

impl AzureBatchLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: AzureBatchLlmOptions, spec: TransformSpec) -> Self {
        Self {
            config,
            prompt: spec.prompt,
            target: spec.target,
            price: spec.price,
            client: None,
            usage: None,
            checkpoints: None,
        }
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.config.batch.poll_interval_s.clamp(0.001, 3600.0))
    }

    /// The batch id of a checkpointed job that still exists, with its
    /// submission time.
    async fn resume(
        &self,
        client: &AzureBatchClient,
        key: &str,
    ) -> Result<Option<(String, SystemTime)>, LlmError> {
        let Some(store) = &self.checkpoints else {
            return Ok(None);
        };
        let Some(cp) = store.load(key) else {
            return Ok(None);
        };
        match client.batch(&cp.batch_id).await {
            Ok(job) => {
                tracing::info!(
                    batch_id = %cp.batch_id,
                    status = %job.status,
                    checkpoint = %store.describe(key),
                    "resuming the checkpointed Azure batch job instead of submitting a new one"
                );
                let submitted = cp.submitted_at();
                Ok(Some((cp.batch_id, submitted)))
            }
            Err(e) if e.http_status == Some(404) => {
                tracing::warn!(
                    batch_id = %cp.batch_id,
                    "the checkpointed Azure batch job no longer exists; submitting a new one"
                );
                store.remove(key);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads the input, waits for the file to be processed, creates the
    /// batch and checkpoints its id.
    async fn submit(
        &self,
        client: &AzureBatchClient,
        key: &str,
        jsonl: String,
        rows: usize,
    ) -> Result<(String, SystemTime), LlmError> {
        let file = client
            .upload(&format!("elspeth-{PLUGIN}-{key}.jsonl"), Bytes::from(jsonl))
            .await?;
        self.wait_for_file(client, &file.id, file.status.as_deref())
            .await?;
        let job = client
            .create_batch(&file.id, self.config.batch.completion_window.as_str())
            .await?;
        let submitted = SystemTime::now();
        tracing::info!(batch_id = %job.id, rows, "submitted Azure batch job");
        if let Some(store) = &self.checkpoints {
            let cp = store.record(key, &job.id, &file.id, client.deployment(), rows);
            if let Err(e) = store.save(&cp) {
                tracing::warn!(
                    path = %store.describe(key),
                    error = %e,
                    "could not write the batch checkpoint; a re-run after a crash would submit a new job"
                );
            }
        }
        Ok((job.id, submitted))
    }

    async fn wait_for_file(
        &self,
        client: &AzureBatchClient,
        file_id: &str,
        status: Option<&str>,
    ) -> Result<(), LlmError> {
        let mut status = status.map(str::to_string);
        let interval = self.poll_interval().min(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            match status.as_deref() {
                None | Some("processed") => return Ok(()),
                Some("error") | Some("deleted") => {
                    return Err(LlmError::new(
                        LlmErrorKind::Job,
                        format!(
                            "the uploaded batch input file {file_id} could not be processed (status `error`)"
                        ),
                    ));
                }
                Some(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(LlmError::new(
                        LlmErrorKind::Job,
                        format!(
                            "the uploaded batch input file {file_id} was not processed within 10 minutes"
                        ),
                    ));
                }
                Some(_) => {}
            }
            tokio::time::sleep(interval).await;
            status = client.file(file_id).await?.status;
        }
    }

    /// Polls until the job reaches a terminal status.
    async fn wait(&self, client: &AzureBatchClient, batch_id: &str) -> Result<BatchJob, LlmError> {
        let mut last: Option<BatchStatus> = None;
        loop {
            let job = client.batch(batch_id).await?;
            if last.as_ref() != Some(&job.status) {
                tracing::info!(batch_id, status = %job.status, "Azure batch job status");
                last = Some(job.status.clone());
            }
            if job.status.is_terminal() {
                return Ok(job);
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
    }

    /// Downloads and matches the results; every line gets one.
    async fn collect(
        &self,
        client: &AzureBatchClient,
        job: &BatchJob,
        lines: &[JobLine],
    ) -> Result<HashMap<String, Result<LlmResponse, LlmError>>, LlmError> {
        let wanted: std::collections::HashSet<&str> =
            lines.iter().map(|l| l.custom_id.as_str()).collect();
        let mut results = HashMap::with_capacity(lines.len());
        for file_id in [&job.output_file_id, &job.error_file_id]
            .into_iter()
            .flatten()
        {
            let content = client.file_content(file_id).await?;
            let (parsed, bad) = parse_results(&content);
            if !bad.is_empty() {
                tracing::warn!(batch_id = %job.id, file_id, lines = ?bad, "batch result lines that could not be read");
            }
            for (custom_id, result) in parsed {
                if !wanted.contains(custom_id.as_str()) {
                    tracing::warn!(batch_id = %job.id, custom_id, "batch result for an unknown custom_id; ignored");
                    continue;
                }
                // The output file wins over the error file for the same line.
                results.entry(custom_id).or_insert(result);
            }
        }
        let missing = |status: &BatchStatus| -> LlmError {
            let message = match status {
                BatchStatus::Failed if !job.errors.is_empty() => {
                    format!("batch job {} failed: {}", job.id, job.errors.join("; "))
                }
                BatchStatus::Failed => format!("batch job {} failed", job.id),
                BatchStatus::Expired => format!(
                    "batch job {} expired (completion window {}) before this row was processed",
                    job.id,
                    self.config.batch.completion_window.as_str()
                ),
                BatchStatus::Cancelled => format!(
                    "batch job {} was cancelled before this row was processed",
                    job.id
                ),
                other => format!(
                    "batch job {} ended `{other}` without a result for this row",
                    job.id
                ),
            };
            LlmError::new(LlmErrorKind::Job, message)
        };
        for line in lines {
            results
                .entry(line.custom_id.clone())
                .or_insert_with(|| Err(missing(&job.status)));
        }
        for result in results.values_mut() {
            if let Ok(response) = result {
                // Batch API lines are billed at the batch discount.
                self.price.apply(response);
            }
            if let Some(usage) = &self.usage {
                usage.record_result(result);
            }
        }
        Ok(results)
    }
}

impl LlmJob for AzureBatchLlm {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }

    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", &self.config.connection.deployment_name)
    }

    fn batch_size(&self) -> usize {
        self.config.batch.batch_size.max(1) as usize
    }

    async fn setup(&mut self, ctx: &StartContext) -> Result<(), StartError> {
        let Target::Azure(target) = self.target.clone() else {
            return Err(ctx.error("the plan gave this transform a target of another service"));
        };
        let settings = ctx.client_settings(&self.config.call);
        self.client = Some(AzureBatchClient::new(target, &settings).map_err(|e| ctx.error(e))?);
        self.usage = Some(ctx.usage.clone());
        // In the run store when there is one; files beside the sink otherwise.
        self.checkpoints = match (&ctx.store, &ctx.checkpoint_dir) {
            (Some(store), _) => Some(CheckpointDir::in_store(
                store.clone(),
                PLUGIN,
                ctx.label.index,
            )),
            (None, Some(dir)) => Some(CheckpointDir::new(dir, PLUGIN, ctx.label.index)),
            (None, None) => None,
        };
        Ok(())
    }

    fn plan(&self, row: &Row) -> Result<LlmRequest, RowError> {
        self.prompt.request(row, None)
    }

    async fn run_job(&self, lines: Vec<JobLine>) -> Result<JobOutcome, LlmError> {
        let client = self.client.as_ref().ok_or_else(not_started)?;
        let mut jsonl = String::with_capacity(lines.len() * 256);
        for line in &lines {
            jsonl.push_str(&client.input_line(&line.custom_id, &line.request));
            jsonl.push('\n');
        }
        let key = job_key(&[
            client.host().as_bytes(),
            client.deployment().as_bytes(),
            jsonl.as_bytes(),
        ]);
        let (batch_id, started) = match self.resume(client, &key).await? {
            Some(resumed) => resumed,
            None => self.submit(client, &key, jsonl, lines.len()).await?,
        };
        let job = self.wait(client, &batch_id).await?;
        let results = self.collect(client, &job, &lines).await?;
        if let Some(store) = &self.checkpoints {
            store.remove(&key);
        }
        Ok(JobOutcome {
            batch_id,
            status: job.status.as_str().into(),
            results,
            started,
            finished: SystemTime::now(),
        })
    }

    fn merge(&self, mut row: Row, result: Result<LlmResponse, LlmError>) -> Result<Row, RowError> {
        self.prompt.merge_one(&mut row, None, result)?;
        Ok(row)
    }
}

impl BuildTransform for AzureBatchLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(
            self,
            Mode::Job {
                batch_size: self.batch.batch_size.max(1) as usize,
            },
            Service::AzureOpenAiBatch,
        )
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(AzureBatchLlm::from_spec(self.clone(), spec))
    }
}
