//! `run --output json`: the run as a stream of JSON objects on stdout, one per line, each with
//! `v` (the stream's version), `type` and `ts` (seconds since the Unix epoch, to the
//! millisecond). The engine (through `sloth.core`) says what happens to the run and its tasks;
//! the console adds every log and output line. Nothing is written unless the stream is on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The version of the stream's format; a consumer checks it.
pub const VERSION: u64 = 1;

static ON: AtomicBool = AtomicBool::new(false);

/// What the stream said so far of the run: enough to end it for a run that is interrupted
/// (its Lua code, which reports the end, is then dropped).
#[derive(Default)]
struct Said {
    /// `run_started`: the pipeline, and when.
    run: Option<(serde_json::Value, Instant)>,
    /// Tasks started and not finished: group, task, when.
    running: Vec<(serde_json::Value, serde_json::Value, Instant)>,
    /// `task_finished` statuses and `task_skipped`, counted.
    counts: std::collections::BTreeMap<String, u64>,
    finished: bool,
}

static SAID: Mutex<Option<Said>> = Mutex::new(None);

/// Keeps track of what `kind` with `fields` says of the run.
fn note(kind: &str, fields: &serde_json::Map<String, serde_json::Value>) {
    let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
    let said = said.get_or_insert_with(Said::default);
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let mut count = |status: &str| *said.counts.entry(status.to_owned()).or_default() += 1;
    match kind {
        "run_started" => said.run = Some((field("pipeline"), Instant::now())),
        "task_started" => said.running.push((field("group"), field("task"), Instant::now())),
        "task_skipped" => count("skipped"),
        "task_finished" => {
            let (group, task) = (field("group"), field("task"));
            said.running.retain(|(g, t, _)| !(*g == group && *t == task));
            if let Some(status) = fields.get("status").and_then(serde_json::Value::as_str) {
                count(status);
            }
        }
        "run_finished" => said.finished = true,
        _ => {}
    }
}

/// Ends the stream of a run interrupted by a signal (`code`, `signal` its name): every task
/// still running `aborted`, then `run_finished` — unless the run said its end already.
pub fn interrupted(code: u8, signal: &str) {
    if !enabled() {
        return;
    }
    let said = SAID.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default();
    if said.finished {
        return;
    }
    let message = format!("interrupted by {signal}");
    let mut counts = said.counts;
    for status in ["succeeded", "failed", "skipped", "aborted"] {
        counts.entry(status.to_owned()).or_default();
    }
    let seconds = |since: Instant| (since.elapsed().as_secs_f64() * 1e6).round() / 1e6;
    for (group, task, since) in said.running {
        let mut fields = serde_json::Map::new();
        fields.insert("group".to_owned(), group);
        fields.insert("task".to_owned(), task);
        fields.insert("status".to_owned(), "aborted".into());
        fields.insert("duration".to_owned(), seconds(since).into());
        fields.insert("message".to_owned(), message.clone().into());
        emit_line("task_finished", fields);
        *counts.entry("aborted".to_owned()).or_default() += 1;
    }
    let mut fields = serde_json::Map::new();
    let (pipeline, since) =
        said.run.map_or((serde_json::Value::Null, None), |(pipeline, since)| (pipeline, Some(since)));
    fields.insert("pipeline".to_owned(), pipeline);
    fields.insert("exit_code".to_owned(), code.into());
    fields.insert("ok".to_owned(), false.into());
    fields.insert("counts".to_owned(), serde_json::json!(counts));
    if let Some(since) = since {
        fields.insert("duration".to_owned(), seconds(since).into());
    }
    fields.insert("error".to_owned(), message.into());
    emit_line("run_finished", fields);
}

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
    note(kind, &fields);
    emit_line(kind, fields);
}

fn emit_line(kind: &str, fields: serde_json::Map<String, serde_json::Value>) {
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
