//! Tab completion and history hints for the REPL's line editor. The editor runs on its own
//! thread; what a name can complete to is only known to the Lua VM on the main thread, which
//! is idle while a line is being typed: the editor asks it over a channel (`sloth.repl_complete`
//! answers) and waits a moment for the answer.

use std::borrow::Cow;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use tokio::sync::mpsc;

/// How long the editor waits for the VM's candidates (it is idle while a line is typed).
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

/// What the editor asks the VM: the candidates for the word before `pos` in `line`.
pub struct Question {
    pub line: String,
    pub pos: usize,
    /// Where the word starts, and what it can become.
    pub answer: std_mpsc::Sender<(usize, Vec<String>)>,
}

pub struct ReplHelper {
    ask: mpsc::UnboundedSender<Question>,
    files: FilenameCompleter,
    history: HistoryHinter,
}

impl ReplHelper {
    pub fn new(ask: mpsc::UnboundedSender<Question>) -> Self {
        Self { ask, files: FilenameCompleter::new(), history: HistoryHinter::new() }
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        // `:load FILE`: file names.
        if line.trim_start().starts_with(":load ") {
            return self.files.complete(line, pos, ctx);
        }
        let (answer, answered) = std_mpsc::channel();
        if self.ask.send(Question { line: line.to_owned(), pos, answer }).is_err() {
            return Ok((pos, Vec::new()));
        }
        let Ok((start, names)) = answered.recv_timeout(ANSWER_WITHIN) else { return Ok((pos, Vec::new())) };
        let pairs = names.into_iter().map(|name| Pair { display: name.clone(), replacement: name }).collect();
        Ok((start.min(pos), pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    /// The rest of the most recent history line that begins with what was typed.
    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.history.hint(line, pos, ctx)
    }
}

impl Highlighter for ReplHelper {
    /// Hints dimmed, unless NO_COLOR asks for none.
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()) {
            Cow::Borrowed(hint)
        } else {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        }
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}
