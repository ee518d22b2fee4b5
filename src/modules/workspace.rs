//! `workspace`: pack a directory, unpack an archive safely, snapshot, compute a task's changes,
//! and apply changes atomically. The work runs on blocking threads: other tasks go on. A
//! failure raises an error value whose `kind` says what happened (a conflict, a full disk, a
//! crafted entry) and whose `path` names the file or entry (see [`super::error_value`]).

use std::path::PathBuf;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, Result as LuaResult, Table, Value};

use super::archive_data::{ArchiveData, ManifestData, RulesData, Storage, base_manifest, scratch_dir};
use super::error_value::{ErrorValue, async_raising};
use super::lua_args::LuaPath;
use super::task_context;
use crate::error_kind::ErrorKind;
use crate::workspace::spill::{Spill, Spilled};
use crate::workspace::{self as core, Filter, Limits, Manifest, WorkspaceError, root_meta, unreadable};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    table.set("pack", async_raising(lua, pack)?)?;
    table.set("unpack", async_raising(lua, unpack)?)?;
    table.set("snapshot", async_raising(lua, snapshot)?)?;
    table.set("changes", async_raising(lua, changes)?)?;
    table.set("rescan", async_raising(lua, rescan)?)?;
    table.set("apply", async_raising(lua, apply)?)?;
    table.set("rules", async_raising(lua, rules)?)?;
    table.set("recover", async_raising(lua, recover)?)?;
    Ok(table)
}

fn lua_error(function: &str, error: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("workspace.{function}: {error}"))
}

/// What a function answers: its value, or the error value it raises (see `error_value`).
type Answer<T> = LuaResult<Result<T, ErrorValue>>;

/// Runs blocking filesystem work off the async threads; a workspace error becomes the error
/// value `workspace.<function>` raises.
async fn blocking<T: Send + 'static>(
    function: &'static str,
    work: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Answer<T> {
    let done = tokio::task::spawn_blocking(work).await.map_err(|e| lua_error(function, e))?;
    Ok(done.map_err(|error| ErrorValue::of_workspace(call_name(function), &error)))
}

/// [`blocking`], or here at once when the work is `small` (a handful of entries): a trip to a
/// blocking thread costs more than such work, for every task.
async fn blocking_unless_small<T: Send + 'static>(
    function: &'static str,
    small: bool,
    work: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Answer<T> {
    if small {
        return Ok(work().map_err(|error| ErrorValue::of_workspace(call_name(function), &error)));
    }
    blocking(function, work).await
}

/// A base this small makes a scan of what a task changed small work (unless the task made
/// many files: then it is done here all the same, once).
const SMALL_BASE: usize = 64;

/// Builds the Lua value from what the work returned, or passes its error value on.
fn answer<T, U>(done: Result<T, ErrorValue>, make: impl FnOnce(T) -> LuaResult<U>) -> Answer<U> {
    match done {
        Ok(value) => make(value).map(Ok),
        Err(error) => Ok(Err(error)),
    }
}

/// `workspace.<function>`, as scripts call it.
fn call_name(function: &str) -> &'static str {
    match function {
        "pack" => "workspace.pack",
        "unpack" => "workspace.unpack",
        "snapshot" => "workspace.snapshot",
        "changes" => "workspace.changes",
        "rescan" => "workspace.rescan",
        "apply" => "workspace.apply",
        _ => "workspace.rules",
    }
}

/// A new temporary archive file in `scratch`, and a handle to write it.
fn temp_archive(
    scratch: &std::path::Path,
    prefix: &str,
) -> Result<(tempfile::NamedTempFile, std::fs::File), WorkspaceError> {
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tar.gz")
        .tempfile_in(scratch)
        .map_err(WorkspaceError::io(scratch))?;
    let file = temp.reopen().map_err(WorkspaceError::io(temp.path()))?;
    Ok((temp, file))
}

fn resolve_dir(lua: &Lua, dir: &LuaPath) -> PathBuf {
    task_context::current(lua).resolve(&dir.0)
}

/// Refuses options `function` does not read (a misspelt `exclude` would exclude nothing).
fn known(options: &Table, function: &str, names: &[&str]) -> LuaResult<()> {
    super::lua_args::known_keys(options, &format!("workspace.{function}"), "option", names)
}

