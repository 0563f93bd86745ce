//! Command-line interface: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod schema;
mod validate;

/// Exit code: everything valid / the run succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code: a config is invalid, or rows failed.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

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
}

pub fn main() -> ExitCode {
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
    }
}
