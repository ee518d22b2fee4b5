//! `-e/--env`, `-p/--prod`, `--shards`: the Go sloth-runner's template flags. With any of them
//! the pipeline file is rendered as a Go template before Lua reads it; without, never (Lua
//! writes nested tables `{{ … }}`).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::pipeline_template::{TemplateData, first_template_line, render};

/// The Go tool's default for `.Env` when `-e` is not given.
const DEFAULT_ENV: &str = "Development";
/// The Go tool's default for `.Shards` when `--shards` is not given.
const DEFAULT_SHARDS: [i64; 3] = [1, 2, 3];

const HEADING: &str = "Pipeline file as a Go template (the Go sloth-runner's flags)";

#[derive(Debug, Args)]
pub struct TemplateFlags {
    /// Render the pipeline file as a Go template, with {{ .Env }} = NAME
    ///
    /// Only when -e, -p or --shards is given is the pipeline file rendered as a Go
    /// text/template before Lua reads it; without them it is read as it is (Lua writes nested
    /// tables {{ … }}). The Go tool always rendered it, with -e Development and --shards 1,2,3
    /// by default: those defaults apply here when only some of the three flags are given.
    /// Supported: {{ .Env }}, {{ .IsProduction }}, {{ .Shards }}, {{ . }}, {{ $.Env }}, if / else
    /// if / else / end, range / else / end, eq, ne, not, and, or, len, {{/* comments */}},
    /// {{- trim markers -}}; the lines of the file keep their numbers (a range over several
    /// lines puts its iterations on its first line). Files the pipeline imports are not rendered.
    #[arg(short = 'e', long = "env", value_name = "NAME", help_heading = HEADING)]
    env: Option<String>,
    /// Render the pipeline file with {{ .IsProduction }} = true (see -e)
    #[arg(short = 'p', long = "prod", help_heading = HEADING)]
    prod: bool,
    /// Render the pipeline file with {{ .Shards }} = these comma-separated integers (see -e)
    #[arg(long = "shards", value_name = "LIST", value_parser = parse_shards, help_heading = HEADING)]
    shards: Option<Shards>,
}

#[derive(Debug, Clone)]
struct Shards(Vec<i64>);

fn parse_shards(text: &str) -> Result<Shards, String> {
    if text.trim().is_empty() {
        return Ok(Shards(Vec::new()));
    }
    text.split(',')
        .map(|shard| shard.trim().parse::<i64>().map_err(|_| format!("invalid shard number '{}'", shard.trim())))
        .collect::<Result<_, _>>()
        .map(Shards)
}

impl TemplateFlags {
    /// The template data, when the file is to be rendered.
    fn data(&self) -> Option<TemplateData> {
        if self.env.is_none() && !self.prod && self.shards.is_none() {
            return None;
        }
        Some(TemplateData {
            env: self.env.clone().unwrap_or_else(|| DEFAULT_ENV.to_owned()),
            is_production: self.prod,
            shards: self.shards.as_ref().map_or_else(|| DEFAULT_SHARDS.to_vec(), |shards| shards.0.clone()),
        })
    }

    /// The pipeline file rendered, when asked for (None when not), or the exit code after the
    /// error is said. Without the flags, a file that reads the template data gets a warning.
    pub fn source(&self, file: &Path) -> Result<Option<String>, ExitCode> {
        let Some(data) = self.data() else {
            if let Ok(text) = std::fs::read_to_string(file)
                && let Some(line) = first_template_line(&text)
            {
                eprintln!(
                    "warning: {}:{line}: {{{{ .Env }}}}, {{{{ .IsProduction }}}} and {{{{ .Shards }}}} are rendered \
                     only with -e NAME, -p or --shards",
                    file.display()
                );
            }
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).map_err(|error| {
            eprintln!("error: {}: cannot read the pipeline file: {error}", file.display());
            ExitCode::from(super::USAGE_ERROR)
        })?;
        render(file, &text, &data).map(Some).map_err(|error| {
            eprintln!("error: {error}");
            ExitCode::from(super::USAGE_ERROR)
        })
    }
}
