//! `run --output json`: the run as a stream of JSON objects on stdout, one per line, each with
//! `v` (the stream's version), `type` and `ts` (seconds since the Unix epoch, to the
//! millisecond). The engine (through `sloth.core`) says what happens to the run and its tasks;
//! the console adds every log and output line. Nothing is written unless the stream is on.

use std::sync::atomic::{AtomicBool, Ordering};

/// The version of the stream's format; a consumer checks it.
pub const VERSION: u64 = 1;

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the stream on (for the rest of the process).
pub fn enable() {
    ON.store(true, Ordering::SeqCst);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Writes one event (`fields` joined after `v`, `type` and `ts`) as one line, in one write so
/// that lines never interleave.
pub fn emit(kind: &str, fields: serde_json::Map<String, serde_json::Value>) {
    if !enabled() {
        return;
    }
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut event = serde_json::Map::with_capacity(fields.len() + 3);
    event.insert("v".to_owned(), VERSION.into());
    event.insert("type".to_owned(), kind.into());
    event.insert("ts".to_owned(), ((ts.as_millis() as f64) / 1000.0).into());
    event.extend(fields);
    let mut line = serde_json::Value::Object(event).to_string();
    line.push('\n');
    // (Past the status line when stdout is the same terminal; a consumer that went away, a
    // closed pipe, ends nothing: the run goes on.)
    crate::status_line::write(crate::status_line::Stream::Stdout, line.as_bytes());
}
