//! `sloth-runner validate FILE`: every check a run makes before it starts, and nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::session;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn execute(args: &ValidateArgs) -> ExitCode {
    let options = json!({ "file": args.file.to_string_lossy() });
    session::run_entry("validate", &options, &RuntimeOptions::from_env())
}
