//! Command-line interface: argument handling only; the work is in the stdlib.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod agents;
mod check;
mod console;
mod exec;
mod file_command;
mod health;
mod master;
mod new;
mod pipeline_file;
mod registry;
mod repl;
mod repl_complete;
mod run;
mod serving;
mod session;
mod signals;
mod template_flags;
mod templates;
mod test;

pub use console::{LogFormat, Verbosity};

/// Exit code when the pipeline or the command line is wrong and nothing ran.
pub const USAGE_ERROR: u8 = 2;

/// How a listing (`agents`, `agent list`) is printed: a table for people, or one JSON document.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "sloth-runner", version, about = "Runs Lua task pipelines, locally and on remote agents")]
pub struct Cli {
    /// Show debug logs.
    #[arg(long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Show only warnings and errors (and the summary).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// How logs are written on stderr: for people (text), or one JSON object a line with
    /// timestamp, level, target and fields (json), for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// What to do; without one, an interactive Lua prompt.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline.
    Run(run::RunArgs),
    /// Serve tasks to masters over gRPC (registered with a master with --master); `agent
    /// list|run|stop`: the agents a master knows.
    Agent(Box<agent::AgentArgs>),
    /// Keep a registry of the agents that announce themselves (`agent --master`), for `agent
    /// list`, `agent run` and `agent stop`.
    Master(master::MasterArgs),
    /// Probe the agents a pipeline declares: up or not, version, labels, load, round trip.
    Agents(agents::AgentsArgs),
    /// Ask one agent whether it serves (the gRPC health check): exit 0 if so, 1 if not.
    Health(health::HealthArgs),
    /// Run a shell command on agents (by name, "*", label=value or address) without writing a pipeline.
    Exec(exec::ExecArgs),
    /// List a pipeline's groups and tasks.
    List(file_command::FileArgs),
    /// Check a pipeline without running anything.
    Validate(file_command::FileArgs),
    /// Check the environment: `check dependencies` lists the command-line tools the modules use.
    Check {
        #[command(subcommand)]
        command: check::CheckCommand,
    },
    /// Write a new pipeline from a template (to stdout, or to a file with -o).
    New(new::NewArgs),
    /// Pipeline templates for `new`.
    Template {
        #[command(subcommand)]
        command: templates::TemplateCommand,
    },
    /// Run a Lua test file against a pipeline, with the globals `test` and `assert` (only here).
    Test(test::TestArgs),
    /// An interactive Lua prompt with everything a pipeline has (also: no arguments).
    Repl(repl::ReplArgs),
    /// Print the version.
    Version,
    /// Print a completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    // An agent's companion that kills its tasks' processes when it dies: internal, so not a
    // subcommand (help and completions never offer it).
    if std::env::args_os().nth(1).is_some_and(|first| first == crate::reaper::COMPANION) {
        return crate::reaper::companion();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            match subcommand_hint(&error) {
                Some(hint) => {
                    // The first line says what is wrong; the hint goes right under it.
                    let text = error.render().to_string();
                    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
                    eprint!("{first}\n\n  tip: did you mean '{hint}'?\n{rest}");
                }
                None => {
                    let _ = error.print();
                }
            }
            return if error.use_stderr() { ExitCode::from(USAGE_ERROR) } else { ExitCode::SUCCESS };
        }
    };
    let verbosity = match (cli.verbose, cli.quiet) {
        (true, _) => Verbosity::Verbose,
        (_, true) => Verbosity::Quiet,
        _ => Verbosity::Normal,
    };
    console::init(verbosity, cli.log_format);
    match cli.command {
        Some(Command::Run(args)) => run::execute(&args, verbosity),
        Some(Command::Agent(args)) => agent::execute(*args),
        Some(Command::Master(args)) => master::execute(&args),
        Some(Command::Agents(args)) => agents::execute(&args),
        Some(Command::Health(args)) => health::execute(&args),
        Some(Command::Exec(args)) => exec::execute(&args),
        Some(Command::List(args)) => file_command::execute("list", &args),
        Some(Command::Validate(args)) => file_command::execute("validate", &args),
        Some(Command::Check { command }) => check::execute(&command),
        Some(Command::New(args)) => new::execute(&args),
        Some(Command::Template { command }) => templates::execute(&command),
        Some(Command::Test(args)) => test::execute(&args),
        Some(Command::Repl(args)) => repl::execute(args.path()),
        None => repl::execute(None),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "sloth-runner", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(Command::Version) => {
            println!("sloth-runner {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// For a mistyped subcommand clap has no suggestion for (`rnu`), the closest one: a swap of
/// two letters, one missing, extra or wrong.
fn subcommand_hint(error: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::InvalidSubcommand || error.get(ContextKind::SuggestedSubcommand).is_some() {
        return None;
    }
    let Some(ContextValue::String(typed)) = error.get(ContextKind::InvalidSubcommand) else { return None };
    const NAMES: [&str; 15] = [
        "run",
        "agent",
        "master",
        "agents",
        "health",
        "exec",
        "list",
        "validate",
        "test",
        "new",
        "template",
        "check",
        "repl",
        "version",
        "completions",
    ];
    let length = typed.chars().count();
    let limit = if length < 3 { 0 } else { (length / 3).max(1) };
    NAMES
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(&typed.to_lowercase(), name), name))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, name)| name)
}
