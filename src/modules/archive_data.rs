//! Archives and manifests as Lua values, shared by the `workspace` and `agent` modules: a
//! packed workspace goes from `workspace.pack` to `client:execute`, and the changes that come
//! back go from there to `workspace.apply`. Shared plumbing, not a module of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{UserData, UserDataFields};

use crate::workspace::beneath::Kind;
use crate::workspace::manifest::SETID_BITS;
use crate::workspace::{Entry, Filter, Manifest, RelPath};

/// `{ { path = …, kind = "a socket" }, … }`: what a scan found and a workspace does not carry.
fn skipped_list(lua: &mlua::Lua, skipped: &[(RelPath, Kind)]) -> mlua::Result<mlua::Table> {
    let list = lua.create_table()?;
    for (path, kind) in skipped {
        let item = lua.create_table()?;
        item.set("path", lua.create_string(path.as_bytes())?)?;
        item.set("kind", kind.name())?;
        list.raw_push(item)?;
    }
    Ok(list)
}

/// The run's scratch directory for temporary archives and commands' output. It belongs to
/// the VM's host, which removes it when the run ends (`Runtime` drops it), whatever Lua still
/// references; one a run killed outright left is removed by the next run that makes one (it
/// is a [`LockedDir`](crate::locked_dir::LockedDir), locked for its run's life).
pub struct Scratch(crate::locked_dir::LockedDir);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = crate::files::remove_dir_all_opening(self.0.path());
    }
}

/// The scratch directory, created on first use.
pub fn scratch_dir(lua: &mlua::Lua) -> mlua::Result<PathBuf> {
    if let Some(scratch) = lua.app_data_ref::<Scratch>() {
        return Ok(scratch.0.path().to_path_buf());
    }
    const NAMES: (&str, &str) = ("sloth-run-starting-", "sloth-run-");
    let parent = std::env::temp_dir();
    let dir = crate::locked_dir::LockedDir::create(&parent, NAMES.0, NAMES.1)
        .map_err(|e| mlua::Error::runtime(format!("cannot create a scratch directory: {e}")))?;
    let path = dir.path().to_path_buf();
    for dead in crate::locked_dir::remove_dead(&parent, NAMES, &path, |_| {}) {
        tracing::debug!(dir = %dead.display(), "removed the scratch directory of a run that died");
    }
    lua.set_app_data(Scratch(dir));
    Ok(path)
}

/// Where an archive's bytes are.
#[derive(Debug)]
pub enum Storage {
    /// A temporary file, removed when the last Lua reference goes away.
    Temp(tempfile::NamedTempFile),
    /// A file someone else owns (on an agent: inside the task's directory).
    Path(PathBuf),
    /// In memory (small changes from an agent); written to a temporary file only if Lua asks
    /// for its path.
    Memory(Arc<[u8]>),
}

/// A tar + gzip archive: a packed workspace, or a task's changes.
#[derive(Debug)]
pub struct ArchiveData {
    pub storage: Storage,
    /// For a packed workspace: what was shipped, the base for conflict detection on apply.
    pub base: Option<Arc<Manifest>>,
    /// For changes: paths the task deleted.
    pub deleted: Vec<RelPath>,
    /// For changes: files that went to the agent as read rather than as snapshotted (they
    /// changed meanwhile); the task's base for them.
    pub amended: Vec<(RelPath, Entry)>,
    /// For changes: what the task left that a workspace does not carry (sockets, devices).
    pub skipped: Vec<(RelPath, Kind)>,
    /// For changes: files the task deleted whose bytes it kept under a name the rules leave
    /// out (deleted, kept as): not carried as deletions.
    pub moved_out: Vec<(RelPath, RelPath)>,
    /// For changes on an agent: files the task deleted whose bytes it moved out of its tree
    /// (deleted, where, as `../…`): not carried as deletions.
    pub kept_outside: Vec<(RelPath, String)>,
    /// For changes: the tree as scanned after the task, with identities (a warm tree's state).
    pub after: Option<Arc<Manifest>>,
    /// For changes on an agent: what that scan saw of the tree, under a watch.
    pub watched: Option<crate::workspace::tree_watch::WatchedTree>,
    /// For changes: the workspace directory's own mode and time, when the task changed them.
    pub root: Option<crate::workspace::root_meta::RootMeta>,
    pub entries: u64,
    pub size: u64,
}