/// `exclude` globs from an options table.
fn exclude_option(options: Option<&Table>, function: &str) -> LuaResult<Vec<String>> {
    let Some(options) = options else { return Ok(Vec::new()) };
    // (`changes` reads more options: it checks its own.)
    if function != "changes" {
        known(options, function, &["exclude"])?;
    }
    match options.get::<Value>("exclude")? {
        Value::Nil => Ok(Vec::new()),
        Value::Table(list) => list
            .sequence_values::<String>()
            .collect::<LuaResult<Vec<_>>>()
            .map_err(|_| lua_error(function, "invalid value for option 'exclude' - expected a list of glob strings")),
        other => Err(lua_error(
            function,
            format!("invalid value for option 'exclude' - expected a list of globs, got {}", other.type_name()),
        )),
    }
}

/// `workspace.pack(dir[, { exclude = {globs} }]) -> archive`
async fn pack(lua: Lua, (dir, options): (LuaPath, Option<Table>)) -> Answer<AnyUserData> {
    let root = resolve_dir(&lua, &dir);
    let exclude = exclude_option(options.as_ref(), "pack")?;
    let scratch = scratch_dir(&lua)?;
    let archive = blocking("pack", move || {
        let filter = Filter::new(&root, &exclude)?;
        let manifest = Manifest::scan(&root, &filter)?;
        let (temp, file) = temp_archive(&scratch, "workspace-")?;
        let entries = core::pack(&root, &manifest, None, std::io::BufWriter::new(file))?;
        let size = std::fs::metadata(temp.path()).map_err(WorkspaceError::io(temp.path()))?.len();
        Ok(ArchiveData { base: Some(Arc::new(manifest)), entries, size, ..ArchiveData::new(Storage::Temp(temp)) })
    })
    .await?;
    answer(archive, |archive| lua.create_userdata(archive))
}

/// `workspace.unpack(archive, dir) -> { entries, bytes }`: `dir` must not exist or be empty.
async fn unpack(lua: Lua, (archive, dir): (AnyUserData, LuaPath)) -> Answer<Table> {
    let source = match archive_reader(&archive, "unpack")? {
        Ok(source) => source,
        Err(error) => return Ok(Err(error)),
    };
    let dest = resolve_dir(&lua, &dir);
    let stats = blocking("unpack", move || {
        std::fs::create_dir_all(&dest).map_err(WorkspaceError::io(&dest))?;
        core::unpack(source, &dest, &Limits::default())
    })
    .await?;
    let stats = match stats {
        Ok(stats) => stats,
        Err(error) => return Ok(Err(error)),
    };
    let table = lua.create_table()?;
    table.set("entries", stats.entries)?;
    table.set("bytes", stats.bytes)?;
    Ok(Ok(table))
}

/// `workspace.recover(dir) -> { note, … }`: takes back what applies that died halfway left in
/// `dir` (their staging directories at its root, proven this user's), as the next snapshot
/// would; one line each of what was taken back.
async fn recover(lua: Lua, dir: LuaPath) -> Answer<Table> {
    let root = resolve_dir(&lua, &dir);
    let notes = blocking("recover", move || core::recover(&root)).await?;
    answer(notes, |notes| lua.create_sequence_from(notes))
}

/// `workspace.rules(dir[, { exclude }]) -> rules`: the built-in exclusions, `exclude` and
/// `dir/.slothignore` as they are now — fixed, whatever the task later does to the file.
async fn rules(lua: Lua, (dir, options): (LuaPath, Option<Table>)) -> Answer<AnyUserData> {
    let root = resolve_dir(&lua, &dir);
    let exclude = exclude_option(options.as_ref(), "rules")?;
    let filter = blocking("rules", move || Filter::new(&root, &exclude)).await?;
    answer(filter, |filter| lua.create_userdata(RulesData(Arc::new(filter))))
}

