//! `elspeth merge`: joins the outputs of a sharded run.

use std::path::PathBuf;
use std::process::ExitCode;

use elspeth_runtime::pipeline::Pipeline;

use super::run::{base_dir, store_path};
use super::{EXIT_OK, EXIT_USAGE};

/// Write a pipeline's sink from the outputs of its shards (`elspeth run
/// --shard i/n` for every i): every row once, in input order, replacing
/// the sink atomically. A missing or unfinished shard is an error naming it.
#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// The pipeline YAML file the shards ran.
    #[arg(value_name = "PIPELINE")]
    pipeline: PathBuf,
    /// How many shards there were (the `n` of `--shard i/n`).
    #[arg(long, value_name = "N")]
    shards: u32,
    /// The run store the shards' stores are named after (default: as for
    /// `elspeth run`); used to check that every shard's last run finished.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

/// Runs `elspeth merge`.
pub(crate) fn run(args: MergeArgs) -> ExitCode {
    let config = match super::load_config(&args.pipeline, "merged") {
        Ok(config) => config,
        Err(code) => return code,
    };
    let store = store_path(&args.pipeline, args.store.as_deref(), config.store.as_ref());
    let pipeline = Pipeline::new(config, base_dir(&args.pipeline)).with_file(&args.pipeline);
    let runtime = match super::async_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(pipeline.merge(args.shards, Some(&store))) {
        Ok(summary) => {
            let per: Vec<String> = summary
                .per_shard
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i}: {n}"))
                .collect();
            println!(
                "merged {} shards: {} rows → {} (rows per shard: {})",
                args.shards,
                summary.rows,
                summary.output.display(),
                per.join(", ")
            );
            if let Some(errors) = &summary.errors {
                println!("  failed rows → {}", errors.display());
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("error: {e}; nothing was written");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
