//! Differential tests: the seed's promise used as an oracle. The same pipeline, run once here
//! and once on a real agent, on two identical copies of a workspace, must leave the same tree
//! (paths as bytes, kinds, contents, modes, symlink targets, empty directories, the order of
//! file modification times — and the exact times of files the task did not touch or set into
//! the past) and print the same output.
//!
//! [`Differential`] holds the two copies (`local/` and `remote/`, made with `cp -a`) and an
//! agent; each [`Step`] writes a pipeline outside both workspaces whose group's `workdir` is one
//! copy, runs it without `agent` on `local/` and with `agent = "box"` on `remote/`, and then
//! lists every difference at once.
//!
//! To tell a harness problem from a sync problem, run with `SLOTH_DIFFERENTIAL_BOTH_LOCAL=1`:
//! the "remote" side then runs without `agent` too (on its own copy), and every test must pass.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::agent::Agent;
use crate::support::tree::{Node, Tree, byte_path, copy_tree};
use crate::support::{Run, binary};

mod exactness;

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// How the order of file modification times is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// `Tree::mtime_order` equal on both sides (ties broken by path). For commands that space
    /// their writes (`sleep 0.01`): file times here come from a coarse clock (a few ms), so
    /// files written within one tick tie, and the tie-break would then be an accident.
    Exact,
    /// No two files in opposite strict order (a tie on one side matches anything): for tools
    /// that write many files within a few ms (git, venv), where ties fall differently per run.
    NoInversions,
}

/// One side of a step, after it ran.
struct Outcome {
    workspace: PathBuf,
    code: Option<i32>,
    /// The command's stdout lines (`g/t | line` here, `box/t | line` remotely), prefix removed,
    /// the workspace's own path replaced by `$WORKSPACE`.
    stdout: Vec<String>,
    /// The command's stderr lines (`g/t ! line`, `box/t ! line`), likewise.
    stderr: Vec<String>,
    /// Everything sloth-runner wrote on its stderr.
    log: String,
    before: Tree,
    tree: Tree,
}

impl Outcome {
    fn mtime(&self, path: &str) -> Option<i128> {
        self.tree.mtimes.get(path.as_bytes()).copied()
    }
}

/// Which copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Remote,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Remote => "remote",
        }
    }
}

/// Two identical workspaces and an agent; see the module documentation.
struct Differential {
    root: tempfile::TempDir,
    agent: Agent,
    steps: Cell<usize>,
    /// `SLOTH_DIFFERENTIAL_BOTH_LOCAL` is set: the harness checking itself.
    both_local: bool,
}

/// The environment both the master and the agent run with, so tasks see the same one.
fn environment(home: &Path) -> Vec<(&'static str, String)> {
    vec![("HOME", home.display().to_string()), ("TZ", "UTC".to_owned()), ("LC_ALL", "C".to_owned())]
}

impl Differential {
    /// Builds the workspace with `setup` (in `local/`), copies it exactly to `remote/` and
    /// starts an agent.
    fn new(setup: impl Fn(&Path)) -> Self {
        let root = tempfile::tempdir().expect("creating the test's temp dir");
        let local = root.path().join("local");
        fs::create_dir(&local).expect("creating the local workspace");
        setup(&local);
        copy_tree(&local, &root.path().join("remote"));
        let home = root.path().join("home");
        fs::create_dir(&home).expect("creating HOME");
        fs::create_dir(root.path().join("pipelines")).expect("creating the pipelines dir");
        let env = environment(&home);
        let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let agent = Agent::start_with_env(&[], &env);
        let both_local = std::env::var_os("SLOTH_DIFFERENTIAL_BOTH_LOCAL").is_some();
        Self { root, agent, steps: Cell::new(0), both_local }
    }

    fn workspace(&self, side: Side) -> PathBuf {
        self.root.path().join(side.name())
    }

    fn local(&self) -> PathBuf {
        self.workspace(Side::Local)
    }

    fn remote(&self) -> PathBuf {
        self.workspace(Side::Remote)
    }

    /// Changes both workspaces the same way, as a user on the master would between runs.
    fn edit(&self, change: impl Fn(&Path)) {
        change(&self.local());
        change(&self.remote());
    }

    /// A step running `command` (a shell command) on both sides; `.check()` runs it.
    fn step<'a>(&'a self, command: &'a str) -> Step<'a> {
        Step {
            harness: self,
            command,
            order: Order::Exact,
            opaque: Vec::new(),
            untimed: Vec::new(),
            paths_in_contents: false,
            expect_local: Vec::new(),
            extra: Vec::new(),
            workspace: "",
            umask: None,
        }
    }

    /// Whether `side` runs on the agent.
    fn on_agent(&self, side: Side) -> bool {
        side == Side::Remote && !self.both_local
    }

