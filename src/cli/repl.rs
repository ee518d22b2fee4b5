//! `sloth-runner repl` (or no arguments): an interactive Lua prompt with everything a pipeline
//! has. Line editing and history (rustyline) run on their own thread; each chunk is evaluated
//! by the stdlib (`sloth.repl`) in one VM, so async natives like `exec.run` work as in a task.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::mpsc as std_mpsc;

use rustyline::Editor;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use tokio::sync::mpsc;

use std::sync::Arc;

use super::repl_complete::{Question, ReplHelper};
use super::signals::Signals;
use crate::runtime::preempt::Abort;
use crate::runtime::{Runtime, RuntimeOptions, error};

const PROMPT: &str = "sloth> ";
const CONTINUATION: &str = "  ...> ";

/// What the line-editing thread sends.
enum Input {
    Line(String),
    /// Ctrl-C: drop what was typed so far.
    Interrupted,
    /// Ctrl-D or end of input.
    Eof,
}

/// `repl [FILE]`, `repl -f FILE`.
#[derive(Debug, clap::Args)]
pub struct ReplArgs {
    /// A Lua file to evaluate first (a pipeline, definitions to try things with).
    #[arg(value_name = "FILE", conflicts_with = "file_flag")]
    file: Option<std::path::PathBuf>,
    /// The file to evaluate first (alternative spelling).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file_flag: Option<std::path::PathBuf>,
}

impl ReplArgs {
    pub fn path(&self) -> Option<&std::path::Path> {
        self.file.as_deref().or(self.file_flag.as_deref())
    }
}

