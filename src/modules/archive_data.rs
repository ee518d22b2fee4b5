//! Archives and manifests as Lua values, shared by the `workspace` and `agent` modules: a
//! packed workspace goes from `workspace.pack` to `client:execute`, and the changes that come
//! back go from there to `workspace.apply`. Shared plumbing, not a module of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{UserData, UserDataFields};

use crate::workspace::Manifest;

/// Where an archive's bytes are.
#[derive(Debug)]
pub enum Storage {
    /// A temporary file, removed when the last Lua reference goes away.
    Temp(tempfile::NamedTempFile),
    /// A file someone else owns (on an agent: inside the task's directory).
    Path(PathBuf),
}

/// A tar + gzip archive: a packed workspace, or a task's changes.
#[derive(Debug)]
pub struct ArchiveData {
    pub storage: Storage,
    /// For a packed workspace: what was shipped, the base for conflict detection on apply.
    pub base: Option<Arc<Manifest>>,
    /// For changes: paths the task deleted.
    pub deleted: Vec<String>,
    pub entries: u64,
    pub size: u64,
}

impl ArchiveData {
    pub fn path(&self) -> &Path {
        match &self.storage {
            Storage::Temp(file) => file.path(),
            Storage::Path(path) => path,
        }
    }
}

impl UserData for ArchiveData {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("path", |_, this| Ok(this.path().to_string_lossy().into_owned()));
        fields.add_field_method_get("size", |_, this| Ok(this.size));
        fields.add_field_method_get("entries", |_, this| Ok(this.entries));
        fields.add_field_method_get("deleted", |_, this| Ok(this.deleted.clone()));
        fields.add_field_method_get("files", |_, this| Ok(this.base.as_ref().map(|base| base.file_count())));
    }
}

/// A workspace manifest (a snapshot) held by Lua.
#[derive(Debug, Clone)]
pub struct ManifestData(pub Arc<Manifest>);

impl UserData for ManifestData {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("files", |_, this| Ok(this.0.file_count()));
        fields.add_field_method_get("size", |_, this| Ok(this.0.total_size()));
        fields.add_field_method_get("entries", |_, this| Ok(this.0.entries.len()));
    }
}