    /// A pipeline running `command` in `workdir`, on the agent or here; `workspace` is the
    /// task's `workspace` table's fields.
    fn pipeline(&self, workdir: &Path, on_agent: bool, command: &str, workspace: &str) -> String {
        let agent = if on_agent { r#"agent = "box", "# } else { "" };
        format!(
            "TaskDefinitions = {{\n  g = {{\n    workdir = [==[{workdir}]==],\n    \
             agents = {{ box = {{ address = \"{address}\" }} }},\n    tasks = {{\n      \
             {{ name = \"t\", {agent}workspace = {{ {workspace} }}, command = [==[\n{command}\n]==] }},\n    \
             }},\n  }},\n}}\n",
            workdir = workdir.display(),
            address = self.agent.address,
        )
    }

    /// Runs `command` on one side (the master under `umask` when given): the tree before, the
    /// run, the tree after.
    fn run_side(&self, side: Side, command: &str, workspace_fields: &str, umask: Option<u32>) -> Outcome {
        self.run_in(&self.workspace(side), self.on_agent(side), side.name(), (command, workspace_fields, umask))
    }

    /// Runs `command` in `workspace`, on the agent or here; `name` tells the pipeline files apart.
    fn run_in(
        &self,
        workspace: &Path,
        on_agent: bool,
        name: &str,
        (command, workspace_fields, umask): (&str, &str, Option<u32>),
    ) -> Outcome {
        let workspace = workspace.to_path_buf();
        let before = Tree::read_all(&workspace);
        let pipeline = self.root.path().join("pipelines").join(format!("{name}-{}.lua", self.steps.get()));
        fs::write(&pipeline, self.pipeline(&workspace, on_agent, command, workspace_fields))
            .expect("writing the pipeline");
        let mut run = match umask {
            None => Command::new(binary()),
            Some(mask) => {
                let mut shell = Command::new("sh");
                shell.arg("-c").arg(format!("umask {mask:03o} && exec \"$0\" \"$@\"")).arg(binary());
                shell
            }
        };
        run.arg("run").arg(&pipeline).current_dir(self.root.path()).env_remove("RUST_LOG");
        for (name, value) in environment(&self.root.path().join("home")) {
            run.env(name, value);
        }
        let run = Run::of(run);
        let tree = Tree::read_all(&workspace);
        let (stdout, stderr) = task_output(&run.stderr, on_agent, &workspace);
        Outcome { workspace, code: run.code, stdout, stderr, log: run.stderr, before, tree }
    }
}

impl Drop for Differential {
    /// Read-only directories would keep the temp dir from being removed by a non-root user.
    fn drop(&mut self) {
        let _ = Command::new("chmod").arg("-R").arg("u+rwX").arg(self.root.path()).status();
    }
}

type LocalCheck<'a> = Box<dyn Fn(&Outcome) + 'a>;
type ExtraCheck<'a> = Box<dyn Fn(&Outcome, &Outcome) -> Vec<String> + 'a>;

/// One command run on both sides and compared.
#[must_use = "a step runs only with `.check()`"]
struct Step<'a> {
    harness: &'a Differential,
    command: &'a str,
    order: Order,
    opaque: Vec<Vec<u8>>,
    untimed: Vec<Vec<u8>>,
    paths_in_contents: bool,
    expect_local: Vec<LocalCheck<'a>>,
    extra: Vec<ExtraCheck<'a>>,
    workspace: &'a str,
    umask: Option<u32>,
}

/// What a checked step left, both sides.
struct Ran {
    local: Outcome,
    remote: Outcome,
}

impl<'a> Step<'a> {
    fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// `path`'s contents differ between any two runs by nature (git's index caches inode
    /// numbers): compare its kind and mode only.
    fn opaque(mut self, path: &str) -> Self {
        self.opaque.push(path.as_bytes().to_vec());
        self
    }

    /// `path` is written at a moment the tool picks by timing (git rewrites its index when it
    /// finds entries "racily clean", which depends on the clock): left out of the order of
    /// modification times (its own time is still checked exactly where the task set it).
    fn untimed(mut self, path: &str) -> Self {
        self.untimed.push(path.as_bytes().to_vec());
        self
    }

    /// Files whose local contents mention the local workspace's path (a venv's `pyvenv.cfg`)
    /// are compared by kind and mode only.
    fn paths_in_contents(mut self) -> Self {
        self.paths_in_contents = true;
        self
    }

    /// An assertion on the local run, made before the remote one: it checks the test itself
    /// (a failure here is a bug in the test, not a difference).
    fn expect_local(mut self, check: impl Fn(&Outcome) + 'a) -> Self {
        self.expect_local.push(Box::new(check));
        self
    }

    /// Fields of the task's `workspace` table (`setuid = true`).
    fn workspace(mut self, fields: &'a str) -> Self {
        self.workspace = fields;
        self
    }

    /// The master runs under this umask (both sides).
    fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// More differences to report, computed from both outcomes.
    fn extra(mut self, check: impl Fn(&Outcome, &Outcome) -> Vec<String> + 'a) -> Self {
        self.extra.push(Box::new(check));
        self
    }

    /// Runs the step locally, then remotely, and panics listing every difference.
    fn check(self) -> Ran {
        let harness = self.harness;
        let number = harness.steps.get() + 1;
        harness.steps.set(number);
        assert!(!self.command.contains("]==]"), "the command must not contain ]==] (it goes in a Lua long string)");
        // File times come from a coarse clock, a little behind this one: keep a margin.
        let started = now_nanos() - 1_000_000_000;

        let local = harness.run_side(Side::Local, self.command, self.workspace, self.umask);
        assert_eq!(
            local.code,
            Some(0),
            "step {number}: the LOCAL run failed — a bug in the test, not a sync difference\n{}",
            local.log
        );
        for check in &self.expect_local {
            check(&local);
        }
        let remote = harness.run_side(Side::Remote, self.command, self.workspace, self.umask);

        let mut problems = Vec::new();
        if remote.code != Some(0) {
            problems.push(format!(
                "the remote run exited with {:?} (the local one with 0):\n{}\n    --- agent log (tail)\n{}",
                remote.code,
                indent(&remote.log),
                indent(&tail(&harness.agent.log(), 20))
            ));
        }
        for (what, ours, theirs) in
            [("stdout", &local.stdout, &remote.stdout), ("stderr", &local.stderr, &remote.stderr)]
        {
            if ours != theirs {
                problems
                    .push(format!("the command's {what} lines differ:\n    local:  {ours:?}\n    remote: {theirs:?}"));
            }
        }
        let mut opaque = self.opaque.clone();
        if self.paths_in_contents {
            let needle = local.workspace.display().to_string().into_bytes();
            opaque.extend(local.tree.nodes.iter().filter_map(|(path, node)| match node {
                Node::File { contents, .. } if contains(contents, &needle) => Some(path.clone()),
                _ => None,
            }));
        }
        problems.extend(tree_differences(&local.tree, &remote.tree, &opaque));
        problems.extend(match self.order {
            Order::Exact => order_differences(&local.tree, &remote.tree, &self.untimed),
            Order::NoInversions => order_inversions(&local.tree, &remote.tree, &self.untimed),
        });
        problems.extend(exact_time_differences(&local, &remote, started));
        for check in &self.extra {
            problems.extend(check(&local, &remote));
        }
        assert!(
            problems.is_empty(),
            "step {number} ({}): the remote run left a different result than the local one — \
             {} difference(s):\n- {}\n(local = {}, remote = {})",
            self.command.trim().lines().next().unwrap_or(""),
            problems.len(),
            problems.join("\n- "),
            local.workspace.display(),
            remote.workspace.display(),
        );
        Ran { local, remote }
    }
}

