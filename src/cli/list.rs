//! `sloth-runner list FILE`: groups, tasks, descriptions, dependencies.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::pipeline_file::PipelineFile;
use super::session;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pipeline: PipelineFile,
}

pub fn execute(args: &ListArgs) -> ExitCode {
    let file = match args.pipeline.path() {
        Ok(file) => file,
        Err(code) => return code,
    };
    let options = json!({ "file": file.to_string_lossy() });
    session::run_entry("list", &options, &RuntimeOptions::from_env())
}
