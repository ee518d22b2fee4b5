//! `sloth-runner check dependencies`: the command-line tools the stdlib modules run, whether
//! `PATH` has them, their versions and who needs them. It informs: exit 0 with tools missing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use crate::process::{self, Exit, Program, Spec};

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Which command-line tools the modules use are on PATH, their versions, which module
    /// needs each. Exits 0 even when some are missing: only the modules that need them fail.
    Dependencies,
}

/// A tool: its name, the arguments that make it print its version (none: it has no such
/// option) and what needs it.
const TOOLS: &[(&str, &[&str], &str)] = &[
    ("sh", &[], "shell commands (task commands, run_if, abort_if, exec.run with a string)"),
    ("git", &["--version"], "git"),
    ("python3", &["--version"], "python"),
    ("pulumi", &["version"], "pulumi"),
    ("salt", &["--version"], "salt"),
    ("salt-key", &["--version"], "salt.key"),
    ("gcloud", &["--version"], "gcp"),
    ("aws", &["--version"], "aws"),
    ("aws-vault", &["--version"], "aws (a client with a profile)"),
    ("docker", &["--version"], "docker"),
    ("terraform", &["version"], "terraform"),
];

/// How long a tool may take to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

pub fn execute(command: &CheckCommand) -> ExitCode {
    let CheckCommand::Dependencies = command;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default();
    let rows: Vec<[String; 4]> = TOOLS
        .iter()
        .map(|(tool, version_args, needed_by)| {
            let (status, version) = match process::find_executable(&dirs, tool) {
                None => ("MISSING".to_owned(), "-".to_owned()),
                Some(path) => {
                    let version = if version_args.is_empty() {
                        "-".to_owned()
                    } else {
                        runtime.block_on(version(&path, version_args))
                    };
                    (path.display().to_string(), version)
                }
            };
            [(*tool).to_owned(), status, version, (*needed_by).to_owned()]
        })
        .collect();
    let header = ["TOOL", "FOUND", "VERSION", "NEEDED BY"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|column| rows.iter().chain([&header]).map(|row| row[column].chars().count()).max().unwrap_or(0))
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let missing: Vec<&str> = rows.iter().filter(|row| row[1] == "MISSING").map(|row| row[0].as_str()).collect();
    if missing.is_empty() {
        println!("\nevery tool is on PATH");
    } else {
        println!("\nmissing: {} (only the modules that need them fail without them)", missing.join(", "));
    }
    ExitCode::SUCCESS
}

/// The first line `path version_args` prints (stdout, else stderr), or why there is none.
async fn version(path: &std::path::Path, version_args: &[&str]) -> String {
    let mut argv = vec![path.to_string_lossy().into_owned()];
    argv.extend(version_args.iter().map(|arg| (*arg).to_owned()));
    let spec = Spec {
        program: Program::Argv(argv),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        env: Vec::new(),
        stdin: None,
        timeout: Some(VERSION_TIMEOUT),
    };
    match process::run(&spec, &|_, _| {}).await {
        Ok(finished) => {
            if let Exit::TimedOut(after) = finished.exit {
                return format!("(no answer in {}s)", after.as_secs());
            }
            let first = |bytes: &[u8]| {
                String::from_utf8_lossy(bytes).lines().map(str::trim).find(|line| !line.is_empty()).map(str::to_owned)
            };
            first(&finished.stdout)
                .or_else(|| first(&finished.stderr))
                .unwrap_or_else(|| "(printed nothing)".to_owned())
        }
        Err(error) => format!("({error})"),
    }
}
