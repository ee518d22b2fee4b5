//! The live status line: on a terminal (a pseudo-terminal here) the bottom line names the
//! running tasks while they run and is gone from what stays on the screen; without a terminal
//! or with `NO_COLOR`, not one escape code is written.

use std::process::Stdio;
use std::time::Duration;

use crate::support::Test;
use crate::support::terminal::Terminal;

/// A slow shell task (it ends once the test has seen the line name it: whatever the load, it
/// outlasts the others) beside a Lua function that writes half a line, keeps the Lua thread
/// busy (the line must not be drawn over that half), then ends the line.
const PIPELINE: &str = r#"
TaskDefinitions = { g = { tasks = {
  { name = "slow", command = "for i in $(seq 1500); do [ -e release ] && break; sleep 0.02; done; echo slow-said-this" },
  { name = "busy", command = function()
      io.write("half a line")
      local started = os.clock()
      while os.clock() - started < 0.4 do end
      io.write(", and its end\n")
      print("a print")
      return true
    end },
  { name = "after", depends_on = "slow", command = "sleep 0.3" },
  { name = "command", command = function()
      os.execute("printf 'a command wrote this'")
      local started = os.clock()
      while os.clock() - started < 0.4 do end
      print(", and a print ended it")
      return true
    end },
} } }
"#;

/// Runs `sloth-runner args…` with stdin, stdout and stderr on a new pseudo-terminal; its
/// exit code and every byte the terminal received.
fn run_on_terminal(test: &Test, args: &[&str]) -> (Option<i32>, Vec<u8>) {
    run_on_terminal_with(test, args, None, |_| {})
}

/// [`run_on_terminal`], with stdout elsewhere when `stdout` is given, and `meanwhile` called
/// with the process id once it runs.
fn run_on_terminal_with(
    test: &Test,
    args: &[&str],
    stdout: Option<Stdio>,
    meanwhile: impl FnOnce(u32),
) -> (Option<i32>, Vec<u8>) {
    let terminal = Terminal::spawn(test.command(args), stdout);
    meanwhile(terminal.pid());
    terminal.finish()
}

/// The lines a terminal shows at the end: `\r` goes back to the line's start, `ESC[2K` erases
/// it, `\n` ends it.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let (mut lines, mut current) = (Vec::new(), String::new());
    let mut rest = text.as_ref();
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\x1b[2K") {
            current.clear();
            rest = after;
            continue;
        }
        match c {
            '\n' => lines.push(std::mem::take(&mut current)),
            // The pty writes "\r\n" for "\n"; a status line never leaves a lone "\r" behind
            // without an erase after it.
            '\r' => {}
            c => current.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[test]
fn on_a_terminal_the_status_line_names_running_tasks_and_leaves_only_the_plain_lines() {
    let test = Test::new().write("tasks.lua", PIPELINE).env("TERM", "xterm").env("NO_COLOR", "");
    let terminal = Terminal::spawn(test.command(&["run", "-j", "3", "tasks.lua"]), None);
    terminal.wait_for(0, "running: g/slow ");
    std::fs::write(test.path().join("release"), "").expect("let the slow task end");
    let (code, bytes) = terminal.finish();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(code, Some(0), "{raw}");
    assert!(raw.contains("\x1b[2K"), "no status line was drawn:\n{raw:?}");
    assert!(raw.contains("running: g/slow "), "the status line names the slow task:\n{raw:?}");
    let lines = screen(&bytes);
    assert!(
        lines.iter().all(|line| !line.contains("running:")),
        "a status line stayed on the screen or mixed into a line:\n{lines:#?}"
    );
    for expected in [
        "g/slow | slow-said-this",
        "half a line, and its end",
        "a print",
        "a command wrote this, and a print ended it",
        "g/after  started",
    ] {
        assert!(lines.iter().any(|line| line == expected), "'{expected}' is not a line of its own:\n{lines:#?}");
    }
    assert!(lines.iter().any(|line| line.starts_with("4 task(s): 4 succeeded")), "{lines:#?}");
}

#[test]
fn with_no_color_or_without_a_terminal_not_one_escape_code_is_written() {
    let test = Test::new().write("tasks.lua", PIPELINE).write("release", "").env("TERM", "xterm").env("NO_COLOR", "1");
    let (code, bytes) = run_on_terminal(&test, &["run", "-j", "3", "tasks.lua"]);
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(code, Some(0), "{raw}");
    assert!(!raw.contains('\x1b'), "NO_COLOR, yet an escape code:\n{raw:?}");
    assert!(raw.contains("g/slow | slow-said-this"), "{raw}");

    let dumb = Test::new().write("tasks.lua", PIPELINE).write("release", "").env("TERM", "dumb").env("NO_COLOR", "");
    let (_, bytes) = run_on_terminal(&dumb, &["run", "-j", "3", "tasks.lua"]);
    assert!(!bytes.contains(&0x1b), "TERM=dumb, yet an escape code:\n{:?}", String::from_utf8_lossy(&bytes));

    let piped = Test::new().write("tasks.lua", PIPELINE).write("release", "").env("TERM", "xterm").env("NO_COLOR", "");
    let run = piped.run(&["run", "-j", "3", "tasks.lua"]).expect_code(0);
    assert!(!run.stderr.contains('\x1b') && !run.stdout.contains('\x1b'), "{}{}", run.stdout, run.stderr);
}

#[test]
fn an_interrupted_run_leaves_no_status_line_behind() {
    let test = Test::new()
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { tasks = { { name = "long", command = "touch started; sleep 30" } } } }"#,
        )
        .env("TERM", "xterm")
        .env("NO_COLOR", "");
    let started = test.path().join("started");
    let (code, bytes) = run_on_terminal_with(&test, &["run", "tasks.lua"], None, |pid| {
        assert!(crate::support::wait_for_path(&started), "the task never started");
        // Long enough for the line to be drawn (ticks are 100 ms apart).
        std::thread::sleep(Duration::from_millis(400));
        crate::support::signal(pid, nix::sys::signal::Signal::SIGINT);
    });
    assert_eq!(code, Some(130), "{:?}", String::from_utf8_lossy(&bytes));
    let lines = screen(&bytes);
    assert!(String::from_utf8_lossy(&bytes).contains("running: g/long"), "{lines:#?}");
    assert!(lines.iter().all(|line| !line.contains("running:")), "{lines:#?}");
    assert!(lines.iter().any(|line| line == "interrupted: cancelling running tasks"), "{lines:#?}");
}

#[test]
fn a_second_interrupt_ends_the_run_even_while_a_full_stdout_pipe_blocks_it() {
    // `run -o json | less`, and less stopped reading: the JSON writer blocks on the pipe.
    let test = Test::new()
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { tasks = { { name = "flood", command = "touch started; yes flood | head -c 5000000; sleep 30" } } } }"#,
        )
        .env("TERM", "xterm")
        .env("NO_COLOR", "");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let started = test.path().join("started");
    let (code, _) =
        run_on_terminal_with(&test, &["run", "-o", "json", "tasks.lua"], Some(Stdio::from(writer)), |pid| {
            assert!(crate::support::wait_for_path(&started), "the task never started");
            std::thread::sleep(Duration::from_millis(500));
            crate::support::signal(pid, nix::sys::signal::Signal::SIGINT);
            std::thread::sleep(Duration::from_millis(200));
            crate::support::signal(pid, nix::sys::signal::Signal::SIGINT);
        });
    drop(reader);
    assert_eq!(code, Some(130));
}