/// `workspace.snapshot(dir[, { exclude }]) -> manifest`, which keeps the rules it was read with.
async fn snapshot(lua: Lua, (dir, options): (LuaPath, Option<Table>)) -> Answer<AnyUserData> {
    let root = resolve_dir(&lua, &dir);
    let exclude = exclude_option(options.as_ref(), "snapshot")?;
    let scanned = root.clone();
    let snapshot = blocking("snapshot", move || {
        // Files the last snapshot saw and that have not changed since are not read again.
        let known = core::index::load(&scanned);
        let look = || -> Result<(Arc<Manifest>, Filter), WorkspaceError> {
            let filter = Filter::new(&scanned, &exclude)?;
            Ok((Arc::new(Manifest::scan_known(&scanned, &filter, known.as_deref())?), filter))
        };
        let first = look();
        // An apply that died halfway left its staging directory at the root (the scan lists
        // it among what it leaves out): that is taken back, and the workspace — the rules
        // file included — read again. Looking for one by listing the root first would cost a
        // second listing of it on every snapshot. A scan that fails may be failing on what
        // such an apply left half done (a rules file it was replacing by a link): then the
        // root is looked at for one all the same, and read again if one was taken back.
        let leftover = match &first {
            Ok((manifest, _)) => manifest.excluded.iter().any(core::is_apply_leftover),
            Err(_) => true,
        };
        if !leftover {
            let (manifest, filter) = first?;
            core::index::save_if_changed(&scanned, known.as_deref(), &manifest);
            return Ok((manifest, filter));
        }
        let notes = match (core::recover(&scanned), first) {
            // Nothing taken back (none was an apply's, or one that had begun nothing): the
            // first look stands.
            (Ok(notes), first) if notes.is_empty() => {
                let (manifest, filter) = first?;
                core::index::save_if_changed(&scanned, known.as_deref(), &manifest);
                return Ok((manifest, filter));
            }
            // The scan's own error says more than the recovery's.
            (Err(_), Err(error)) => return Err(error),
            (notes, _) => notes?,
        };
        for note in &notes {
            tracing::warn!(root = %scanned.display(), "{note}");
        }
        let (manifest, filter) = look()?;
        core::index::save_if_changed(&scanned, known.as_deref(), &manifest);
        Ok((manifest, filter))
    })
    .await?;
    answer(snapshot, |(manifest, filter)| {
        lua.create_userdata(ManifestData { manifest, root, rules: Some(Arc::new(filter)) })
    })
}

/// The most paths `rescan` names.
const RESCAN_NAMES: usize = 10;

/// `workspace.rescan(dir, base) -> { snapshot, count, paths }`: the tree at `dir` as it is now,
/// read as `changes` reads it (with the base's rules; a file whose identity the base proves
/// untouched is not read again), how many paths differ from the base and the first of them
/// (added or changed, then deleted). No stat cache is read or written and
/// no dead apply looked for: a tree of the agent's, not a workspace of the user's.
async fn rescan(lua: Lua, (dir, base): (LuaPath, AnyUserData)) -> Answer<Table> {
    let root = resolve_dir(&lua, &dir);
    let (base, rules) = {
        let base = base.borrow::<ManifestData>()?;
        (base.manifest.clone(), base.rules.clone())
    };
    let scanned = root.clone();
    let looked = blocking("rescan", move || {
        let filter = match rules {
            Some(rules) => rules,
            None => Arc::new(Filter::new(&scanned, &[])?),
        };
        let after = Manifest::scan_known(&scanned, &filter, Some(&base))?;
        let differences = core::diff(&base, &after);
        Ok((Arc::new(after), filter, differences))
    })
    .await?;
    answer(looked, |(manifest, filter, differences)| {
        let found = lua.create_table()?;
        found.set("count", differences.changed.len() + differences.deleted.len())?;
        let paths = lua.create_table()?;
        for path in differences.changed.iter().chain(&differences.deleted).take(RESCAN_NAMES) {
            paths.raw_push(lua.create_string(path.as_bytes())?)?;
        }
        found.set("paths", paths)?;
        found.set("snapshot", lua.create_userdata(ManifestData { manifest, root, rules: Some(filter) })?)?;
        Ok(found)
    })
}