/// Sets up a workspace with `setup`, runs `command` on both sides and compares everything.
fn differential(setup: impl Fn(&Path), command: &str) -> Differential {
    let harness = Differential::new(setup);
    harness.step(command).check();
    harness
}

/// The task's output lines on the master's stderr, by stream, prefix (`g/t` here, `box/t` from
/// the agent) removed and the workspace's path (here, or the agent's private copy) replaced by
/// `$WORKSPACE`.
fn task_output(stderr: &str, on_agent: bool, workspace: &Path) -> (Vec<String>, Vec<String>) {
    let prefix = if on_agent { "box/t" } else { "g/t" };
    let (out_prefix, err_prefix) = (format!("{prefix} | "), format!("{prefix} ! "));
    let local_path = workspace.display().to_string();
    let normalize = |line: &str| {
        // On the agent, the task's private copy; with `same_path`, this path.
        if on_agent { mask_agent_workspace(line) } else { line.to_owned() }.replace(&local_path, "$WORKSPACE")
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for line in stderr.lines() {
        if let Some(text) = line.strip_prefix(&out_prefix) {
            out.push(normalize(text));
        } else if let Some(text) = line.strip_prefix(&err_prefix) {
            err.push(normalize(text));
        } else if line == out_prefix.trim_end() {
            out.push(String::new());
        } else if line == err_prefix.trim_end() {
            err.push(String::new());
        }
    }
    (out, err)
}

/// Replaces `/…/sloth-agent-XXXX/task-YYYY/workspace` (the agent's private copy) by
/// `$WORKSPACE`.
fn mask_agent_workspace(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("/sloth-agent-") {
        // A fresh tree (`…/task-X/workspace`) or a kept one (`…/trees/tree-N`).
        let after = &rest[at..];
        let end = match (after.find("/workspace"), after.find("/trees/tree-")) {
            (Some(workspace), None) => workspace + "/workspace".len(),
            (_, Some(tree)) => {
                let digits = after[tree + "/trees/tree-".len()..].chars().take_while(char::is_ascii_digit).count();
                tree + "/trees/tree-".len() + digits
            }
            (None, None) => break,
        };
        let start = rest[..at].rfind(|c: char| c.is_whitespace() || "'\"(=:".contains(c)).map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        out.push_str("$WORKSPACE");
        rest = &rest[at + end..];
    }
    out.push_str(rest);
    out
}

/// Every difference of paths, kinds, contents, modes and link targets (local first).
fn tree_differences(local: &Tree, remote: &Tree, opaque: &[Vec<u8>]) -> Vec<String> {
    let blank = |path: &[u8], node: &Node| match node {
        Node::File { mode, .. } if opaque.iter().any(|o| o.as_slice() == path) => {
            Node::File { mode: *mode, contents: Vec::new() }
        }
        other => other.clone(),
    };
    let mut out = Vec::new();
    for (path, ours) in &local.nodes {
        match remote.nodes.get(path) {
            None => out.push(format!("only local: {} ({})", show(path), describe(ours))),
            Some(theirs) if blank(path, ours) != blank(path, theirs) => {
                out.push(format!("differs: {}: local {}, remote {}", show(path), describe(ours), describe(theirs)));
            }
            Some(_) => {}
        }
    }
    for (path, theirs) in &remote.nodes {
        if !local.nodes.contains_key(path) {
            out.push(format!("only remote: {} ({})", show(path), describe(theirs)));
        }
    }
    out.extend(crate::support::tree::link_differences(&local.links, &remote.links, "local", "remote"));
    if out.len() > MAX_TREE_DIFFERENCES {
        let more = out.len() - MAX_TREE_DIFFERENCES;
        out.truncate(MAX_TREE_DIFFERENCES);
        out.push(format!("… and {more} more tree differences"));
    }
    out
}

/// Beyond this many, tree differences are counted, not listed.
const MAX_TREE_DIFFERENCES: usize = 200;

/// Files present on both sides, oldest first, ties broken by path (as `Tree::mtime_order`,
/// but by bytes, so names that are not UTF-8 stay apart).
fn by_age<'t>(tree: &'t Tree, other: &Tree, untimed: &[Vec<u8>]) -> Vec<(&'t [u8], i128)> {
    let mut files: Vec<(&[u8], i128)> = tree
        .mtimes
        .iter()
        .filter(|(path, _)| other.mtimes.contains_key(*path) && !untimed.contains(path))
        .map(|(path, time)| (path.as_slice(), *time))
        .collect();
    files.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    files
}

