//! `elspeth mock-server`: every mock backend on 127.0.0.1 until Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use elspeth_mock::all::{MockStack, StackOptions};

use super::{EXIT_OK, EXIT_USAGE};

const AFTER_HELP: &str = "\
Starts Azure OpenAI (chat + Batch API), OpenRouter, Langfuse (OTLP),
Application Insights and an OTLP collector on 127.0.0.1, prints their URLs
and the environment variables that point a pipeline at them, and serves
until Ctrl-C. Replies are deterministic (a ticket category by keyword, or a
JSON object when the request asks for one).

Example:
  elspeth mock-server --port 18080 --latency-ms 20
  # in another shell, paste the printed `export` lines, then:
  elspeth run examples/quickstart/ticket-triage.yaml";

/// Requests (Langfuse, OTLP collector) and envelopes (Application
/// Insights) `elspeth mock-server` keeps: it only reports counts, so a few
/// (each Langfuse or OTLP request holds up to a batch of decoded spans);
/// older ones are forgotten, still counted. Keeping 1,000 Langfuse
/// requests held ~800 MB after some sixty traced 5,000-row runs.
const KEEP_LAST: usize = 16;

/// Serve the bundled mock backends (no cloud account needed).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct MockServerArgs {
    /// First port; the five backends take consecutive ports from it
    /// (0 = any free ports).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Latency of every LLM answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Fraction (0..=1) of LLM calls answered with HTTP 500.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = super::fraction)]
    failure_rate: f64,
}

/// Runs `elspeth mock-server`.
pub(crate) fn run(args: MockServerArgs) -> ExitCode {
    let runtime = match super::async_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let options = StackOptions {
            port: args.port,
            latency: Duration::from_millis(args.latency_ms),
            failure_rate: args.failure_rate,
        };
        let stack = match MockStack::start(options).await {
            Ok(s) => s,
            Err(e) => {
                let hint = if args.port != 0 {
                    " (are the ports free? try --port 0)"
                } else {
                    ""
                };
                eprintln!("error: could not start the mock backends: {e}{hint}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        // Served until Ctrl-C: keep the last requests only (the counts
        // printed at the end still count everything).
        stack.langfuse.keep_last(KEEP_LAST);
        stack.appinsights.keep_last(KEEP_LAST);
        stack.otlp.keep_last(KEEP_LAST);
        println!("elspeth mock backends (Ctrl-C to stop):");
        for b in stack.backends() {
            println!("  {:<21} {:<28} {}", b.name, b.url, b.serves);
        }
        println!();
        println!("# point pipelines at them:");
        for (name, value) in stack.env() {
            println!("export {name}='{value}'");
        }
        if args.latency_ms > 0 || args.failure_rate > 0.0 {
            println!(
                "# LLM answers: {} ms latency, {:.0}% HTTP 500",
                args.latency_ms,
                args.failure_rate * 100.0
            );
        }
        let _ = tokio::signal::ctrl_c().await;
        println!();
        println!(
            "received: {} LLM calls (Azure {}, OpenRouter {}), {} Azure batches; tracing: {}",
            stack.azure.chat_requests() + stack.openrouter.requests(),
            stack.azure.chat_requests(),
            stack.openrouter.requests(),
            stack.azure.batches_created(),
            stack
                .received()
                .into_iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        stack.stop().await;
        ExitCode::from(EXIT_OK)
    })
}
