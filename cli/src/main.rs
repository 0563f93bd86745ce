//! The `elspeth` command line: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod merge;
mod mock_server;
mod run;
mod schema;
mod traces;
mod validate;

/// Exit code: everything valid / the run succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code: a config is invalid, or rows failed.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the run's budget stopped it (rerun with a larger one to go on).
pub const EXIT_BUDGET: u8 = 3;

/// elspeth: config compiler and runtime for LLM data pipelines, with LLM tracing.
#[derive(Debug, Parser)]
#[command(name = "elspeth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check pipeline YAML files and report every problem.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of pipeline YAML files.
    Schema(schema::SchemaArgs),
    /// Run a pipeline (validates it first).
    Run(run::RunArgs),
    /// Join the outputs of a sharded run (`run --shard i/n`) into the sink.
    Merge(merge::MergeArgs),
    /// Serve the bundled mock backends on 127.0.0.1 (no cloud account needed).
    MockServer(mock_server::MockServerArgs),
    /// Work with the tracing spans kept by earlier runs (`traces replay`).
    Traces(traces::TracesArgs),
}

/// Parses a fraction between 0 and 1 (`--failure-rate`).
fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

/// A clap value parser: a finite number ≥ 0 (`--max-cost-usd 2.50`).
fn non_negative(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a number of 0 or more"))
    }
}

/// The config of `pipeline`, validated without resolving `${VAR}`s (for
/// commands that need the file's shape, not its secrets); its problems are
/// printed, and the exit code returned when it cannot be used (`nothing`:
/// what was not done, e.g. "merged").
fn load_config(
    pipeline: &std::path::Path,
    nothing: &str,
) -> Result<elspeth_schema::config::PipelineConfig, ExitCode> {
    let validated =
        elspeth_schema::validate_file(pipeline, &elspeth_schema::ValidateOptions::default());
    if !validated.diagnostics.is_empty() {
        eprint!("{}", validated.render_with(false));
        eprintln!();
    }
    if validated.is_io_error() {
        return Err(ExitCode::from(EXIT_USAGE));
    }
    validated.config.ok_or_else(|| {
        eprintln!(
            "error: {} is invalid; nothing was {nothing}",
            pipeline.display()
        );
        ExitCode::from(EXIT_INVALID)
    })
}

/// The multi-threaded tokio runtime of `run` and `mock-server`; on failure
/// the error is printed and the usage/I/O exit code returned.
fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: could not start the async runtime: {e}");
            ExitCode::from(EXIT_USAGE)
        })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Run(args) => run::run(args),
        Command::Merge(args) => merge::run(args),
        Command::MockServer(args) => mock_server::run(args),
        Command::Traces(args) => traces::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions() {
        assert!(fraction("1.5").is_err() && fraction("-0.1").is_err() && fraction("x").is_err());
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert_eq!(fraction("1"), Ok(1.0));
        assert_eq!(non_negative("2.5"), Ok(2.5));
        assert_eq!(non_negative("$0"), Ok(0.0));
        assert!(
            non_negative("-1").is_err()
                && non_negative("inf").is_err()
                && non_negative("x").is_err()
        );
    }
}
