//! `sloth-runner list FILE`: groups, tasks, descriptions, dependencies.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::session;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The pipeline file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn execute(args: &ListArgs) -> ExitCode {
    let options = json!({ "file": args.file.to_string_lossy() });
    session::run_entry("list", &options, &RuntimeOptions::from_env())
}
