//! `elspeth schema [--out PATH]`: print or write the pipeline JSON Schema.

use std::path::PathBuf;
use std::process::ExitCode;

use elspeth_schema::schema_gen::pipeline_schema_json;

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

const EXAMPLES: &str = "\
Examples:
  elspeth schema > pipeline.schema.json
  elspeth schema --out schema/pipeline.schema.json
  elspeth schema --check --out schema/pipeline.schema.json

Editors: put this first line in a pipeline YAML file for completion and
checks in VS Code (YAML extension) and other yaml-language-server clients:
  # yaml-language-server: $schema=<path to>/pipeline.schema.json";

/// Print the JSON Schema (draft-07) of pipeline YAML files.
///
/// The schema is generated from the config types; editors use it for
/// completion, hover docs and checks as you type.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct SchemaArgs {
    /// Write the schema to PATH instead of stdout.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// With `--out`: do not write; exit with 1 if PATH differs from the
    /// generated schema (for CI).
    #[arg(long, requires = "out")]
    check: bool,
}

/// Runs `elspeth schema`.
pub(crate) fn run(args: SchemaArgs) -> ExitCode {
    let schema = pipeline_schema_json();
    let Some(out) = args.out else {
        print!("{schema}");
        return ExitCode::from(EXIT_OK);
    };
    if args.check {
        return match std::fs::read_to_string(&out) {
            Ok(existing) if existing == schema => ExitCode::from(EXIT_OK),
            Ok(_) => {
                eprintln!(
                    "error: `{}` is out of date\n  = help: regenerate it with `elspeth schema --out {}`",
                    out.display(),
                    out.display()
                );
                ExitCode::from(EXIT_INVALID)
            }
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", out.display());
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    match std::fs::write(&out, schema) {
        Ok(()) => {
            eprintln!("wrote {}", out.display());
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("error: cannot write `{}`: {e}", out.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
