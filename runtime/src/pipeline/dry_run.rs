//! `--dry-run`: what a run would do, without calling any LLM.

use std::fmt;
use std::path::PathBuf;

use elspeth_schema::config::{
    Env, EnvString, ResponseFormat, SecretRef, TracingConfig, TransformConfig,
};
use elspeth_telemetry::TransformLabel;

use super::source::{Record, Source, count_rows};
use super::{Pipeline, RunError, RunOptions};
use crate::row::Row;
use crate::transforms::matrix::expand;
use crate::transforms::prompt::Prompt;
use crate::transforms::{self};

/// One transform as it would run.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformPlan {
    /// `transforms[i] (plugin)`.
    pub label: String,
    /// The service called, e.g. `Azure OpenAI`.
    pub backend: String,
    /// Deployment or model.
    pub model: String,
    /// Resolved endpoint or base URL (never a key), when it resolves.
    pub target: Option<String>,
    /// LLM calls per row (queries of a multi-query matrix).
    pub calls_per_row: usize,
    /// Calls in flight at most.
    pub concurrency: usize,
    /// How rows are grouped, e.g. `jobs of 100 rows`.
    pub grouping: Option<String>,
    /// Tracing provider, or `off`.
    pub tracing: String,
    /// The first row's (first) prompt, rendered.
    pub sample_prompt: Option<String>,
}

/// What a run would do.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    /// Pipeline name.
    pub pipeline: String,
    /// Source file.
    pub source: PathBuf,
    /// Rows that would be processed (after `--limit`), when the source is readable.
    pub rows: Option<u64>,
    /// Output file.
    pub sink: PathBuf,
    /// Failed-rows file.
    pub errors: Option<PathBuf>,
    /// The transforms, in order.
    pub transforms: Vec<TransformPlan>,
    /// What would make the run fail at start (missing variables, unreadable source).
    pub problems: Vec<String>,
    /// What would degrade (tracing that would be turned off).
    pub warnings: Vec<String>,
}

impl DryRun {
    /// Whether the run would start.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

fn check(
    env: &dyn Env,
    label: &TransformLabel,
    field: &str,
    value: &EnvString,
    problems: &mut Vec<String>,
) -> Option<String> {
    match value.resolve(env) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{label}: {field}: {e}"));
            None
        }
    }
}

fn check_secret(
    env: &dyn Env,
    label: &TransformLabel,
    field: &str,
    value: &SecretRef,
    out: &mut Vec<String>,
) {
    if let Err(e) = value.resolve(env) {
        out.push(format!("{label}: {field}: {e}"));
    }
}

fn tracing_of(
    env: &dyn Env,
    label: &TransformLabel,
    config: Option<&TracingConfig>,
    warnings: &mut Vec<String>,
) -> String {
    let Some(config) = config else {
        return "off".into();
    };
    for e in config.completeness_errors() {
        warnings.push(format!("{label}: {e} (the transform would run untraced)"));
    }
    let mut w = Vec::new();
    match config {
        TracingConfig::None => return "none".into(),
        TracingConfig::AzureAi(c) => {
            if let Some(cs) = &c.connection_string {
                check_secret(env, label, "tracing.connection_string", cs, &mut w);
            }
        }
        TracingConfig::Langfuse(c) => {
            if let Some(pk) = &c.public_key {
                let _ = check(env, label, "tracing.public_key", pk, &mut w);
            }
            if let Some(sk) = &c.secret_key {
                check_secret(env, label, "tracing.secret_key", sk, &mut w);
            }
            let _ = check(env, label, "tracing.host", &c.host, &mut w);
        }
    }
    warnings.extend(
        w.into_iter()
            .map(|m| format!("{m}; the transform would run untraced")),
    );
    match config {
        TracingConfig::Langfuse(c) => match c.host.resolve(env) {
            Ok(host) => format!("langfuse ({host})"),
            Err(_) => "langfuse".into(),
        },
        other => other.provider().to_string(),
    }
}

