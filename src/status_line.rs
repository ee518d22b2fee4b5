//! The live status line of `run` on a terminal: the bottom line of stderr says which tasks are
//! running and for how long, and how far a large transfer to or from an agent has got.
//!
//! It is drawn only when stderr is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`;
//! otherwise nothing here writes a byte and the output is the plain, stable lines. Whatever
//! writes to the terminal while it is drawn goes through [`write`] or [`begin`]…[`end`], which take
//! the line away first (under one lock, so a line and the status never mix); a ticker thread
//! draws it again a moment later, and never in the middle of a line someone started and did
//! not end.
//!
//! Written by hand rather than with a progress-bar crate: what matters here is that every
//! writer of the process — tracing, Lua's `print`, `io.write` and files, `os.execute`, the
//! JSON stream — keeps the line away for as long as it writes, possibly for minutes and
//! re-entrantly (a `print` whose `__tostring` logs), without holding a lock others wait for,
//! which those crates' suspend calls (a closure run under their lock) do not offer.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::rpc::Transfer;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);
/// Transfers smaller than this finish too fast for a bar to help.
const BAR_FROM: u64 = 4 << 20;
/// Erase the line the cursor is on and go to its start.
const ERASE: &str = "\r\x1b[2K";

/// Stderr as a `tracing` writer: each event is gathered and written in one go through
/// [`write`] when the writer is dropped.
#[derive(Debug, Default)]
pub struct StderrLines(Vec<u8>);

impl Write for StderrLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLines {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write(Stream::Stderr, &self.0);
        }
    }
}

/// Where a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

struct Line {
    state: Mutex<State>,
    stdout_is_terminal: bool,
}

struct State {
    on: bool,
    drawn: bool,
    /// Writers at work past the line ([`begin`] without its [`end`] yet): it is not drawn meanwhile.
    held: usize,
    /// Whether the last byte each stream wrote to the terminal ended a line.
    stdout_at_start: bool,
    stderr_at_start: bool,
    running: Vec<(String, Instant)>,
    transfers: Vec<(String, Arc<Transfer>)>,
}

static LINE: OnceLock<Line> = OnceLock::new();

/// Turns the status line on when stderr is a terminal that wants it; whether it is on.
pub fn enable() -> bool {
    let wanted = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        // (No TERM, or an empty one, is taken for a terminal that cannot move the cursor.)
        && std::env::var_os("TERM").is_some_and(|term| !term.is_empty() && term != "dumb");
    if !wanted {
        return false;
    }
    let mut started = false;
    let line = LINE.get_or_init(|| {
        started = true;
        Line {
            state: Mutex::new(State {
                on: true,
                drawn: false,
                held: 0,
                stdout_at_start: true,
                stderr_at_start: true,
                running: Vec::new(),
                transfers: Vec::new(),
            }),
            stdout_is_terminal: std::io::stdout().is_terminal(),
        }
    });
    if started {
        std::thread::Builder::new().name("status-line".to_owned()).spawn(tick).is_ok()
    } else {
        // A new run (from a REPL): whatever an earlier one left unfinished, a prompt and its
        // line came since.
        let mut state = lock(line);
        state.on = true;
        state.stdout_at_start = true;
        state.stderr_at_start = true;
        true
    }
}

