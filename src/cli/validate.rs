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
    #[arg(value_name = "FILE", required_unless_present = "file_flag", conflicts_with = "file_flag")]
    file: Option<PathBuf>,
    /// The pipeline file (alternative spelling).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file_flag: Option<PathBuf>,
}

pub fn execute(args: &ValidateArgs) -> ExitCode {
    let Some(file) = args.file.as_ref().or(args.file_flag.as_ref()) else {
        eprintln!("error: no pipeline file given");
        return ExitCode::from(super::USAGE_ERROR);
    };
    let options = json!({ "file": file.to_string_lossy() });
    session::run_entry("validate", &options, &RuntimeOptions::from_env())
}
