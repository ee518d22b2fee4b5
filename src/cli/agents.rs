//! `sloth-runner agents FILE`: the agents a pipeline declares, probed at once.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::pipeline_file::PipelineFile;
use super::{ListFormat, session};
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    pipeline: PipelineFile,
    /// Only this group's agents (repeatable); default: every group's.
    #[arg(short, long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// A table for people, or one JSON document.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    output: ListFormat,
}

pub fn execute(args: &AgentsArgs) -> ExitCode {
    let file = match args.pipeline.path() {
        Ok(file) => file,
        Err(code) => return code,
    };
    let output = match args.output {
        ListFormat::Table => "table",
        ListFormat::Json => "json",
    };
    let options = json!({ "file": file.to_string_lossy(), "groups": args.groups, "output": output });
    session::run_entry("agents", &options, &RuntimeOptions::from_env())
}
