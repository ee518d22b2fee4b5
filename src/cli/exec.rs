//! `sloth-runner exec [-f FILE] TARGET -- COMMAND…`: one shell command on every agent TARGET
//! selects, without writing a pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::session;
use crate::runtime::RuntimeOptions;

/// At most this many agents at once unless `--jobs` says otherwise.
const DEFAULT_JOBS: u32 = 64;

const EXAMPLES: &str = "\
Examples:
  sloth-runner exec -f tasks.lua '*' -- uptime        every agent tasks.lua declares
  sloth-runner exec web-1 -- 'df -h /'                one agent of ./tasks.lua, by name
  sloth-runner exec os=linux,tier=web -- uname -a     the agents whose labels match
  sloth-runner exec 127.0.0.1:50051 -- hostname       an address: no pipeline file needed
  sloth-runner exec web-1 --sync -- make dist         with this directory, changes brought back

Output lines read `AGENT | line` (stdout) or `AGENT ! line` (stderr), on stderr as `run` shows
them; the summary (agent, status, exit code, duration, why it failed) goes to stdout. Exit 0
when the command succeeded on every agent, 1 when it failed (or could not run) on any of them,
2 when TARGET selects nothing.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ExecArgs {
    /// The pipeline whose agents TARGET selects from (default: tasks.lua, unless TARGET is an
    /// address or a discovery URL).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Which agents: a declared agent's name (a pool: its members), "*" (all of them),
    /// label=value[,label=value], an address host:port, a discovery URL (dns+srv://NAME,
    /// dns://NAME:PORT), or several names and addresses separated by commas.
    #[arg(value_name = "TARGET")]
    target: String,
    /// The command, run with `sh -c` on each agent (its words joined with spaces, as ssh does).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Send this directory as the command's workspace and apply its changes here after it
    /// succeeds (as for a pipeline's remote task); without it the command runs in an empty
    /// directory. One agent only, unless --sync-many.
    #[arg(long)]
    sync: bool,
    /// Let --sync go to several agents: changes to different files all apply; a file two
    /// agents change fails the later one as a conflict, named.
    #[arg(long, requires = "sync")]
    sync_many: bool,
    /// How many agents run the command at once.
    #[arg(short, long, value_name = "N", default_value_t = DEFAULT_JOBS, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// Give up on an agent after this long (e.g. "30s", "5m"), killing the command there.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    timeout: Option<Duration>,
}

pub fn execute(args: &ExecArgs) -> ExitCode {
    let options = json!({
        "file": args.file.as_ref().map(|file| file.to_string_lossy()),
        "target": args.target,
        "command": args.command.join(" "),
        "sync": args.sync,
        "sync_many": args.sync_many,
        "jobs": args.jobs,
        "timeout": args.timeout.map(|timeout| timeout.as_secs_f64()),
    });
    session::run_entry("exec", &options, &RuntimeOptions::from_env())
}