/// `workspace.changes(dir, base_manifest[, { rules | exclude, output, spill }]) -> archive`
/// whose `deleted` lists removed paths. The rules default to the base's (those of its
/// snapshot). `output` names the file to write; without it the archive is kept in memory while
/// small, else written to a temporary file in `spill` (a directory, made if missing; default:
/// the run's scratch directory).
async fn changes(lua: Lua, (dir, base, options): (LuaPath, AnyUserData, Option<Table>)) -> Answer<AnyUserData> {
    if let Some(options) = &options {
        known(options, "changes", &["rules", "exclude", "output", "spill", "agent_tree", "pack"])?;
    }
    let root = resolve_dir(&lua, &dir);
    let (base, base_rules) = {
        let base = base.borrow::<ManifestData>()?;
        (base.manifest.clone(), base.rules.clone())
    };
    let exclude = exclude_option(options.as_ref(), "changes")?;
    let rules = match &options {
        Some(options) => match options.get::<Option<AnyUserData>>("rules")? {
            Some(rules) => Some(rules.borrow::<RulesData>()?.0.clone()),
            None => None,
        },
        None => None,
    };
    let path_option = |name: &str| -> LuaResult<Option<PathBuf>> {
        match &options {
            Some(options) => Ok(options.get::<Option<LuaPath>>(name)?.map(|path| resolve_dir(&lua, &path))),
            None => Ok(None),
        }
    };
    // An agent's tree: what lies beside it that the agent did not make is the task's doing.
    let agent_tree = match &options {
        Some(options) => options.get::<Option<bool>>("agent_tree")?.unwrap_or(false),
        None => false,
    };
    // Changes nobody will apply (`pack = false`): found, not packed — an empty archive.
    let pack = match &options {
        Some(options) => options.get::<Option<bool>>("pack")?.unwrap_or(true),
        None => true,
    };
    let output = path_option("output")?;
    let spill = match (&output, path_option("spill")?) {
        (Some(_), _) => None,
        (None, Some(dir)) => Some(dir),
        (None, None) => Some(scratch_dir(&lua)?),
    };
    let small = base.entries.len() <= SMALL_BASE;
    let archive = blocking_unless_small("changes", small, move || {
        // A full disk (the agent's, mostly) said plainly, not as the file being read then.
        let collect = || -> Result<ArchiveData, WorkspaceError> {
            let filter = match (rules, base_rules) {
                (Some(rules), _) => rules,
                (None, Some(rules)) if exclude.is_empty() => rules,
                _ => Arc::new(Filter::new(&root, &exclude)?),
            };
            // What the base proves untouched (a warm tree's kept files) is not read again. A
            // directory the task left unreadable (an agent that is not root) is opened for the
            // reading and closed again once the changes are packed (`_opened`).
            // An agent's tree is watched as it is scanned: the next task of the workspace plans
            // from what this scan saw while nothing changed since.
            let worth_watching = agent_tree && base.entries.len() >= core::tree_watch::WATCHED_FROM;
            let watch = if worth_watching { core::tree_watch::TreeWatch::new() } else { None };
            let scanned = match watch {
                Some(watch) => Manifest::scan_watched(&root, &filter, Some(&base), watch)
                    .map(|(after, watched)| (after, Some(watched))),
                None => Manifest::scan_known(&root, &filter, Some(&base)).map(|after| (after, None)),
            };
            let ((after, watched), _opened) = match scanned {
                Err(error) if unreadable::is_refused(&error) && !nix::unistd::geteuid().is_root() => {
                    let opened = unreadable::Opened::in_tree(&root);
                    if !opened.any() {
                        return Err(error);
                    }
                    let mut after = Manifest::scan_known(&root, &filter, Some(&base))?;
                    opened.as_left(&mut after);
                    ((after, None), Some(opened))
                }
                scanned => (scanned?, None),
            };
            let mut changes = if pack { core::diff(&base, &after) } else { core::Changes::default() };
            // A file whose bytes the task kept under an excluded name stays here.
            let moved_out = core::moved_out::keep_here(&root, &base, &after, &mut changes)?;
            // And one whose bytes it moved out of its tree, on an agent.
            let kept_outside =
                if agent_tree { core::moved_out::keep_outside(&root, &base, &mut changes) } else { Vec::new() };
            let (storage, entries) = match (output, spill) {
                (Some(path), _) => {
                    let file = std::fs::File::create(&path).map_err(WorkspaceError::io(&path))?;
                    let out = std::io::BufWriter::new(file);
                    let entries = core::pack_marking(&root, &after, Some(&changes.changed), out, Some(&base))?;
                    (Storage::Path(path), entries)
                }
                (None, spill) => {
                    let mut sink = Spill::in_dir(spill.expect("a spill directory without an output"));
                    let entries = core::pack_marking(&root, &after, Some(&changes.changed), &mut sink, Some(&base))?;
                    let dir = sink.spill_dir();
                    let storage = match sink.finish().map_err(WorkspaceError::io(&dir))? {
                        Spilled::Memory(bytes) => Storage::Memory(bytes.into()),
                        Spilled::File(file) => Storage::Temp(file),
                    };
                    (storage, entries)
                }
            };
            let mut archive = ArchiveData {
                deleted: changes.deleted,
                skipped: after.skipped.clone(),
                moved_out,
                kept_outside,
                entries,
                root: root_meta::changed(base.root, after.root),
                after: Some(Arc::new(after)),
                watched,
                ..ArchiveData::new(storage)
            };
            archive.size = archive.stored_size().map_err(WorkspaceError::io(&root))?;
            Ok(archive)
        };
        collect().map_err(|error| error.no_space_while("collecting the task's changes at"))
    })
    .await?;
    answer(archive, |archive| lua.create_userdata(archive))
}