/// `Order::Exact`: the same order of modification times (over the files both sides have).
fn order_differences(local: &Tree, remote: &Tree, untimed: &[Vec<u8>]) -> Vec<String> {
    let (ours, theirs) = (by_age(local, remote, untimed), by_age(remote, local, untimed));
    let Some(first) = ours.iter().zip(&theirs).position(|(a, b)| a.0 != b.0) else { return Vec::new() };
    let from = first.saturating_sub(2);
    let window = |files: &[(&[u8], i128)]| {
        files[from..files.len().min(from + 12)]
            .iter()
            .map(|(path, time)| format!("{} @ {}", show(path), show_time(*time)))
            .collect::<Vec<_>>()
            .join("\n        ")
    };
    vec![format!(
        "the order of modification times differs (oldest first; {} files; first difference at #{first}):\n    \
         local:\n        {}\n    remote:\n        {}",
        ours.len(),
        window(&ours),
        window(&theirs)
    )]
}

/// `Order::NoInversions`: no file strictly older than another on one side and strictly newer
/// on the other.
fn order_inversions(local: &Tree, remote: &Tree, untimed: &[Vec<u8>]) -> Vec<String> {
    let ours = by_age(local, remote, untimed);
    let mut out = Vec::new();
    // The newest remote time among files strictly older (locally) than the current group.
    let mut newest_before: Option<(&[u8], i128)> = None;
    let mut group_start = 0;
    while group_start < ours.len() {
        let time = ours[group_start].1;
        let group_end = ours[group_start..].iter().position(|f| f.1 != time).map_or(ours.len(), |n| group_start + n);
        let group = &ours[group_start..group_end];
        for (path, local_time) in group {
            let remote_time = remote.mtimes[*path];
            if let Some((older, older_remote)) = newest_before
                && remote_time < older_remote
                && out.len() < 10
            {
                out.push(format!(
                    "modification times inverted: locally {} ({}) is older than {} ({}), remotely it is newer ({} vs {})",
                    show(older),
                    show_time(local.mtimes[older]),
                    show(path),
                    show_time(*local_time),
                    show_time(older_remote),
                    show_time(remote_time)
                ));
            }
        }
        for (path, _) in group {
            let remote_time = remote.mtimes[*path];
            if newest_before.is_none_or(|(_, newest)| remote_time > newest) {
                newest_before = Some((*path, remote_time));
            }
        }
        group_start = group_end;
    }
    out
}

/// Exact times: a file the task left alone here keeps its time on the master; a file the task
/// gave a time in the past (`touch -d`, `mv`, `cp -p`) has exactly that time on the master.
fn exact_time_differences(local: &Outcome, remote: &Outcome, started: i128) -> Vec<String> {
    let (mut not_kept, mut not_carried) = (Vec::new(), Vec::new());
    for (path, &after) in &local.tree.mtimes {
        let Some(&remote_after) = remote.tree.mtimes.get(path) else { continue };
        if local.before.mtimes.get(path) == Some(&after) {
            if let Some(&remote_before) = remote.before.mtimes.get(path)
                && remote_before != remote_after
            {
                not_kept.push(format!(
                    "{}: was {}, now {}",
                    show(path),
                    show_time(remote_before),
                    show_time(remote_after)
                ));
            }
        } else if after < started && remote_after != after {
            not_carried.push(format!(
                "{}: {} here, {} on the master",
                show(path),
                show_time(after),
                show_time(remote_after)
            ));
        }
    }
    let mut out = Vec::new();
    if !not_kept.is_empty() {
        out.push(format!(
            "modification time not kept for {} file(s) the task left alone:{}",
            not_kept.len(),
            capped(&not_kept)
        ));
    }
    if !not_carried.is_empty() {
        out.push(format!(
            "modification time not carried for {} file(s) the task gave a time in the past (touch -d, mv, cp -p):{}",
            not_carried.len(),
            capped(&not_carried)
        ));
    }
    out
}

/// Up to 20 lines, indented, then how many more.
fn capped(lines: &[String]) -> String {
    let mut text: String = lines.iter().take(20).map(|line| format!("\n    {line}")).collect();
    if lines.len() > 20 {
        text.push_str(&format!("\n    … and {} more", lines.len() - 20));
    }
    text
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir { mode } => format!("dir {mode:o}"),
        Node::File { mode, contents } => {
            let preview = contents[..contents.len().min(40)].escape_ascii();
            format!("file {mode:o}, {} bytes \"{preview}\"", contents.len())
        }
        Node::Symlink { target } => format!("symlink -> {}", show(target)),
        Node::Special { kind, mode } => format!("special {kind:o} mode {mode:o}"),
    }
}

/// A path for messages: quoted, escapes visible, bytes that are not UTF-8 as `\xff`.
fn show(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("b\"{}\"", path.escape_ascii()),
    }
}

/// Nanoseconds since the epoch as `YYYY-MM-DD hh:mm:ss.nnnnnnnnn` (UTC).
fn show_time(nanos: i128) -> String {
    let (seconds, fraction) = (nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000));
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{fraction:09}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn now_nanos() -> i128 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    i128::try_from(since.as_nanos()).expect("a time in range")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Setup helpers
// ---------------------------------------------------------------------------------------------

/// Writes `contents` to `root/path` (path as bytes), creating parent directories.
fn put(root: &Path, path: &[u8], contents: &str) {
    let path = root.join(byte_path(path));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    }
    fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn link(root: &Path, path: &str, target: &str) {
    let path = root.join(path);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    }
    symlink(target, &path).unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
}

