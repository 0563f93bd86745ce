//! `elspeth traces replay`: delivers the spans earlier runs kept in the run
//! store because their backend did not take them in time.
//!
//! The backends are found again from the pipeline's `tracing:` blocks (the
//! secrets resolved from the environment as for a run), matched to the kept
//! spans by exporter label. Each batch is deleted from the store once the
//! backend accepted it (or refused it for good), so a second replay sends
//! nothing; a backend still down keeps its spans for the next replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use elspeth_schema::config::{Env, PipelineConfig};
pub use elspeth_telemetry::export::RetryPolicy;
use elspeth_telemetry::export::{SendOutcome, Transport};
use elspeth_telemetry::record::SpanRecord;

use crate::store::{RunStore, StoreError};
use crate::tracing_settings::transform_tracing;

/// Spans per replayed request.
const BATCH: usize = 512;

/// What one replay did for one exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The exporter's label.
    pub exporter: String,
    /// Spans the backend accepted (now deleted from the store).
    pub sent: u64,
    /// Spans dropped for good: refused by the backend (a 400), or no
    /// longer readable. Deleted from the store.
    pub refused: u64,
    /// Spans still kept (the backend is still unavailable, or the pipeline
    /// no longer traces there).
    pub left: u64,
    /// Why spans were left, when they were.
    pub problem: Option<String>,
}

/// Why a replay could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Delivers every span kept in `store` whose exporter the pipeline
/// `config` still traces to, `env` resolving its `${VAR}`s; each batch is
/// retried by `policy` (`RetryPolicy::exporter()`, as in a run).
pub async fn replay(
    config: &PipelineConfig,
    env: &dyn Env,
    store: &RunStore,
    policy: &RetryPolicy,
) -> Result<Vec<Replayed>, ReplayError> {
    let waiting = store.kept_span_counts()?;
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let transports = transports(config, env);
    let mut out = Vec::with_capacity(waiting.len());
    for kept in waiting {
        let mut report = Replayed {
            exporter: kept.exporter.clone(),
            sent: 0,
            refused: 0,
            left: kept.count,
            problem: None,
        };
        match transports.get(&kept.exporter) {
            Some(transport) => deliver(store, transport.as_ref(), policy, &mut report).await?,
            None => {
                report.problem = Some(
                    "the pipeline no longer traces to this exporter (or its settings do not resolve); the spans stay kept"
                        .into(),
                );
            }
        }
        out.push(report);
    }
    Ok(out)
}

/// The transports of every `tracing:` block of `config`, by label.
fn transports(config: &PipelineConfig, env: &dyn Env) -> HashMap<String, Arc<dyn Transport>> {
    let mut out: HashMap<String, Arc<dyn Transport>> = HashMap::new();
    for transform in &config.transforms {
        let Some(tracing) = transform.tracing() else {
            continue;
        };
        let Some(resolved) = transform_tracing(tracing, env) else {
            continue;
        };
        let settings = match resolved.exporter {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(error = %e, "a tracing block does not resolve; its kept spans stay kept");
                continue;
            }
        };
        match elspeth_telemetry::export::transport_for(&settings) {
            Ok(t) => {
                out.entry(t.label()).or_insert(t);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach a tracing backend; its kept spans stay kept")
            }
        }
    }
    out
}

/// Sends `report.exporter`'s kept spans, batch by batch, until none is
/// left or the backend stops taking them.
async fn deliver(
    store: &RunStore,
    transport: &dyn Transport,
    policy: &RetryPolicy,
    report: &mut Replayed,
) -> Result<(), ReplayError> {
    let mut after = 0i64;
    let mut batch_size = BATCH;
    loop {
        let kept = store.kept_spans(&report.exporter, after, batch_size)?;
        let Some(last) = kept.last() else {
            return Ok(());
        };
        let (mut ids, mut spans): (Vec<i64>, Vec<SpanRecord>) = (Vec::new(), Vec::new());
        let mut unreadable = Vec::new();
        for k in &kept {
            match &k.span {
                Some(span) => {
                    ids.push(k.id);
                    spans.push(span.clone());
                }
                None => unreadable.push(k.id),
            }
        }
        if !unreadable.is_empty() {
            store.forget_spans(&unreadable)?;
            report.refused += unreadable.len() as u64;
            report.left -= unreadable.len() as u64;
        }
        let last_id = last.id;
        if spans.is_empty() {
            after = last_id;
            continue;
        }
        match send(transport, &spans, policy).await {
            SendOutcome::Accepted => {
                store.forget_spans(&ids)?;
                report.sent += ids.len() as u64;
                report.left -= ids.len() as u64;
            }
            SendOutcome::Partial { retry, rejected } => {
                // Everything but the spans worth retrying is settled; those
                // stay kept for the next replay.
                let settled: Vec<i64> = ids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !retry.contains(i))
                    .map(|(_, id)| *id)
                    .collect();
                store.forget_spans(&settled)?;
                let rejected = (rejected as u64).min(settled.len() as u64);
                report.refused += rejected;
                report.sent += settled.len() as u64 - rejected;
                report.left -= settled.len() as u64;
            }
            SendOutcome::Rejected { status, reason } => {
                store.forget_spans(&ids)?;
                report.refused += ids.len() as u64;
                report.left -= ids.len() as u64;
                tracing::warn!(exporter = %report.exporter, status, "the backend refused {} kept spans for good ({reason}); they are dropped", ids.len());
            }
            SendOutcome::TooLarge if batch_size > 1 => {
                batch_size = (batch_size / 2).max(1);
                continue;
            }
            SendOutcome::TooLarge => {
                store.forget_spans(&ids)?;
                report.refused += ids.len() as u64;
                report.left -= ids.len() as u64;
            }
            SendOutcome::Unauthorized { status } => {
                report.problem = Some(format!(
                    "the backend rejected the credentials (HTTP {status}); {}",
                    transport.auth_hint()
                ));
                return Ok(());
            }
            SendOutcome::Retry { reason, .. } => {
                report.problem = Some(format!(
                    "the backend is still unavailable ({reason}); run the replay again later"
                ));
                return Ok(());
            }
        }
        after = last_id;
        batch_size = BATCH;
    }
}

/// One batch, retried like a run's export (429 / 5xx / timeouts, with
/// backoff and `Retry-After`).
async fn send(
    transport: &dyn Transport,
    spans: &[SpanRecord],
    policy: &RetryPolicy,
) -> SendOutcome {
    let mut attempt = 0;
    loop {
        let outcome = match tokio::time::timeout(
            Duration::from_secs(30),
            transport.send(spans, None),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => SendOutcome::Retry {
                reason: "no answer within 30 s".into(),
                retry_after: None,
            },
        };
        let SendOutcome::Retry { retry_after, .. } = &outcome else {
            return outcome;
        };
        attempt += 1;
        if attempt >= policy.max_attempts() {
            return outcome;
        }
        tokio::time::sleep(policy.delay(attempt, *retry_after)).await;
    }
}