/// `workspace.apply(dir, changes[, { base = packed_archive_or_snapshot, setuid = false }])
/// -> { written, deleted, kept, stripped, unlinked, not_given }`. Refuses, changing nothing, on
/// an unsafe archive or on a conflict with `base`. Files keep setuid and setgid bits only with
/// `setuid`; otherwise the bits are cleared and the files listed in `stripped`. `unlinked` lists
/// files replaced here whose other names (hard links the task never saw) keep the old file;
/// `not_given` setuid or setgid files the task gave an owner or group this process cannot give
/// (the bit was cleared).
async fn apply(lua: Lua, (dir, changes, options): (LuaPath, AnyUserData, Option<Table>)) -> Answer<Table> {
    if let Some(options) = &options {
        known(options, "apply", &["base", "setuid"])?;
    }
    let root = resolve_dir(&lua, &dir);
    let source = match archive_reader(&changes, "apply")? {
        Ok(source) => source,
        Err(error) => return Ok(Err(error)),
    };
    let (deleted, amended, root_change) = {
        let changes = changes.borrow::<ArchiveData>()?;
        (changes.deleted.clone(), changes.amended.clone(), changes.root)
    };
    let (base, rules) = match &options {
        Some(options) => match options.get::<Option<AnyUserData>>("base")? {
            Some(base) => base_manifest(&base)?,
            None => (None, None),
        },
        None => (None, None),
    };
    let setuid = match &options {
        Some(options) => options.get::<Option<bool>>("setuid")?.unwrap_or(false),
        None => false,
    };
    // Set if this call is dropped (the run interrupted, the task cancelled) while the apply
    // runs on its thread, which cannot be stopped otherwise: it then gives up and undoes.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut on_drop = SetOnDrop(Some(Arc::clone(&interrupted)));
    let report = blocking("apply", move || {
        // The task started from what was sent: files that changed while being read went as read.
        let base = base.map(|base| {
            if amended.is_empty() {
                return base;
            }
            let mut base = (*base).clone();
            base.entries.extend(amended);
            Arc::new(base)
        });
        let base_root = base.as_ref().and_then(|base| base.root);
        let base = base.as_deref().map(|manifest| core::Base { manifest, rules: rules.as_deref() });
        let limits = Limits::default().with_setid_files(setuid);
        // The root's own mode and time last, as the task left them (see `root_meta`); a mode
        // changed here too is a conflict found before anything is applied.
        root_meta::check(&root, base_root, root_change)?;
        let found = root_meta::RootMeta::of(&root);
        let report = core::apply_interruptible(&root, source, &deleted, base, &limits, &interrupted)?;
        root_meta::make(&root, base_root, root_change, found)?;
        Ok(report)
    })
    .await?;
    on_drop.0 = None;
    let report = match report {
        Ok(report) => report,
        Err(error) => return Ok(Err(error)),
    };
    let table = lua.create_table()?;
    table.set("written", report.written)?;
    table.set("deleted", report.deleted)?;
    let kept = lua.create_table()?;
    for path in &report.kept {
        kept.raw_push(lua.create_string(path.as_bytes())?)?;
    }
    table.set("kept", kept)?;
    for (name, paths) in
        [("stripped", &report.stripped), ("unlinked", &report.unlinked), ("not_given", &report.not_given)]
    {
        let list = lua.create_table()?;
        for path in paths {
            list.raw_push(lua.create_string(path.as_bytes())?)?;
        }
        table.set(name, list)?;
    }
    Ok(Ok(table))
}

/// Sets its flag when dropped, unless taken first.
struct SetOnDrop(Option<Arc<std::sync::atomic::AtomicBool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A reader of the archive held by `archive`, wherever its bytes are; an archive file that
/// cannot be opened is an error value naming it.
fn archive_reader(archive: &AnyUserData, function: &'static str) -> Answer<Box<dyn std::io::Read + Send>> {
    let archive = archive.borrow::<ArchiveData>()?;
    Ok(archive.reader().map_err(|error| {
        let place = archive.path().map_or("memory".to_owned(), |path| path.display().to_string());
        ErrorValue::new(ErrorKind::of_io(&error), format!("cannot read the archive ({place}): {error}"))
            .raised_by(call_name(function))
            .with("path", archive.path().map(|path| path.display().to_string()))
    }))
}
