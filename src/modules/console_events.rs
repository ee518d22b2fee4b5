//! Emitting a task's log lines and output lines as tracing events with the task's prefix —
//! shared by `log`, `exec` and `agent` (which replays what a remote task said).

use tracing::Level;

use crate::process::OutputStream;

/// Tracing target of `log` lines.
pub const LOG_TARGET: &str = "lua";
/// Tracing target of command output lines.
pub const OUTPUT_TARGET: &str = "output";

/// A log line: `<task>  LEVEL  message fields`. `of`: the task (`group/task`) when `task`, the
/// prefix shown, says where it ran instead (`agent/task`); the console shows the prefix, the
/// JSON stream both.
pub fn log(level: Level, task: Option<&str>, message: &str, fields: Option<&str>, of: Option<&str>) {
    match level {
        Level::DEBUG => tracing::debug!(target: LOG_TARGET, task, of, fields, "{message}"),
        Level::INFO => tracing::info!(target: LOG_TARGET, task, of, fields, "{message}"),
        Level::WARN => tracing::warn!(target: LOG_TARGET, task, of, fields, "{message}"),
        Level::ERROR => tracing::error!(target: LOG_TARGET, task, of, fields, "{message}"),
        Level::TRACE => tracing::trace!(target: LOG_TARGET, task, of, fields, "{message}"),
    }
}

/// An output line: `<task> | line` (stdout) or `<task> ! line` (stderr); `of` as for [`log`].
pub fn output(stream: OutputStream, task: Option<&str>, line: &str, of: Option<&str>) {
    let stream = match stream {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
    };
    tracing::info!(target: OUTPUT_TARGET, task, of, stream, "{line}");
}