/// Runs the prompt, after evaluating `file` (a failure there ends it: exit 1).
pub fn execute(file: Option<&std::path::Path>) -> ExitCode {
    crate::workspace::content_memo::enable(crate::workspace::content_memo::MASTER_LIMIT);
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    // After each line the evaluator says whether the next prompt continues a chunk.
    let (prompt_tx, prompt_rx) = std_mpsc::channel::<bool>();
    // Input that is not a terminal (a pipe, a file) is one chunk, as `lua -` reads it: a local
    // of one line is there on the next.
    let piped = !std::io::stdin().is_terminal();
    // The editor's questions for Tab completion, answered by the VM between lines.
    let (questions_tx, mut questions_rx) = mpsc::unbounded_channel::<Question>();
    if !piped {
        // The line editor sets its own SIGINT handler when it is made; ours (below) must come
        // after it, so that it runs (and runs the editor's too) rather than being replaced.
        let (ready_tx, ready_rx) = std_mpsc::channel::<()>();
        std::thread::spawn(move || read_lines(&lines_tx, &prompt_rx, &ready_tx, questions_tx));
        let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(5));
    }

    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&tokio, async move {
        let runtime = match Runtime::new(&RuntimeOptions::from_env()) {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: cannot start the Lua runtime: {}", error::describe(&e));
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = runtime.call::<()>("sloth.repl", "setup", ()).await {
            eprintln!("error: {}", error::describe(&e));
            return ExitCode::FAILURE;
        }
        if let Some(file) = file {
            let path = runtime.lua().create_string(file.as_os_str().as_encoded_bytes());
            let evaluated = match path {
                Ok(path) => runtime.call::<Option<String>>("sloth.repl", "evaluate_file", path).await,
                Err(e) => Err(e),
            };
            match evaluated {
                Ok(None) => {}
                Ok(Some(message)) => {
                    eprintln!("error: {message}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("error: {}", error::describe(&e));
                    return ExitCode::FAILURE;
                }
            }
        }
        // A signal while a line runs cancels it, with every process it started: Ctrl-C goes
        // back to the prompt, SIGTERM and SIGHUP end the REPL.
        let signals = match Signals::watch() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("error: cannot watch for signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        runtime.lua().set_app_data(Abort(Arc::clone(&signals.abort)));
        // This thread runs the VM: a first signal interrupts what it is blocked in.
        let _in_vm = signals.vm.enter();
        if piped {
            return evaluate_stdin(&runtime, &signals).await;
        }
        let mut buffer = String::new();
        loop {
            let input = tokio::select! {
                input = lines_rx.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
                Some(question) = questions_rx.recv() => {
                    answer(&runtime, question).await;
                    continue;
                }
            };
            match input {
                Input::Eof => break,
                Input::Interrupted => buffer.clear(),
                Input::Line(line) => {
                    // Ctrl-C while waiting for more lines drops the unfinished chunk, as it does
                    // at a terminal's prompt.
                    if signals.code().is_some() {
                        buffer.clear();
                        signals.reset();
                    }
                    if !buffer.is_empty() {
                        buffer.push('\n');
                    }
                    buffer.push_str(&line);
                    // A signal that came while waiting at the prompt is not this line's.
                    signals.reset();
                    let evaluated = tokio::select! {
                        result = runtime.call::<String>("sloth.repl", "eval", buffer.as_str()) => result,
                        _ = signals.first() => Err(mlua::Error::runtime("interrupted")),
                    };
                    // A `:run` (or `run()`) that was cut short leaves no status line behind
                    // over the prompt.
                    crate::status_line::disable();
                    if let Some(code) = signals.code() {
                        runtime.cancel_jobs();
                        crate::modules::agent::stop_spawned(runtime.lua());
                        eprintln!("interrupted: the line's tasks were cancelled");
                        buffer.clear();
                        if code != 130 {
                            return ExitCode::from(code);
                        }
                        signals.reset();
                    } else {
                        match evaluated {
                            Ok(status) if status == "incomplete" => {}
                            Ok(status) if status == "quit" => break,
                            Ok(_) => buffer.clear(),
                            Err(e) => {
                                eprintln!("{}", error::describe(&e));
                                buffer.clear();
                            }
                        }
                    }
                }
            }
            if prompt_tx.send(!buffer.is_empty()).is_err() {
                break;
            }
        }
        ExitCode::SUCCESS
    });
    drop(local);
    code
}

/// The candidates for the word before the cursor (`sloth.repl_complete`); none if it fails.
async fn answer(runtime: &Runtime, question: Question) {
    let found = runtime
        .call::<(usize, Vec<String>)>("sloth.repl_complete", "candidates", (question.line, question.pos))
        .await
        .unwrap_or((question.pos, Vec::new()));
    let _ = question.answer.send(found);
}

/// Evaluates all of stdin as one chunk (named `stdin`): exit 1 when it fails, the signal's code
/// when one stops it.
async fn evaluate_stdin(runtime: &Runtime, signals: &Signals) -> ExitCode {
    let mut source = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut source) {
        eprintln!("error: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let source = match runtime.lua().create_string(&source) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("error: {}", error::describe(&e));
            return ExitCode::FAILURE;
        }
    };
    let evaluated = tokio::select! {
        result = runtime.call::<Option<String>>("sloth.repl", "evaluate_chunk", source) => result,
        code = signals.first() => {
            runtime.cancel_jobs();
            eprintln!("interrupted: the input's tasks were cancelled");
            return ExitCode::from(code);
        }
    };
    match evaluated {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{}", error::describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The line-editing loop: one line at a time, waiting for the evaluation before prompting.
fn read_lines(
    lines: &mpsc::UnboundedSender<Input>,
    continuing: &std_mpsc::Receiver<bool>,
    ready: &std_mpsc::Sender<()>,
    questions: mpsc::UnboundedSender<Question>,
) {
    let editor = Editor::<ReplHelper, DefaultHistory>::new();
    let _ = ready.send(());
    let Ok(mut editor) = editor else {
        let _ = lines.send(Input::Eof);
        return;
    };
    editor.set_helper(Some(ReplHelper::new(questions)));
    let history = std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".sloth_history"));
    if let Some(history) = &history {
        let _ = editor.load_history(history);
    }
    let mut prompt = PROMPT;
    loop {
        let input = match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    // Written as it is entered: the REPL may end (Ctrl-D, `:quit`, a signal)
                    // before this thread would get to save it.
                    if let Some(history) = &history {
                        let _ = editor.append_history(history);
                    }
                }
                Input::Line(line)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupted,
            Err(_) => Input::Eof,
        };
        let eof = matches!(input, Input::Eof);
        if lines.send(input).is_err() || eof {
            break;
        }
        match continuing.recv() {
            Ok(true) => prompt = CONTINUATION,
            Ok(false) => prompt = PROMPT,
            Err(_) => break,
        }
    }
}
