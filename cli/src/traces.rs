//! `elspeth traces replay`: sends the tracing spans earlier runs kept in
//! the run store because their backend did not take them in time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use elspeth_runtime::store::RunStore;
use elspeth_runtime::traces::{Replayed, RetryPolicy, replay};
use elspeth_schema::config::ProcessEnv;

use super::run::{init_logging, store_path};
use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Work with the traces a pipeline's runs kept.
#[derive(Debug, clap::Args)]
pub(crate) struct TracesArgs {
    #[command(subcommand)]
    command: TracesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TracesCommand {
    /// Send the spans kept in the run store (their backend was down, hung
    /// or slow when the run ended) to the backends of the pipeline's
    /// `tracing:` blocks. Each span is sent once: a second replay sends
    /// nothing. Exit 0 when none is left, 1 when some still wait.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The pipeline YAML file whose runs kept the spans.
    #[arg(value_name = "PIPELINE")]
    pipeline: PathBuf,
    /// The run store (default: as for `elspeth run`).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

/// Runs `elspeth traces ...`.
pub(crate) fn run(args: TracesArgs) -> ExitCode {
    match args.command {
        TracesCommand::Replay(args) => {
            let runtime = match super::async_runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            runtime.block_on(replay_command(args))
        }
    }
}

async fn replay_command(args: ReplayArgs) -> ExitCode {
    init_logging(None);
    // Only the tracing blocks matter here, and replay resolves their
    // `${VAR}`s itself: the LLM endpoints and keys need not be set.
    let config = match super::load_config(&args.pipeline, "replayed") {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = store_path(&args.pipeline, args.store.as_deref(), config.store.as_ref());
    if !path.exists() {
        println!("no run store at {}: no spans are waiting", path.display());
        return ExitCode::from(EXIT_OK);
    }
    let store = match RunStore::open(&path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match replay(&config, &ProcessEnv, &store, &RetryPolicy::exporter()).await {
        Ok(replayed) => report(&path, &replayed),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn report(store: &Path, replayed: &[Replayed]) -> ExitCode {
    if replayed.is_empty() {
        println!("no spans are waiting in {}", store.display());
        return ExitCode::from(EXIT_OK);
    }
    println!("replayed the spans kept in {}:", store.display());
    for r in replayed {
        let mut line = format!(
            "  {}: {} spans sent, {} refused, {} still kept",
            r.exporter, r.sent, r.refused, r.left
        );
        if let Some(problem) = &r.problem {
            line.push_str(&format!(" ({problem})"));
        }
        println!("{line}");
    }
    if replayed.iter().any(|r| r.left > 0) {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::from(EXIT_OK)
    }
}
