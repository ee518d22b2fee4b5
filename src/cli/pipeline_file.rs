//! The pipeline file every command that reads one takes: `FILE`, or `-f/--file FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct PipelineFile {
    /// The pipeline file.
    #[arg(value_name = "FILE", required_unless_present = "file_flag", conflicts_with = "file_flag")]
    file: Option<PathBuf>,
    /// The pipeline file (alternative spelling).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file_flag: Option<PathBuf>,
}

impl PipelineFile {
    /// The file given, or the usage error to exit with (clap requires one of the two).
    pub fn path(&self) -> Result<&Path, ExitCode> {
        match self.file.as_deref().or(self.file_flag.as_deref()) {
            Some(path) => Ok(path),
            None => {
                eprintln!("error: no pipeline file given");
                Err(ExitCode::from(super::USAGE_ERROR))
            }
        }
    }
}
