//! `sloth-runner run FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::pipeline_file::PipelineFile;
use super::template_flags::TemplateFlags;
use super::{USAGE_ERROR, Verbosity, session};
use crate::runtime::{RuntimeOptions, values};

/// What stdout carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Only what a task prints (the progress and the summary go to stderr).
    Human,
    /// JSON events, one per line.
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pipeline: PipelineFile,
    #[command(flatten)]
    template: TemplateFlags,
    /// Run only this group (repeatable); default: every group, in name order.
    #[arg(short, long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Run only these tasks (comma separated) and what they depend on.
    #[arg(short, long = "tasks", value_name = "TASKS", value_delimiter = ',')]
    tasks: Vec<String>,
    /// A YAML file whose mapping becomes the `values` global.
    #[arg(short = 'v', long = "values", value_name = "FILE")]
    values: Option<PathBuf>,
    /// Print the plan and run nothing.
    #[arg(short = 'd', long)]
    dry_run: bool,
    /// Print the exports and the final outputs as one JSON object on stdout (nothing else).
    #[arg(long = "return", conflicts_with = "output")]
    return_json: bool,
    /// `json`: stream the run as JSON events on stdout, one per line (see the README); what
    /// people read stays on stderr.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value = "human")]
    output: Output,
    /// Start a local agent for every loopback agent address that does not answer, and stop
    /// them afterwards.
    #[arg(long)]
    spawn_agents: bool,
    /// Run up to N independent tasks at once.
    #[arg(short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// Most memory the run's Lua VM may hold, e.g. "512M" (default: no limit); a task that
    /// needs more fails with "Lua memory limit (…) exceeded".
    #[arg(long, value_name = "SIZE", value_parser = super::agent::parse_size)]
    lua_memory_limit: Option<u64>,
}

pub fn execute(args: &RunArgs, verbosity: Verbosity) -> ExitCode {
    // A run sends its workspace: small files are kept as its snapshots read them.
    crate::workspace::content_memo::enable(crate::workspace::content_memo::MASTER_LIMIT);
    let file = match args.pipeline.path() {
        Ok(file) => file.to_path_buf(),
        Err(code) => return code,
    };
    let source = match args.template.source(&file) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let mut runtime_options = RuntimeOptions::from_env();
    runtime_options.memory_limit = args.lua_memory_limit.and_then(|limit| usize::try_from(limit).ok());
    if let Some(path) = &args.values {
        match values::read(path) {
            Ok(values) => runtime_options.values = Some(values),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(USAGE_ERROR);
            }
        }
    }
    let options = json!({
        "file": file.to_string_lossy(),
        "source": source,
        "groups": args.groups,
        "tasks": args.tasks,
        "dry_run": args.dry_run,
        "jobs": args.jobs,
        "spawn_agents": args.spawn_agents,
        "return_json": args.return_json,
        "json_events": args.output == Output::Json,
        "quiet": verbosity == Verbosity::Quiet,
    });
    if args.output == Output::Json {
        crate::json_events::enable();
    }
    let code = session::run_entry("run", &options, &runtime_options);
    // However the run ended (an error included), the status line is gone before the exit.
    crate::status_line::disable();
    code
}
