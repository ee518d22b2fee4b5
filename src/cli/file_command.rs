//! `sloth-runner list FILE` and `sloth-runner validate FILE`: a pipeline file in, one stdlib
//! entry (`list`: groups, tasks, descriptions, dependencies; `validate`: every check a run
//! makes before it starts, and nothing else) does the rest.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::pipeline_file::PipelineFile;
use super::session;
use super::template_flags::TemplateFlags;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct FileArgs {
    #[command(flatten)]
    pipeline: PipelineFile,
    #[command(flatten)]
    template: TemplateFlags,
}

/// Runs the stdlib's `entry` on the pipeline file.
pub fn execute(entry: &str, args: &FileArgs) -> ExitCode {
    let file = match args.pipeline.path() {
        Ok(file) => file,
        Err(code) => return code,
    };
    let source = match args.template.source(file) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let options = json!({ "file": file.to_string_lossy(), "source": source });
    session::run_entry(entry, &options, &RuntimeOptions::from_env())
}