impl ArchiveData {
    /// An archive at `storage` with nothing else known about it yet.
    pub fn new(storage: Storage) -> Self {
        ArchiveData {
            storage,
            base: None,
            deleted: vec![],
            amended: vec![],
            skipped: vec![],
            moved_out: vec![],
            kept_outside: vec![],
            after: None,
            watched: None,
            root: None,
            entries: 0,
            size: 0,
        }
    }

    /// The archive's file; None while it is in memory (see [`ArchiveData::file_path`]).
    pub fn path(&self) -> Option<&Path> {
        match &self.storage {
            Storage::Temp(file) => Some(file.path()),
            Storage::Path(path) => Some(path),
            Storage::Memory(_) => None,
        }
    }

    /// The archive's file, writing an in-memory archive to a temporary file first.
    pub fn file_path(&mut self, lua: &mlua::Lua) -> mlua::Result<PathBuf> {
        if let Storage::Memory(bytes) = &self.storage {
            let scratch = scratch_dir(lua)?;
            let mut temp = tempfile::NamedTempFile::new_in(&scratch)
                .map_err(|e| mlua::Error::runtime(format!("cannot write an archive in {}: {e}", scratch.display())))?;
            std::io::Write::write_all(&mut temp, bytes)
                .map_err(|e| mlua::Error::runtime(format!("cannot write {}: {e}", temp.path().display())))?;
            self.storage = Storage::Temp(temp);
        }
        Ok(self.path().expect("an archive in a file").to_path_buf())
    }

    /// The archive's size in bytes, wherever it is.
    pub fn stored_size(&self) -> std::io::Result<u64> {
        match &self.storage {
            Storage::Memory(bytes) => Ok(bytes.len() as u64),
            Storage::Temp(file) => Ok(file.as_file().metadata()?.len()),
            Storage::Path(path) => Ok(std::fs::metadata(path)?.len()),
        }
    }

    /// A reader of the archive's bytes, wherever they are.
    pub fn reader(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        match &self.storage {
            Storage::Memory(bytes) => Ok(Box::new(std::io::Cursor::new(Arc::clone(bytes)))),
            Storage::Temp(file) => Ok(Box::new(std::io::BufReader::new(file.reopen()?))),
            Storage::Path(path) => Ok(Box::new(std::io::BufReader::new(std::fs::File::open(path)?))),
        }
    }
}

impl UserData for ArchiveData {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_function_get("path", |lua, this| {
            let path = this.borrow_mut::<ArchiveData>()?.file_path(lua)?;
            Ok(path.to_string_lossy().into_owned())
        });
        fields.add_field_method_get("size", |_, this| Ok(this.size));
        fields.add_field_method_get("entries", |_, this| Ok(this.entries));
        fields.add_field_method_get("deleted", |lua, this| {
            let list = lua.create_table()?;
            for path in &this.deleted {
                list.raw_push(lua.create_string(path.as_bytes())?)?;
            }
            Ok(list)
        });
        fields.add_field_method_get("files", |_, this| Ok(this.base.as_ref().map(|base| base.file_count())));
        fields.add_field_method_get("skipped", |lua, this| skipped_list(lua, &this.skipped));
        // `{ { path = …, kept_as = … }, … }`: see `kept_outside`.
        fields.add_field_method_get("kept_outside", |lua, this| {
            let list = lua.create_table()?;
            for (path, kept_as) in &this.kept_outside {
                let item = lua.create_table()?;
                item.set("path", lua.create_string(path.as_bytes())?)?;
                item.set("kept_as", kept_as.as_str())?;
                list.raw_push(item)?;
            }
            Ok(list)
        });
        // `{ { path = …, kept_as = … }, … }`: see `moved_out`.
        fields.add_field_method_get("moved_out", |lua, this| {
            let list = lua.create_table()?;
            for (path, kept_as) in &this.moved_out {
                let item = lua.create_table()?;
                item.set("path", lua.create_string(path.as_bytes())?)?;
                item.set("kept_as", lua.create_string(kept_as.as_bytes())?)?;
                list.raw_push(item)?;
            }
            Ok(list)
        });
    }
}

