//! The third phase of a call: what the task says while it runs.

use crate::events::TaskEvent;
use crate::process::OutputStream;
use crate::rpc::proto::execute_response::Event;
use crate::rpc::proto::output_line;

/// A log line, an output line or what the task's Lua code printed, as the master reports it;
/// any other event of the call comes back as it was.
pub(super) fn task_event(event: Event) -> Result<TaskEvent, Event> {
    match event {
        Event::Log(log) => Ok(TaskEvent::Log {
            level: log.level.parse().unwrap_or(tracing::Level::INFO),
            message: log.message,
            fields: log.fields,
        }),
        Event::Output(line)
            if line.stream == output_line::Stream::Print as i32
                || line.stream == output_line::Stream::WriteStderr as i32 =>
        {
            let stderr = line.stream == output_line::Stream::WriteStderr as i32;
            let text = if line.raw.is_empty() { line.line.into_bytes() } else { line.raw };
            Ok(TaskEvent::Print { text, more: line.more || stderr, stderr })
        }
        Event::Output(line) => Ok(TaskEvent::Output {
            stream: if line.stream == output_line::Stream::Stderr as i32 {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            },
            line: line.line,
        }),
        other => Err(other),
    }
}