/// Takes the line away for good (the run is over); later writes go straight out. Never waits
/// long: a second Ctrl-C calls it while a writer may be stuck on a full pipe (the ticker, which
/// draws under the lock, looks at `GONE` again after drawing).
pub fn disable() {
    let Some(line) = LINE.get() else { return };
    GONE.store(true, Ordering::SeqCst);
    for _ in 0..50 {
        if let Ok(mut state) = line.state.try_lock() {
            erase(&mut state);
            state.on = false;
            state.running.clear();
            state.transfers.clear();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    GONE.store(false, Ordering::SeqCst);
}

/// Set while [`disable`] runs: the ticker draws nothing, and takes away what it just drew.
static GONE: AtomicBool = AtomicBool::new(false);

/// A task started (`group/task`), or ended.
pub fn task(name: &str, running: bool) {
    let Some(line) = LINE.get() else { return };
    let mut state = lock(line);
    if running {
        state.running.push((name.to_owned(), Instant::now()));
    } else if let Some(at) = state.running.iter().position(|(running, _)| running == name) {
        state.running.remove(at);
    }
}

/// Shows `transfer` (of task `name`) while the returned guard lives.
pub fn watch(name: &str, transfer: &Arc<Transfer>) -> Watched {
    if let Some(line) = LINE.get() {
        lock(line).transfers.push((name.to_owned(), Arc::clone(transfer)));
    }
    Watched(Arc::clone(transfer))
}

/// Ends showing a transfer when dropped.
pub struct Watched(Arc<Transfer>);

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(line) = LINE.get() {
            lock(line).transfers.retain(|(_, transfer)| !Arc::ptr_eq(transfer, &self.0));
        }
    }
}

/// Writes `bytes` to `stream` (and flushes it), taking the status line away first.
pub fn write(stream: Stream, bytes: &[u8]) {
    begin();
    write_out(stream, bytes);
    end(Ends::Known(stream, bytes.last().map(|last| *last == b'\n')));
}

/// How the output of a writer ended, for [`end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// On `stream`: with a line's end (`Some(true)`), in the middle of a line (`Some(false)`),
    /// or as it was (`None`: nothing written).
    Known(Stream, Option<bool>),
    /// Nobody knows (a command wrote to the terminal itself): as if in the middle of a line on
    /// both streams, so the line waits for the next whole line.
    Unknown,
}

/// Takes the status line away and keeps it away until the matching [`end`]: someone is about
/// to write to the terminal. No lock is held in between — the writer may block on a full pipe
/// or run a command for minutes — so other writers go on meanwhile.
pub fn begin() {
    if let Some(line) = LINE.get() {
        let mut state = lock(line);
        erase(&mut state);
        state.held += 1;
    }
}

/// The writer that called [`begin`] is done.
pub fn end(ends: Ends) {
    let Some(line) = LINE.get() else { return };
    let mut state = lock(line);
    state.held = state.held.saturating_sub(1);
    match ends {
        Ends::Known(stream, Some(at_start)) => set_at_start(&mut state, stream, at_start),
        Ends::Known(_, None) => {}
        Ends::Unknown => {
            state.stderr_at_start = false;
            state.stdout_at_start = false;
        }
    }
}

/// Whether the line is on (what writes to the terminal should go through [`write`]).
pub fn is_on() -> bool {
    LINE.get().is_some_and(|line| lock(line).on)
}

fn set_at_start(state: &mut State, stream: Stream, at_start: bool) {
    match stream {
        Stream::Stdout => state.stdout_at_start = at_start,
        Stream::Stderr => state.stderr_at_start = at_start,
    }
}

fn write_out(stream: Stream, bytes: &[u8]) {
    // A reader that went away (a closed pipe) ends nothing: the run goes on.
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}

fn lock(line: &Line) -> MutexGuard<'_, State> {
    line.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn erase(state: &mut State) {
    if state.drawn {
        write_out(Stream::Stderr, ERASE.as_bytes());
        state.drawn = false;
    }
}

/// The ticker: redraws the line while it is on and something is running.
fn tick() {
    let Some(line) = LINE.get() else { return };
    loop {
        std::thread::sleep(TICK);
        let mut state = lock(line);
        if !state.on || GONE.load(Ordering::SeqCst) {
            continue;
        }
        if state.running.is_empty() && state.transfers.is_empty() {
            erase(&mut state);
            continue;
        }
        // Never while someone writes past it, nor over a line someone began and did not end.
        if state.held > 0 || !state.stderr_at_start || (line.stdout_is_terminal && !state.stdout_at_start) {
            continue;
        }
        let width = terminal_size::terminal_size_of(std::io::stderr()).map_or(80, |(width, _)| width.0 as usize);
        let text = fit(&describe(&state, Instant::now()), width.saturating_sub(1));
        write_out(Stream::Stderr, format!("{ERASE}{text}").as_bytes());
        state.drawn = true;
        if GONE.load(Ordering::SeqCst) {
            erase(&mut state);
        }
    }
}

