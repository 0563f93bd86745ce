//! `--dry-run`: what a run would do, without calling any LLM. The
//! transforms are the [`Plan`](crate::plan::Plan)'s own description; this
//! file adds what only reading the source can tell (rows, first row).

use std::fmt;
use std::path::PathBuf;

use elspeth_telemetry::TransformLabel;

use super::source::{Record, Source, count_rows};
use super::{Pipeline, RunError, RunOptions};
use crate::cost::CallEstimate;
use crate::plan::TransformPlan;
use crate::row::Row;

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
    /// What each configured transform's calls would use and cost,
    /// estimated on the first rows (in the order of `transforms`).
    pub estimates: Vec<CallEstimate>,
    /// Rows the estimates were made on.
    pub sampled_rows: usize,
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

/// Rows a dry run renders to estimate prompt tokens.
const ESTIMATE_SAMPLE_ROWS: usize = 200;

pub(super) fn describe(pipeline: &Pipeline, options: &RunOptions) -> Result<DryRun, RunError> {
    let paths = pipeline.paths();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let remote = super::remote::is_object(&paths.source);
    if remote {
        warnings.push(format!(
            "the source {} is on object storage: a dry run does not read it, so no row count or first prompts are shown",
            elspeth_core::redact::url(&paths.source.to_string_lossy())
        ));
    }
    let opened = (!remote).then(|| Source::open(&pipeline.config.source, &paths.source));
    let first_row: Option<Row> = match opened {
        None => None,
        Some(opened) => match opened {
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
        },
    };
    let rows = if remote {
        None
    } else {
        count_rows(
            &pipeline.config.source,
            &paths.source,
            options.limit,
            &pipeline.row_selection(),
        )
    };
    // Unset variables are reported, not fatal: the plan as far as it
    // resolved is still described. Anything else stops the dry run too.
    let plan = match pipeline.plan(options.env.as_ref()) {
        Ok(plan) => plan,
        Err(e) if e.draft().is_some() => {
            problems.extend(e.problems.iter().map(ToString::to_string));
            e.into_draft().expect("checked")
        }
        Err(e) => return Err(RunError::Build(e)),
    };
    let described = plan.describe(first_row.as_ref());
    let sample = if remote {
        Vec::new()
    } else {
        super::source::first_rows(&pipeline.config.source, &paths.source, ESTIMATE_SAMPLE_ROWS)
    };
    let estimates = plan.estimate(&sample);
    for e in &estimates {
        if e.price.price.is_none() {
            warnings.push(format!("{}: cost {}", e.label, e.price.describe()));
        }
    }
    warnings.extend(described.warnings);
    let mut plans = described.transforms;
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
        estimates,
        sampled_rows: sample.len(),
        problems,
        warnings,
    })
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline `{}` (dry run: no LLM calls)", self.pipeline)?;
        match self.rows {
            Some(n) => writeln!(f, "  source: {} ({n} rows)", self.source.display())?,
            None if super::remote::is_object(&self.source) => writeln!(
                f,
                "  source: {} (object storage: not read by a dry run)",
                self.source.display()
            )?,
            None => writeln!(f, "  source: {} (unreadable)", self.source.display())?,
        }
        let mut calls_per_row = 0usize;
        for t in &self.transforms {
            calls_per_row += t.calls_per_row;
            write!(f, "{t}")?;
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
        self.fmt_estimates(f)?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for p in &self.problems {
            writeln!(f, "  error: {p}")?;
        }
        Ok(())
    }
}

impl DryRun {
    /// The estimate lines: per transform and in total, calls, prompt
    /// tokens, the output ceiling and the cost range.
    fn fmt_estimates(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(rows) = self.rows else {
            if !self.estimates.is_empty() {
                writeln!(f, "  estimate: not made (the source's rows are not known)")?;
            }
            return Ok(());
        };
        let (mut calls, mut input, mut output) = (0u64, Some(0u64), Some(0u64));
        let (mut low, mut high) = (Some(0.0f64), Some(0.0f64));
        for e in &self.estimates {
            let r = e.for_rows(rows);
            calls += r.calls;
            input = input.zip(r.input_tokens).map(|(a, b)| a + b);
            output = output.zip(r.output_ceiling).map(|(a, b)| a + b);
            low = low.zip(r.cost.map(|c| c.0)).map(|(a, b)| a + b);
            high = high.zip(r.cost.and_then(|c| c.1)).map(|(a, b)| a + b);
            write!(f, "  estimate {}: {} calls", e.label, r.calls)?;
            match r.input_tokens {
                Some(t) => write!(f, ", ~{t} input tokens ({})", e.counted)?,
                None => write!(f, ", input tokens unknown (no sample row rendered)")?,
            }
            match r.output_ceiling {
                Some(t) => write!(f, ", at most {t} output tokens")?,
                None => write!(f, ", output unbounded (no `max_tokens`)")?,
            }
            writeln!(
                f,
                "; cost {}",
                cost_range(r.cost.map(|c| c.0), r.cost.and_then(|c| c.1))
            )?;
        }
        if !self.estimates.is_empty() {
            write!(f, "  estimate total: {calls} calls")?;
            if let Some(t) = input {
                write!(f, ", ~{t} input tokens")?;
            }
            if let Some(t) = output {
                write!(f, ", at most {t} output tokens")?;
            }
            writeln!(
                f,
                "; cost {} (prompt tokens counted on the first {} rows)",
                cost_range(low, high),
                self.sampled_rows
            )?;
        }
        Ok(())
    }
}

/// `$0.0123 to $0.0456`, `from $0.0123 (no output ceiling)`, `unknown`.
fn cost_range(low: Option<f64>, high: Option<f64>) -> String {
    match (low, high) {
        (Some(l), Some(h)) => format!("${l:.4} to ${h:.4}"),
        (Some(l), None) => {
            format!("from ${l:.4} (no output ceiling: set `max_tokens` to bound it)")
        }
        _ => "unknown (no price: set `base_model:` or `pricing:`)".into(),
    }
}
