//! `sloth-runner new GROUP [-t TEMPLATE] [-o FILE] [--force]`: a pipeline to start from.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{USAGE_ERROR, templates};

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The group's name (spaces become dashes; letters, digits, '_' and '-').
    group: String,
    /// The template (see `sloth-runner template list`).
    #[arg(short, long, value_name = "TEMPLATE", default_value = templates::DEFAULT)]
    template: String,
    /// Write the pipeline to FILE (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

pub fn execute(args: &NewArgs) -> ExitCode {
    // As the Go sloth-runner did: "my group" is the group "my-group".
    let group = args.group.trim().replace(' ', "-");
    if group.is_empty() || !group.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        eprintln!("error: group name '{}': use letters, digits, '_' and '-'", args.group);
        return ExitCode::from(USAGE_ERROR);
    }
    let text = match templates::render(&args.template, &group) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let Some(path) = &args.output else {
        print!("{text}");
        return ExitCode::SUCCESS;
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options.open(path).and_then(|mut file| file.write_all(text.as_bytes()));
    match written {
        Ok(()) => {
            eprintln!("wrote {} (group '{group}', template '{}')", path.display(), args.template);
            ExitCode::SUCCESS
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("error: {} exists; --force overwrites it", path.display());
            ExitCode::from(USAGE_ERROR)
        }
        Err(error) => {
            eprintln!("error: writing {}: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}