/// `build/upload ↑ [#####     ] 12.0/64.0 MiB · 2 running: build/a 3.1s, build/b 0.4s`
fn describe(state: &State, now: Instant) -> String {
    let mut parts = Vec::new();
    for (name, transfer) in &state.transfers {
        let (sent, to_send) = (transfer.sent.load(Ordering::Relaxed), transfer.to_send.load(Ordering::Relaxed));
        let received = transfer.received.load(Ordering::Relaxed);
        if to_send >= BAR_FROM && sent < to_send {
            parts.push(format!("{} ↑ {} {:.1}/{}", shown(name), bar(sent, to_send), mib(sent), size(to_send)));
        } else if received >= BAR_FROM {
            parts.push(format!("{} ↓ {}", shown(name), size(received)));
        }
    }
    if !state.running.is_empty() {
        let tasks: Vec<String> = state
            .running
            .iter()
            .map(|(name, since)| format!("{} {:.1}s", shown(name), now.duration_since(*since).as_secs_f64()))
            .collect();
        parts.push(format!("{} running: {}", state.running.len(), tasks.join(", ")));
    }
    parts.join(" · ")
}

fn bar(done: u64, total: u64) -> String {
    const CELLS: u64 = 20;
    let full = (done.min(total) * CELLS).checked_div(total).unwrap_or(0) as usize;
    format!("[{}{}]", "#".repeat(full), " ".repeat(CELLS as usize - full))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn size(bytes: u64) -> String {
    format!("{:.1} MiB", mib(bytes))
}

/// A task's name as the line shows it: control characters (a newline, an escape) as `?`, so
/// that a name can neither break the line nor drive the terminal.
fn shown(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `text` cut to `width` terminal columns (a wide character takes two), with an ellipsis when
/// cut.
fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let columns = |c: char| c.width().unwrap_or(0);
    if text.chars().map(columns).sum::<usize>() <= width {
        return text.to_owned();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + columns(c) + 1 > width {
            break;
        }
        used += columns(c);
        cut.push(c);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    fn state(running: &[(&str, u64)], transfers: Vec<(&str, Transfer)>, now: Instant) -> State {
        State {
            on: true,
            drawn: false,
            held: 0,
            stdout_at_start: true,
            stderr_at_start: true,
            running: running.iter().map(|(name, ago)| (name.to_string(), now - Duration::from_millis(*ago))).collect(),
            transfers: transfers.into_iter().map(|(name, t)| (name.to_owned(), Arc::new(t))).collect(),
        }
    }

    #[test]
    fn the_line_names_running_tasks_with_their_time_and_large_transfers_with_a_bar() {
        let now = Instant::now();
        let upload =
            Transfer { sent: AtomicU64::new(16 << 20), to_send: AtomicU64::new(64 << 20), ..Default::default() };
        let small = Transfer { sent: AtomicU64::new(1), to_send: AtomicU64::new(1000), ..Default::default() };
        let text = describe(&state(&[("g/a", 3100), ("g/b", 400)], vec![("g/a", upload), ("g/b", small)], now), now);
        assert_eq!(text, "g/a ↑ [#####               ] 16.0/64.0 MiB · 2 running: g/a 3.1s, g/b 0.4s");
    }

    #[test]
    fn a_long_line_is_cut_to_the_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("ééééé", 3), "éé…");
        assert_eq!(fit("漢字漢字", 5), "漢字…");
        assert_eq!(shown("a\nb\x1b[2K"), "a?b?[2K");
    }
}
