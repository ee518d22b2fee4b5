//! The pipeline file as a Go text/template, as the Go sloth-runner rendered it for `-e`, `-p`
//! and `--shards`: the subset its pipelines use — `{{ .Env }}`, `{{ .IsProduction }}`,
//! `{{ .Shards }}`, `{{ range }}`, `{{ if }}`/`{{ else if }}`/`{{ else }}`, `eq ne not and or len`,
//! comments and trim markers. Anything else is refused with the file, the line and the action.
//!
//! Written here rather than taken from a template crate because the output must keep every
//! line where it was, so that Lua's errors name the lines of the file the user wrote: a branch
//! not taken leaves its line breaks, and the iterations of a `range` over several lines share
//! them (flattened onto the range's first line).

mod eval;
mod expr;
mod flatten;
mod lex;

use std::path::{Path, PathBuf};

/// What the template sees (Go's `TemplateData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateData {
    /// `.Env`: `-e NAME`.
    pub env: String,
    /// `.IsProduction`: `-p`.
    pub is_production: bool,
    /// `.Shards`: `--shards 1,2,3`.
    pub shards: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct TemplateError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// A failure at a line, before the file's path is put on it.
#[derive(Debug)]
struct Failure {
    line: usize,
    message: String,
}

impl Failure {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

/// `text` (the content of `path`) rendered with `data`; it has as many lines as `text`.
pub fn render(path: &Path, text: &str, data: &TemplateData) -> Result<String, TemplateError> {
    let failed =
        |failure: Failure| TemplateError { path: path.to_path_buf(), line: failure.line, message: failure.message };
    let tokens = lex::tokens(text).map_err(failed)?;
    let nodes = eval::tree(tokens).map_err(failed)?;
    let mut out = String::with_capacity(text.len());
    eval::render(&nodes, data, &mut out).map_err(failed)?;
    Ok(out)
}

/// The first line of `text` holding an action that reads the Go tool's template data
/// (`{{ .Env }}`, `{{ if .IsProduction }}`, `{{ range .Shards }}`…): a file written to be
/// rendered, which will not be unless asked.
pub fn first_template_line(text: &str) -> Option<usize> {
    let Ok(tokens) = lex::tokens(text) else { return None };
    let mut line = 1;
    for token in tokens {
        match token {
            lex::Token::Text(text) => line += lex::newlines(&text),
            lex::Token::Comment { newlines } => line += newlines,
            lex::Token::Action { body, newlines, .. } => {
                let reads_data = ["Env", "IsProduction", "Shards"].iter().any(|field| {
                    body.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                        .any(|word| word.strip_prefix('$').unwrap_or(word).strip_prefix('.') == Some(field))
                });
                if reads_data {
                    return Some(line);
                }
                line += newlines;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