fn chmod(root: &Path, path: &str, mode: u32) {
    let path = root.join(path);
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Gives every regular file a distinct time in 2020, one second and a few ns apart, the
/// last path (by bytes) the oldest, so the order of times is not the order of names.
fn age(root: &Path) {
    let tree = Tree::read_all(root);
    let base = UNIX_EPOCH + Duration::from_secs(1_577_836_800); // 2020-01-01 00:00:00 UTC
    for (i, path) in (0u64..).zip(tree.mtimes.keys().rev()) {
        let time = base + Duration::from_secs(i) + Duration::from_nanos(i * 1_000_003 % 1_000_000_000);
        let file = root.join(byte_path(path));
        fs::File::open(&file)
            .and_then(|f| f.set_modified(time))
            .unwrap_or_else(|e| panic!("setting the time of {}: {e}", file.display()));
    }
}

/// Whether `probe` (a shell command, e.g. `command -v make`) succeeds; says so when a test is
/// skipped for lack of a tool.
fn available(probe: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("{probe} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("SKIPPED {test}: `{probe}` failed (a tool it needs is missing)");
    }
    found
}

/// Runs a command on the master (outside sloth-runner), for checks afterwards.
fn on_master(dir: &Path, program: &str, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    Run::of(command)
}

/// `outcome`'s node at `path`, for messages.
fn node<'t>(outcome: &'t Outcome, path: &str) -> Option<&'t Node> {
    outcome.tree.nodes.get(path.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------------

#[test]
fn a_task_that_only_reads_leaves_both_trees_as_they_were() {
    differential(
        |ws| {
            put(ws, b"a.txt", "alpha\n");
            put(ws, b"dir/b.txt", "beta\n");
            fs::create_dir(ws.join("empty")).expect("mkdir empty");
            age(ws);
        },
        "cat a.txt dir/b.txt\necho 'to stderr' >&2\npwd",
    );
}

const MAKEFILE: &str = "CC = cc\n\napp: main.o util.o\n\t$(CC) -o app main.o util.o\n\n\
                        %.o: %.c util.h\n\t$(CC) -c $< -o $@\n";

#[test]
fn make_builds_rebuilds_after_an_edit_on_the_master_and_then_has_nothing_to_do() {
    let test = "make_builds_rebuilds_after_an_edit_on_the_master_and_then_has_nothing_to_do";
    if !available("command -v make", test) || !available("command -v cc", test) {
        return;
    }
    let harness = Differential::new(|ws| {
        put(ws, b"Makefile", MAKEFILE);
        put(ws, b"util.h", "int util(void);\n");
        put(
            ws,
            b"main.c",
            "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%d\\n\", util()); return 0; }\n",
        );
        put(ws, b"util.c", "int util(void) { return 41; }\n");
        put(ws, b"README", "a small C project\n");
        age(ws);
    });
    harness
        .step("make && ./app")
        .expect_local(|local| {
            assert_eq!(
                local.stdout,
                ["cc -c main.c -o main.o", "cc -c util.c -o util.o", "cc -o app main.o util.o", "41"]
            );
        })
        .check();
    // The first remote build came back; now the user edits a source file on the master.
    harness.edit(|ws| fs::write(ws.join("util.c"), "int util(void) { return 42; }\n").expect("editing util.c"));
    harness
        .step("make && ./app")
        .expect_local(|local| assert_eq!(local.stdout, ["cc -c util.c -o util.o", "cc -o app main.o util.o", "42"]))
        .check();
    harness.step("make").expect_local(|local| assert_eq!(local.stdout, ["make: 'app' is up to date."])).check();
}

#[test]
fn a_python_virtualenv_made_remotely_works_on_the_master() {
    let test = "a_python_virtualenv_made_remotely_works_on_the_master";
    if !available("python3 -c 'import venv'", test) {
        return;
    }
    let harness = Differential::new(|ws| {
        put(ws, b"app.py", "print('hello')\n");
        age(ws);
    });
    harness
        .step("python3 -m venv --without-pip .venv\n.venv/bin/python -c 'print(1)'")
        .order(Order::NoInversions)
        .paths_in_contents()
        .expect_local(|local| {
            assert_eq!(local.stdout, ["1"]);
            assert!(matches!(node(local, ".venv/bin/python3"), Some(Node::Symlink { .. })), "python3 is a symlink");
        })
        .extra(|local, remote| {
            let mut out = Vec::new();
            let ours = node(local, ".venv/bin/python3");
            let theirs = node(remote, ".venv/bin/python3");
            if ours != theirs {
                out.push(format!(
                    "venv: .venv/bin/python3 should be the same symlink: local {:?}, remote {:?}",
                    ours.map(describe),
                    theirs.map(describe)
                ));
            }
            let python = remote.workspace.join(".venv/bin/python");
            if fs::canonicalize(&python).is_err() {
                out.push(format!("venv: {} does not resolve on the master", python.display()));
            } else {
                let run = on_master(&remote.workspace, &python.display().to_string(), &["-c", "print(1)"]);
                if run.code != Some(0) || run.stdout != "1\n" {
                    out.push(format!(
                        "venv: .venv/bin/python -c 'print(1)' on the master: exit {:?}, stdout {:?}, stderr {:?}",
                        run.code, run.stdout, run.stderr
                    ));
                }
            }
            out
        })
        .check();
}

const GIT_COMMITS: &str = r#"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Sloth GIT_AUTHOR_EMAIL=sloth@example.com GIT_COMMITTER_NAME=Sloth GIT_COMMITTER_EMAIL=sloth@example.com
export GIT_AUTHOR_DATE='2020-02-02T02:02:02Z' GIT_COMMITTER_DATE='2020-02-02T02:02:02Z'
git init -q -b main
git add -A
git commit -q -m 'first commit'
sleep 0.01
echo 'a second line' >> README.md
export GIT_AUTHOR_DATE='2020-02-03T03:03:03Z' GIT_COMMITTER_DATE='2020-02-03T03:03:03Z'
git commit -q -am 'second commit'
git log --oneline
git status --short
"#;

#[test]
fn git_init_and_two_commits_give_the_same_repository() {
    if !available("command -v git", "git_init_and_two_commits_give_the_same_repository") {
        return;
    }
    let harness = Differential::new(|ws| {
        put(ws, b"README.md", "# project\n");
        put(ws, b"src/lib.rs", "pub fn answer() -> u32 { 42 }\n");
        put(ws, b"src/bin/tool.rs", "fn main() {}\n");
        age(ws);
    });
    let git_log = |dir: &Path| {
        let mut command = Command::new("git");
        command
            .args(["log", "--oneline"])
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        Run::of(command)
    };
    harness
        .step(GIT_COMMITS)
        // The index caches inode numbers and ctimes: different for any two copies.
        .opaque(".git/index")
        .untimed(".git/index")
        .order(Order::NoInversions)
        .expect_local(|local| {
            assert_eq!(local.stdout.len(), 2, "two commits: {:?}", local.stdout);
            assert!(local.stdout[0].ends_with(" second commit") && local.stdout[1].ends_with(" first commit"));
        })
        .extra(|local, remote| {
            let mut out = Vec::new();
            let (ours, theirs) = (git_log(&local.workspace), git_log(&remote.workspace));
            if ours.code != Some(0) || ours.stdout != theirs.stdout {
                out.push(format!(
                    "git log --oneline on the master: local {:?} (exit {:?}), remote {:?} (exit {:?}: {})",
                    ours.stdout, ours.code, theirs.stdout, theirs.code, theirs.stderr
                ));
            }
            let mut status = Command::new("git");
            status.args(["status", "--porcelain"]).current_dir(&remote.workspace).env("GIT_CONFIG_GLOBAL", "/dev/null");
            let status = Run::of(status);
            if status.code != Some(0) || !status.stdout.is_empty() {
                out.push(format!(
                    "git status on the master's copy is not clean (exit {:?}): {:?} {}",
                    status.code, status.stdout, status.stderr
                ));
            }
            out
        })
        .check();
}

/// The ten files modified (in an order unrelated to their names, 10 ms apart), the ten deleted
/// and the directory renamed by [`thousands_of_small_files`].
const MANY_FILES_COMMAND: &str = r#"
for f in d17/s3/f05 d02/s0/f19 d29/s4/f00 d11/s1/f11 d05/s2/f07 d23/s0/f02 d08/s4/f13 d14/s2/f16 d20/s1/f09 d26/s3/f04; do
  echo "modified by the task" >> "tree/$f.txt"
  sleep 0.01
done
for f in d01/s0/f00 d03/s1/f01 d06/s2/f02 d10/s3/f03 d13/s4/f04 d16/s0/f05 d19/s1/f06 d22/s2/f07 d25/s3/f08 d28/s4/f09; do
  rm "tree/$f.txt"
done
mv tree/d12 tree/d12-renamed
mkdir tree/new
for i in 3 2 1; do echo "new $i" > "tree/new/n$i.txt"; sleep 0.01; done
find tree -type f | wc -l
"#;

#[test]
fn thousands_of_small_files_some_modified_some_deleted_a_directory_renamed() {
    let harness = Differential::new(|ws| {
        for d in 0..30 {
            for s in 0..5 {
                for f in 0..20 {
                    put(ws, format!("tree/d{d:02}/s{s}/f{f:02}.txt").as_bytes(), &format!("file {d} {s} {f}\n"));
                }
            }
        }
        age(ws);
    });
    harness
        .step(MANY_FILES_COMMAND)
        .expect_local(|local| {
            assert_eq!(local.stdout, ["2993"]);
            assert!(local.tree.nodes.contains_key(b"tree/d12-renamed/s0/f00.txt".as_slice()));
        })
        .check();
    // Again on the same trees, after edits here: the agent holds the tree (and the manifest)
    // the first task left, and takes every unchanged part of the manifest from it.
    harness.edit(|ws| {
        put(ws, b"tree/d03/s1/f05.txt", "edited on the master\n");
        fs::remove_file(ws.join("tree/d04/s2/f01.txt")).expect("remove on the master");
        put(ws, b"tree/d29/s4/added.txt", "added on the master\n");
    });
    harness
        .step("cat tree/d03/s1/f05.txt tree/d29/s4/added.txt\necho more >> tree/d05/s0/f00.txt\nfind tree -type f | wc -l")
        .expect_local(|local| assert_eq!(local.stdout, ["edited on the master", "added on the master", "2993"]))
        .check();
}

#[test]
fn a_file_becomes_a_directory_and_a_directory_becomes_a_file() {
    let harness = Differential::new(|ws| {
        put(ws, b"becomes-dir", "was a file\n");
        put(ws, b"becomes-file/one.txt", "one\n");
        put(ws, b"becomes-file/sub/two.txt", "two\n");
        put(ws, b"keep.txt", "kept\n");
        age(ws);
    });
    harness
        .step(
            "rm becomes-dir && mkdir becomes-dir && echo inside > becomes-dir/inner.txt\nsleep 0.01\n\
             rm -r becomes-file && echo 'now a file' > becomes-file\ncat becomes-dir/inner.txt becomes-file",
        )
        .expect_local(|local| {
            assert_eq!(local.stdout, ["inside", "now a file"]);
            assert!(matches!(node(local, "becomes-dir"), Some(Node::Dir { .. })));
        })
        .check();
}

#[test]
fn a_directory_moved_aside_and_replaced_by_a_symlink_to_it() {
    let harness = Differential::new(|ws| {
        put(ws, b"current/app.txt", "release one\n");
        put(ws, b"current/config/settings.ini", "[app]\n");
        fs::create_dir_all(ws.join("current/empty")).expect("mkdir current/empty");
        put(ws, b"deploy.sh", "echo deploy\n");
        age(ws);
    });
    harness
        .step("mkdir releases && mv current releases/v1 && ln -s releases/v1 current\ncat current/app.txt")
        .expect_local(|local| {
            assert_eq!(local.stdout, ["release one"]);
            assert_eq!(node(local, "current"), Some(&Node::Symlink { target: b"releases/v1".to_vec() }));
            assert!(local.tree.nodes.contains_key(b"releases/v1/config/settings.ini".as_slice()));
        })
        .extra(|_, remote| {
            ["releases/v1/app.txt", "releases/v1/config/settings.ini"]
                .into_iter()
                .filter(|file| !matches!(node(remote, file), Some(Node::File { .. })))
                .map(|file| {
                    format!(
                        "{file} is missing on the master after `mv current releases/v1 && ln -s releases/v1 current`"
                    )
                })
                .collect()
        })
        .check();
}

#[test]
fn symlinks_become_directories() {
    let harness = Differential::new(|ws| {
        put(ws, b"elsewhere.txt", "elsewhere\n");
        put(ws, b"data/d.txt", "d\n");
        link(ws, "link-to-file", "elsewhere.txt");
        link(ws, "link-to-dir", "data");
        age(ws);
    });
    harness
        .step(
            "rm link-to-file && mkdir link-to-file && echo under > link-to-file/under.txt\nsleep 0.01\n\
             rm link-to-dir && cp -a data link-to-dir\nls link-to-file link-to-dir",
        )
        .expect_local(|local| {
            assert_eq!(local.stdout, ["link-to-dir:", "d.txt", "", "link-to-file:", "under.txt"]);
            assert!(matches!(node(local, "link-to-dir"), Some(Node::Dir { .. })));
        })
        .check();
}

#[test]
fn files_and_directories_renamed_moved_and_swapped() {
    let harness = Differential::new(|ws| {
        put(ws, b"old-name.txt", "renamed\n");
        put(ws, b"moved-dir/a.txt", "a\n");
        put(ws, b"moved-dir/b/c.txt", "c\n");
        put(ws, b"into-sub.txt", "moved into sub\n");
        fs::create_dir(ws.join("sub")).expect("mkdir sub");
        put(ws, b"x.txt", "was x\n");
        put(ws, b"y.txt", "was y\n");
        age(ws);
    });
    harness
        .step(
            "mv old-name.txt new-name.txt\nmv moved-dir renamed-dir\nmv into-sub.txt sub/\n\
             mv x.txt tmp.txt && mv y.txt x.txt && mv tmp.txt y.txt\ncat x.txt y.txt",
        )
        .expect_local(|local| {
            assert_eq!(local.stdout, ["was y", "was x"]);
            assert!(local.tree.nodes.contains_key(b"renamed-dir/b/c.txt".as_slice()));
        })
        .check();
}

const ODD_NAMES_COMMAND: &str = r#"
printf 'made by the task\n' > "$(printf 'bad\377name')"
sleep 0.01
echo edited >> 'with space.txt'
sleep 0.01
echo edited >> "$(printf 'new\nline.txt')"
sleep 0.01
echo edited >> ./-leading-dash
sleep 0.01
echo edited >> "$(printf 'bad\377\376name')"
sleep 0.01
echo edited >> 'ünïcødé 日本.txt'
sleep 0.01
mv plain.txt "$(printf 'renamed-\377\376.txt')"
mkdir "$(printf 'new dir \377')"
echo inside > "$(printf 'new dir \377')/f.txt"
sleep 0.01
echo star > 'new*'
sleep 0.01
echo dash > ./--new-dash
rm 'star*'
ls | wc -l
"#;

#[test]
fn odd_names_spaces_newlines_dashes_stars_unicode_and_not_utf8() {
    let harness = Differential::new(|ws| {
        for name in [
            b"with space.txt".as_slice(),
            b"new\nline.txt",
            b"-leading-dash",
            b"star*",
            "ünïcødé 日本.txt".as_bytes(),
            b"bad\xff\xfename",
            b"dir \xff/inner.txt",
            b"plain.txt",
            b"tab\there",
        ] {
            put(ws, name, &format!("{}\n", String::from_utf8_lossy(name)));
        }
        age(ws);
    });
    harness
        .step(ODD_NAMES_COMMAND)
        .expect_local(|local| {
            assert_eq!(local.stdout, ["13"]);
            for name in [b"bad\xffname".as_slice(), b"renamed-\xff\xfe.txt", b"new dir \xff/f.txt", b"--new-dash"] {
                assert!(local.tree.nodes.contains_key(name), "the task made {}", show(name));
            }
        })
        .check();
}

const LINKS_COMMAND: &str = r#"
readlink abs-outside up data/parent dangling dirlink
ln -s data/other.txt new-rel
ln -s /usr/bin/env new-abs-outside
ln -s nowhere new-dangling
ln -s .. data/new-parent
ln -s data new-dirlink
ln -sfn data/other.txt to-be-retargeted
ln -sfn c a
rm b to-be-deleted dangling
echo through > dirlink/through.txt
ln -sfn other-dir dirlink
cat rel a dirlink/x.txt
"#;

#[test]
fn symlinks_of_every_kind_created_retargeted_and_deleted() {
    let harness = Differential::new(|ws| {
        put(ws, b"data/file.txt", "file\n");
        put(ws, b"data/other.txt", "other\n");
        put(ws, b"other-dir/x.txt", "x\n");
        put(ws, b"c", "end of the chain\n");
        link(ws, "rel", "data/file.txt");
        link(ws, "abs-outside", "/usr/bin/env");
        link(ws, "dangling", "does-not-exist");
        link(ws, "dirlink", "data");
        link(ws, "a", "b");
        link(ws, "b", "c");
        link(ws, "data/parent", "..");
        link(ws, "up", "..");
        link(ws, "to-be-retargeted", "data/file.txt");
        link(ws, "to-be-deleted", "data/other.txt");
        age(ws);
    });
    harness
        .step(LINKS_COMMAND)
        .expect_local(|local| {
            assert_eq!(
                local.stdout,
                ["/usr/bin/env", "..", "..", "does-not-exist", "data", "file", "end of the chain", "x"]
            );
            assert!(matches!(node(local, "data/through.txt"), Some(Node::File { .. })));
            assert_eq!(node(local, "dirlink"), Some(&Node::Symlink { target: b"other-dir".to_vec() }));
        })
        .check();
}

const MODES_COMMAND: &str = r#"
chmod 600 public.txt
chmod 644 secret.txt
chmod 755 run.sh
chmod 644 tool
chmod 755 private
chmod 700 open
chmod u+w ro && echo new > ro/c.txt && chmod 555 ro
chmod 644 ro/a.txt
sleep 0.01
echo x > new-0700 && chmod 700 new-0700
sleep 0.01
mkdir -m 700 new-private-dir
mkdir new-ro-dir && echo kept > new-ro-dir/f.txt && chmod 555 new-ro-dir
sleep 0.01
(umask 077 && echo secret > umask-made)
"#;

#[test]
fn chmod_only_changes_and_modes_of_files_and_directories() {
    let harness = Differential::new(|ws| {
        for name in ["public.txt", "secret.txt", "run.sh", "tool", "private/inside.txt", "open/inside.txt"] {
            put(ws, name.as_bytes(), "contents\n");
        }
        for name in ["ro/a.txt", "ro/b.txt", "sealed/s.txt"] {
            put(ws, name.as_bytes(), "read only\n");
        }
        age(ws);
        chmod(ws, "public.txt", 0o644);
        chmod(ws, "secret.txt", 0o600);
        chmod(ws, "run.sh", 0o644);
        chmod(ws, "tool", 0o755);
        chmod(ws, "private", 0o700);
        chmod(ws, "open", 0o755);
        chmod(ws, "ro/a.txt", 0o444);
        chmod(ws, "ro", 0o555);
        chmod(ws, "sealed/s.txt", 0o400);
        chmod(ws, "sealed", 0o555);
    });
    harness
        .step(MODES_COMMAND)
        .expect_local(|local| {
            let mode = |path: &str| match node(local, path) {
                Some(Node::File { mode, .. } | Node::Dir { mode }) => *mode,
                other => panic!("{path}: {other:?}"),
            };
            assert_eq!(
                [mode("public.txt"), mode("ro"), mode("ro/c.txt"), mode("new-private-dir"), mode("umask-made")],
                [0o600, 0o555, 0o644, 0o700, 0o600]
            );
            // chmod alone leaves the modification time.
            assert_eq!(local.mtime("public.txt"), local.before.mtimes.get(b"public.txt".as_slice()).copied());
        })
        .check();
}

const MTIMES_COMMAND: &str = r#"
touch -d '2001-02-03 04:05:06.123456789' touched.txt
sleep 0.01
echo new > fresh.txt
sleep 0.01
touch -d '1999-12-31 23:59:59.5' made-in-the-past.txt
cp -p src.txt copy-keeps-time.txt
mv moved.txt moved-to.txt
sleep 0.01
echo appended >> old.txt
"#;

/// 2001-02-03 04:05:06.123456789 UTC in nanoseconds.
const TOUCHED_AT: i128 = 981_173_106_123_456_789;

#[test]
fn modification_times_set_by_the_task_arrive_exactly_and_others_are_kept() {
    let harness = Differential::new(|ws| {
        for name in ["old.txt", "touched.txt", "src.txt", "moved.txt", "u1.txt", "u2.txt", "u3.txt", "sub/u4.txt"] {
            put(ws, name.as_bytes(), &format!("{name}\n"));
        }
        age(ws);
    });
    let ran = harness
        .step(MTIMES_COMMAND)
        .expect_local(|local| {
            assert_eq!(local.mtime("touched.txt"), Some(TOUCHED_AT));
            assert_eq!(local.mtime("made-in-the-past.txt"), Some(946_684_799_500_000_000));
            assert_eq!(local.mtime("copy-keeps-time.txt"), local.mtime("src.txt"));
            assert_eq!(local.mtime("u1.txt"), local.before.mtimes.get(b"u1.txt".as_slice()).copied());
        })
        .check();
    assert_eq!(ran.remote.mtime("touched.txt"), Some(TOUCHED_AT), "the exact time set by touch -d");
    assert_eq!(ran.remote.mtime("u1.txt"), ran.local.mtime("u1.txt"), "an untouched file's time");
}
