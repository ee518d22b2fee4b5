//! A small builder for CLI tests: write files into a fresh directory, run the real binary
//! there, and look at what it did.

#![allow(dead_code)]

pub mod agent;
pub mod crafted;
pub mod dns;
pub mod http;
pub mod pki;
pub mod terminal;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for any single command a test runs.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sloth-runner"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory with files in it, where the binary runs.
pub struct Test {
    dir: tempfile::TempDir,
    /// The user's cache directory for the runs (the master's stat cache), apart from the test
    /// directory, which the runs must otherwise leave alone.
    cache: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("creating a temp dir"),
            cache: tempfile::tempdir().expect("creating a temp dir"),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` (relative to the test dir), creating parent directories.
    pub fn write(self, name: &str, contents: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating parent dirs");
        }
        std::fs::write(&path, contents).expect("writing a test file");
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Gives the test's directories (everything in them) to `uid`:`gid`, for runs as that
    /// user (`Command::uid`).
    pub fn hand_to(&self, uid: u32, gid: u32) {
        fn walk(path: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
            if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir()) {
                for entry in std::fs::read_dir(path).expect("list").flatten() {
                    walk(&entry.path(), uid, gid);
                }
            }
        }
        walk(self.dir.path(), uid, gid);
        walk(self.cache.path(), uid, gid);
    }

    /// The directory runs take as the user's cache (`XDG_CACHE_HOME`).
    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }

    /// Runs `sloth-runner args...` in the test dir.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }

    /// Runs `sloth-runner args...` in the test dir with `input` on its stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        Run::with_input(self.command(args), input)
    }

    /// Starts `sloth-runner args...` in the test dir without waiting: stdout discarded,
    /// stderr piped (read it with [`stderr_of`] once the child has exited).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut command = self.command(args);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        command.spawn().expect("starting sloth-runner")
    }

    /// Like [`Test::spawn`], stdout captured too.
    pub fn spawn_capturing(&self, args: &[&str]) -> std::process::Child {
        let mut command = self.command(args);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.spawn().expect("starting sloth-runner")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(&[], args)
    }

    /// [`Test::command`] run through `prefix` (say, [`private_loopback`]'s).
    pub fn command_in(&self, prefix: &[String], args: &[&str]) -> Command {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.cache.path());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }
}

/// What a command did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` to completion, killing it past [`COMMAND_TIMEOUT`].
    pub fn of(command: Command) -> Self {
        Self::with_input(command, "")
    }

    /// Like [`Run::of`], writing `input` to the command's stdin first.
    pub fn with_input(mut command: Command, input: &str) -> Self {
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting the command");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        }
        let pid = child.id();
        // The output is read on this thread; a watchdog kills the child if it overstays.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(COMMAND_TIMEOUT).is_err() {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
                return true;
            }
            false
        });
        let started = Instant::now();
        let Output { status, stdout, stderr } = child.wait_with_output().expect("collecting output");
        let _ = done_tx.send(());
        let killed = watchdog.join().unwrap_or(false);
        assert!(!killed, "command did not finish within {COMMAND_TIMEOUT:?} ({:?}): {command:?}", started.elapsed());
        Self {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing all output when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n--- stderr\n{}", self.stderr);
        self
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n--- stdout\n{}", self.stdout);
        self
    }

    pub fn stderr_lacks(self, needle: &str) -> Self {
        assert!(!self.stderr.contains(needle), "stderr has {needle:?}\n--- stderr\n{}", self.stderr);
        self
    }

    /// Index of the first stderr line that contains `needle`.
    pub fn stderr_line(&self, needle: &str) -> usize {
        self.stderr
            .lines()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no stderr line contains {needle:?}\n--- stderr\n{}", self.stderr))
    }
}

/// A copy of the repository's `examples/` in `dest/examples`: running an example writes beside
/// it (`.sloth/artifacts/…`), which must never pile up in the repository.
pub fn copy_examples(dest: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
        for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())).flatten() {
            let (source, target) = (entry.path(), to.join(entry.file_name()));
            if entry.file_name().to_string_lossy().starts_with(".sloth") {
                continue;
            }
            if source.is_dir() {
                copy(&source, &target);
            } else {
                std::fs::copy(&source, &target).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
            }
        }
    }
    copy(&repo_root().join("examples"), &dest.join("examples"));
}

/// Sends `signal` to `pid`, best effort: a process that is gone already is no error (and
/// prints nothing, as `kill(1)` would).
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Waits (bounded) until `path` holds a complete line and returns it, trimmed.
pub fn wait_for_line_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Everything an exited child spawned by [`Test::spawn`] wrote on stderr.
pub fn stderr_of(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    stderr
}

/// Waits (bounded) until `path` exists; whether it does.
pub fn wait_for_path(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    path.exists()
}

/// Whether process `pid` is gone (or a zombie: killed, waiting to be reaped).
pub fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
    }
}

/// Polls [`process_gone`] for up to ten seconds (signals and reaping are asynchronous).
pub fn wait_until_gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Waits (bounded) for a child to exit; its exit code.
pub fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within 30s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `count` small files under `root/<top>/` whose relative paths are each over 1,000
/// bytes long (deeply nested long names), in directories of 100: a workspace whose manifest
/// is large without needing many files. Returns the number of bytes of paths written.
pub fn long_path_tree(root: &Path, top: &str, count: usize) -> usize {
    let segment = "s".repeat(240);
    let mut path_bytes = 0;
    for dir in 0..count.div_ceil(100) {
        let dir_path = root.join(top).join(format!("{dir}-{segment}")).join(&segment).join(&segment).join(&segment);
        std::fs::create_dir_all(&dir_path).expect("mkdir");
        for i in 0..100.min(count - dir * 100) {
            let file = dir_path.join(format!("{i}-{segment}"));
            path_bytes += file.strip_prefix(root).map(|p| p.as_os_str().len()).unwrap_or(0);
            std::fs::write(file, "same content").expect("write");
        }
    }
    path_bytes
}

/// The command prefix that runs a program in a new network namespace with its loopback up
/// (`unshare --net` as root, `unshare -rn` otherwise): fixed ports there are nobody else's.
/// None where namespaces cannot be made.
pub fn private_loopback() -> Option<Vec<String>> {
    const UP_THEN_RUN: &str = "ip link set lo up && exec \"$@\"";
    for flags in ["--net", "-rn"] {
        let prefix: Vec<String> =
            ["unshare", flags, "sh", "-c", UP_THEN_RUN, "sh"].iter().map(|part| part.to_string()).collect();
        let works = Command::new(&prefix[0])
            .args(&prefix[1..])
            .arg("true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if works {
            return Some(prefix);
        }
    }
    eprintln!("no network namespace can be made here: fixed ports are shared with the machine");
    None
}
