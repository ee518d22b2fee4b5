//! `sloth-runner agents FILE`: the agents a pipeline declares, probed at once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::session;
use crate::runtime::RuntimeOptions;

#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// The pipeline file.
    #[arg(value_name = "FILE", required_unless_present = "file_flag", conflicts_with = "file_flag")]
    file: Option<PathBuf>,
    /// The pipeline file (alternative spelling).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file_flag: Option<PathBuf>,
    /// Only this group's agents (repeatable); default: every group's.
    #[arg(short, long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// A table for people, or one JSON document.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

pub fn execute(args: &AgentsArgs) -> ExitCode {
    let Some(file) = args.file.as_ref().or(args.file_flag.as_ref()) else {
        eprintln!("error: no pipeline file given");
        return ExitCode::from(super::USAGE_ERROR);
    };
    let output = match args.output {
        Output::Table => "table",
        Output::Json => "json",
    };
    let options = json!({ "file": file.to_string_lossy(), "groups": args.groups, "output": output });
    session::run_entry("agents", &options, &RuntimeOptions::from_env())
}
