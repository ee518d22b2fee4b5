//! `sloth-runner validate FILE`: every check a run makes before it starts, and nothing else.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::pipeline_file::PipelineFile;
use super::session;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pipeline: PipelineFile,
}

pub fn execute(args: &ValidateArgs) -> ExitCode {
    let file = match args.pipeline.path() {
        Ok(file) => file,
        Err(code) => return code,
    };
    let options = json!({ "file": file.to_string_lossy() });
    session::run_entry("validate", &options, &RuntimeOptions::from_env())
}
