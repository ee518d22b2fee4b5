//! Emitting a task's log lines and output lines as tracing events with the task's prefix —
//! shared by `log`, `exec` and `agent` (which replays what a remote task said).

use tracing::Level;

use crate::process::OutputStream;

/// Tracing target of `log` lines.
pub const LOG_TARGET: &str = "lua";
/// Tracing target of command output lines.
pub const OUTPUT_TARGET: &str = "output";

/// A log line: `<task>  LEVEL  message fields`.
pub fn log(level: Level, task: Option<&str>, message: &str, fields: Option<&str>) {
    match level {
        Level::DEBUG => tracing::debug!(target: LOG_TARGET, task, fields, "{message}"),
        Level::INFO => tracing::info!(target: LOG_TARGET, task, fields, "{message}"),
        Level::WARN => tracing::warn!(target: LOG_TARGET, task, fields, "{message}"),
        Level::ERROR => tracing::error!(target: LOG_TARGET, task, fields, "{message}"),
        Level::TRACE => tracing::trace!(target: LOG_TARGET, task, fields, "{message}"),
    }
}

/// An output line: `<task> | line` (stdout) or `<task> ! line` (stderr).
pub fn output(stream: OutputStream, task: Option<&str>, line: &str) {
    let stream = match stream {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
    };
    tracing::info!(target: OUTPUT_TARGET, task, stream, "{line}");
}