pub(super) fn describe(pipeline: &Pipeline, options: &RunOptions) -> Result<DryRun, RunError> {
    let env = options.env.as_ref();
    let ctx = options.build_context();
    let paths = pipeline.paths();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let first_row: Option<Row> = match Source::open(&pipeline.config.source, &paths.source) {
        Ok(mut source) => match source.next_record() {
            Some(Ok(Record::Row(row))) => Some(row),
            Some(Ok(Record::Bad(message))) => {
                warnings.push(format!("the first source row cannot be read: {message}"));
                None
            }
            Some(Err(e)) => {
                problems.push(e.to_string());
                None
            }
            None => {
                warnings.push(format!("the source {} has no rows", paths.source.display()));
                None
            }
        },
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let rows = count_rows(&pipeline.config.source, &paths.source, options.limit);
    let mut plans = Vec::new();
    // The first row as later transforms would see it: replies of earlier
    // transforms are stood in for by placeholders; `None` once a reply's
    // fields cannot be known (a JSON reply without `output_fields`).
    let mut sample_row = first_row.clone();
    for (index, config) in pipeline.config.transforms.iter().enumerate() {
        let built = transforms::build(config, index, &ctx)?;
        let label = TransformLabel {
            index,
            plugin: config.plugin().to_string(),
        };
        let (backend, model, target, conn_call) = match config {
            TransformConfig::AzureLlm(o) => (
                "Azure OpenAI",
                &o.connection.deployment_name,
                Some((&o.connection.endpoint, &o.connection.api_key)),
                &o.call,
            ),
            TransformConfig::AzureMultiQueryLlm(o) => (
                "Azure OpenAI",
                &o.connection.deployment_name,
                Some((&o.connection.endpoint, &o.connection.api_key)),
                &o.call,
            ),
            TransformConfig::AzureBatchLlm(o) => (
                "Azure OpenAI Batch API",
                &o.connection.deployment_name,
                Some((&o.connection.endpoint, &o.connection.api_key)),
                &o.call,
            ),
            TransformConfig::OpenrouterLlm(o) => (
                "OpenRouter",
                &o.connection.model,
                Some((&o.connection.base_url, &o.connection.api_key)),
                &o.call,
            ),
            TransformConfig::OpenrouterMultiQueryLlm(o) => (
                "OpenRouter",
                &o.connection.model,
                Some((&o.connection.base_url, &o.connection.api_key)),
                &o.call,
            ),
            TransformConfig::OpenrouterBatchLlm(o) => (
                "OpenRouter",
                &o.connection.model,
                Some((&o.connection.base_url, &o.connection.api_key)),
                &o.call,
            ),
        };
        let target = target.and_then(|(url, key)| {
            check_secret(env, &label, "api_key", key, &mut problems);
            let field = if backend == "OpenRouter" {
                "base_url"
            } else {
                "endpoint"
            };
            check(env, &label, field, url, &mut problems)
        });
        let queries =
            config
                .queries()
                .map(expand)
                .transpose()
                .map_err(|e| transforms::BuildError {
                    transform: label.clone(),
                    message: e.to_string(),
                })?;
        let sample_prompt = sample_row.as_ref().and_then(|row| {
            let prompt = Prompt::new(config.prompt(), conn_call, model).ok()?;
            let extra = queries.as_ref().and_then(|q| q.first()).map(|q| &q.values);
            match prompt.request(row, extra) {
                Ok(request) => request.prompt().map(str::to_string),
                Err(e) => {
                    warnings.push(format!("{label}: the first row would fail: {e}"));
                    None
                }
            }
        });
        if let Some(row) = &mut sample_row {
            let prompt = config.prompt();
            let prefixes: Vec<Option<String>> = match &queries {
                Some(q) => q.iter().map(|q| Some(q.name.clone())).collect(),
                None => vec![None],
            };
            let fields: Option<Vec<String>> = match prompt.response_format {
                ResponseFormat::Text => Some(vec![prompt.output_field.clone()]),
                ResponseFormat::Json if !prompt.output_fields.is_empty() => {
                    Some(prompt.output_fields.clone())
                }
                ResponseFormat::Json => None,
            };
            match fields {
                Some(fields) => {
                    for prefix in &prefixes {
                        for f in &fields {
                            let key = match prefix {
                                Some(p) => format!("{p}_{f}"),
                                None => f.clone(),
                            };
                            row.insert(
                                key,
                                serde_json::Value::String(format!("<{f} from {label}>")),
                            );
                        }
                    }
                }
                None => sample_row = None,
            }
        }
        let grouping = match (built.transform.batch_size(), built.chunk_rows) {
            (Some(n), _) => Some(format!("batch jobs of {n} rows")),
            (None, Some(n)) => Some(format!("chunks of {n} rows")),
            _ => None,
        };
        plans.push(TransformPlan {
            label: label.to_string(),
            backend: backend.into(),
            model: model.clone(),
            target,
            calls_per_row: queries.as_ref().map_or(1, Vec::len),
            concurrency: built.transform.concurrency(),
            grouping,
            tracing: tracing_of(env, &label, config.tracing(), &mut warnings),
            sample_prompt,
        });
    }
    for (k, t) in pipeline.custom.iter().enumerate() {
        let label = TransformLabel {
            index: pipeline.config.transforms.len() + k,
            plugin: t.plugin().to_string(),
        };
        plans.push(TransformPlan {
            label: label.to_string(),
            backend: "custom".into(),
            model: String::new(),
            target: None,
            calls_per_row: 1,
            concurrency: t.concurrency(),
            grouping: t.batch_size().map(|n| format!("batches of {n} rows")),
            tracing: "(set by the transform)".into(),
            sample_prompt: None,
        });
    }
    Ok(DryRun {
        pipeline: pipeline.config.name.clone(),
        source: paths.source,
        rows,
        sink: paths.sink,
        errors: paths.errors,
        transforms: plans,
        problems,
        warnings,
    })
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline `{}` (dry run: no LLM calls)", self.pipeline)?;
        match self.rows {
            Some(n) => writeln!(f, "  source: {} ({n} rows)", self.source.display())?,
            None => writeln!(f, "  source: {} (unreadable)", self.source.display())?,
        }
        let mut calls_per_row = 0usize;
        for t in &self.transforms {
            calls_per_row += t.calls_per_row;
            write!(f, "  {}: {}", t.label, t.backend)?;
            if !t.model.is_empty() {
                write!(f, " `{}`", t.model)?;
            }
            if let Some(target) = &t.target {
                write!(f, " at {target}")?;
            }
            writeln!(f)?;
            write!(
                f,
                "      {} call(s) per row, up to {} in flight",
                t.calls_per_row, t.concurrency
            )?;
            if let Some(g) = &t.grouping {
                write!(f, ", {g}")?;
            }
            writeln!(f, "; tracing: {}", t.tracing)?;
            if let Some(p) = &t.sample_prompt {
                let shown: String = p.chars().take(200).collect();
                let more = if p.chars().count() > 200 { "…" } else { "" };
                writeln!(f, "      first prompt: {shown:?}{more}")?;
            }
        }
        write!(f, "  sink: {}", self.sink.display())?;
        if let Some(e) = &self.errors {
            write!(f, " (failed rows: {})", e.display())?;
        }
        writeln!(f)?;
        if let Some(rows) = self.rows {
            writeln!(
                f,
                "  would make up to {} LLM call(s)",
                rows.saturating_mul(calls_per_row as u64)
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for p in &self.problems {
            writeln!(f, "  error: {p}")?;
        }
        Ok(())
    }
}