/// A workspace manifest (a snapshot) held by Lua, with the directory it describes and the
/// rules it was taken with (so the changes after a task are judged by the same rules, even if
/// the task edits `.slothignore`).
#[derive(Debug, Clone)]
pub struct ManifestData {
    pub manifest: Arc<Manifest>,
    pub root: PathBuf,
    pub rules: Option<Arc<Filter>>,
}

/// Which paths a workspace leaves out, fixed when it was read (`workspace.rules`).
#[derive(Debug, Clone)]
pub struct RulesData(pub Arc<Filter>);

impl UserData for RulesData {}

impl UserData for ManifestData {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("files", |_, this| Ok(this.manifest.file_count()));
        fields.add_field_method_get("size", |_, this| Ok(this.manifest.total_size()));
        fields.add_field_method_get("entries", |_, this| Ok(this.manifest.entries.len()));
        fields.add_field_method_get("root", |_, this| Ok(this.root.to_string_lossy().into_owned()));
        fields.add_field_method_get("skipped", |lua, this| skipped_list(lua, &this.manifest.skipped));
        // Files with setuid or setgid bits: they keep them elsewhere only where a pipeline
        // opts in.
        fields.add_field_method_get("setid", |lua, this| {
            let list = lua.create_table()?;
            for (path, entry) in &this.manifest.entries {
                if let Entry::File { mode, .. } = entry
                    && mode & SETID_BITS != 0
                {
                    list.raw_push(lua.create_string(path.as_bytes())?)?;
                }
            }
            Ok(list)
        });
    }
}

/// What an archive or a snapshot says the task started from: the manifest (for conflict
/// detection on apply) and, for a snapshot, the rules it was taken with.
pub type BaseData = (Option<Arc<Manifest>>, Option<Arc<Filter>>);

/// The [`BaseData`] of an archive or a snapshot.
pub fn base_manifest(value: &mlua::AnyUserData) -> mlua::Result<BaseData> {
    if let Ok(archive) = value.borrow::<ArchiveData>() {
        return Ok((archive.base.clone(), None));
    }
    let snapshot = value.borrow::<ManifestData>()?;
    Ok((Some(snapshot.manifest.clone()), snapshot.rules.clone()))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn an_archive_in_memory_reads_as_itself_and_gets_a_file_when_lua_asks_for_its_path() {
        let lua = mlua::Lua::new();
        let bytes: Arc<[u8]> = Arc::from(&b"gzip bytes"[..]);
        let archive = ArchiveData { size: bytes.len() as u64, ..ArchiveData::new(Storage::Memory(Arc::clone(&bytes))) };
        let mut read = Vec::new();
        archive.reader().expect("reader").read_to_end(&mut read).expect("read");
        assert_eq!(read, &bytes[..]);
        assert!(archive.path().is_none(), "no file yet");
        lua.globals().set("archive", lua.create_userdata(archive).expect("userdata")).expect("set");
        let path: String = lua.load("return archive.path").eval().expect("path");
        assert_eq!(std::fs::read(&path).expect("the file"), &bytes[..]);
        let again: String = lua.load("return archive.path").eval().expect("path");
        assert_eq!(again, path, "written once");
        drop(lua);
        assert!(!std::path::Path::new(&path).exists(), "removed with the VM's scratch directory and the archive");
    }
}
