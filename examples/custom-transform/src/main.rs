//! Runs the `feedback-triage` pipeline (compiled from
//! `pipelines/feedback-triage.yaml` by build.rs) with the custom
//! `review_sentiment` transform appended, then prints a short summary.
//!
//! ```text
//! cargo run -p elspeth-example-custom-transform            # against the bundled mocks
//! cargo run -p elspeth-example-custom-transform -- --real  # against OpenRouter + Langfuse
//! ```
//!
//! By default the mock backends (OpenRouter, Langfuse, ...) run in this
//! process on 127.0.0.1 and the pipeline's `${VAR}` references point at
//! them: no cloud account and no environment variable is needed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use elspeth::config::{Env, ProcessEnv};
use elspeth::env::OverlayEnv;
use elspeth::pipeline::RunOptions;
use elspeth_example_custom_transform::sentiment::SENTIMENT_FIELD;
use elspeth_example_custom_transform::{ReviewSentiment, SentimentOptions, pipelines};
use elspeth_mock::all::{MockStack, StackOptions};
use serde_json::Value;

const USAGE: &str = "\
usage: elspeth-example-custom-transform [--real]

Runs pipelines/feedback-triage.yaml plus the custom `review_sentiment`
transform. Default: against the bundled mock backends (no account needed).
--real: against the services your environment names (OPENROUTER_API_KEY,
LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, optional LANGFUSE_HOST).
Logs: ELSPETH_LOG or RUST_LOG (default `warn`).";

#[tokio::main]
async fn main() -> ExitCode {
    let mut real = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--real" => real = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("error: unexpected argument `{other}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    init_logging();
    match run(real).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(real: bool) -> anyhow::Result<ExitCode> {
    // The mock backends, and an environment where the pipeline's `${VAR}`
    // references (OPENROUTER_API_KEY, LANGFUSE_HOST, ...) point at them.
    // The process environment itself is not changed.
    let mocks = if real {
        None
    } else {
        Some(MockStack::start(StackOptions::default()).await?)
    };
    let env: Arc<dyn Env + Send + Sync> = match &mocks {
        Some(stack) => {
            eprintln!("mock backends on 127.0.0.1 (no cloud account used):");
            for b in stack.backends() {
                eprintln!("  {:<21} {}", b.name, b.url);
            }
            Arc::new(OverlayEnv::over_process(stack.env()))
        }
        None => Arc::new(ProcessEnv),
    };

    // 1. The pipeline that build.rs generated from the YAML.
    let pipeline = pipelines::feedback_triage::pipeline();
    // 2. The custom transform, traced to the same Langfuse project as the
    //    YAML's `openrouter_llm` (its `tracing:` block, `${VAR}`s unresolved).
    let tracing = pipeline.config().transforms[0].tracing().cloned();
    let sentiment = ReviewSentiment::new(SentimentOptions::openrouter(tracing));
    // 3. Appended after the YAML's transforms, and run.
    let summary = pipeline
        .with_transform(Box::new(sentiment))
        .run(RunOptions::default().with_env(env))
        .await?;

    println!(
        "{}: {} rows read, {} ok, {} failed → {}",
        summary.pipeline,
        summary.rows_read,
        summary.rows_ok,
        summary.rows_failed,
        summary.output.display()
    );
    // The custom transform records its calls in the run's meter
    // (`StartContext::usage`), so these count both transforms.
    println!(
        "  llm: {} calls, {} failed, tokens {} in / {} out",
        summary.llm_calls, summary.llm_calls_failed, summary.tokens_in, summary.tokens_out
    );
    for e in &summary.exporters {
        println!(
            "  tracing: {}: {} spans sent, {} dropped, {} failed",
            e.exporter, e.sent, e.dropped, e.failed
        );
    }
    if let Some(stack) = &mocks {
        println!("mock Langfuse received:");
        for (name, (traces, generations)) in traces_by_name(stack) {
            println!("  {traces} traces `{name}` ({generations} `llm_call` generations)");
        }
    }
    print_rows(&summary.output);

    if let Some(stack) = mocks {
        stack.stop().await;
    }
    Ok(if summary.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Per trace name: (traces, generations) the mock Langfuse received.
fn traces_by_name(stack: &MockStack) -> BTreeMap<String, (usize, usize)> {
    let spans = stack.langfuse.spans();
    let mut trace_names = BTreeMap::new();
    for s in spans.iter().filter(|s| s.parent_span_id().is_empty()) {
        trace_names.insert(s.trace_id(), s.span.name.clone());
    }
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for name in trace_names.values() {
        out.entry(name.clone()).or_default().0 += 1;
    }
    for s in spans.iter().filter(|s| s.span.name == "llm_call") {
        if let Some(name) = trace_names.get(&s.trace_id()) {
            out.entry(name.clone()).or_default().1 += 1;
        }
    }
    out
}

/// The first rows of the output: id, category (YAML transform), sentiment
/// (custom transform) and text, or the row's error.
fn print_rows(output: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(output) else {
        return;
    };
    println!("first rows:");
    for line in text.lines().take(5) {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let field = |k: &str| match &row[k] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        if row.get("error").is_some() {
            println!("  {:<5} error: {}", field("id"), row["error"]);
        } else {
            println!(
                "  {:<5} {:<8} {:<8} {}",
                field("id"),
                field("category"),
                field(SENTIMENT_FIELD),
                field("text")
            );
        }
    }
}

/// Warnings (e.g. "running untraced") to stderr.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ELSPETH_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
