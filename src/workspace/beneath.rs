//! The one place where workspace paths meet the filesystem: every operation resolves its path
//! beneath an open root directory one component at a time, never following a symlink (as
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` would), and then acts on the last component
//! with an `*at` call that does not follow it either. Lexical checks cannot see a chain of
//! links (`sub/l1 -> ..`, `escape -> sub/l1/..`); this can, because it never asks the kernel
//! to resolve a link at all. Whatever a manifest, an archive or a list of deletions says,
//! nothing is read, written or removed outside the root.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::WorkspaceError;
use super::rel_path::RelPath;
use super::timestamp::Timestamp;

/// What `lstat` says of one entry, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime: Timestamp,
    /// Identity: an entry replaced, rewritten or touched since it was seen has another one.
    pub stamp: Stamp,
    /// Names the entry has (hard links), anywhere on its filesystem.
    pub nlink: u64,
    /// Owner and group.
    pub uid: u32,
    pub gid: u32,
}

/// The kinds of entries a directory holds. A workspace carries all but sockets and devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    Device,
}

impl Kind {
    /// Whether a workspace carries this kind (sockets and devices are not: a socket belongs to
    /// the process listening on it, a device to the machine).
    pub fn carried(self) -> bool {
        !matches!(self, Kind::Socket | Kind::Device)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Dir => "a directory",
            Kind::File => "a file",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a named pipe",
            Kind::Socket => "a socket",
            Kind::Device => "a device file",
        }
    }
}

/// Device, inode, size, mtime and ctime: what changes when anything about an entry does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

impl Stat {
    /// From std's metadata (of a path seen by `symlink_metadata`).
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = meta.file_type();
        let kind = if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() {
            Kind::File
        } else if kind.is_symlink() {
            Kind::Symlink
        } else if kind.is_fifo() {
            Kind::Fifo
        } else if kind.is_socket() {
            Kind::Socket
        } else {
            Kind::Device
        };
        let stat = Self::from_parts(
            kind,
            meta.mode(),
            meta.len(),
            meta.dev(),
            meta.ino(),
            (meta.mtime(), meta.mtime_nsec()),
            (meta.ctime(), meta.ctime_nsec()),
        );
        Self { nlink: meta.nlink(), uid: meta.uid(), gid: meta.gid(), ..stat }
    }

    /// From what `fstatat` says.
    pub fn from_file_stat(stat: &FileStat) -> Self {
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let kind = match format {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFLNK => Kind::Symlink,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFSOCK => Kind::Socket,
            _ => Kind::Device,
        };
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        // `nlink_t` is 32 bits on some targets.
        #[allow(clippy::useless_conversion)]
        let nlink = u64::from(stat.st_nlink);
        let (uid, gid) = (stat.st_uid, stat.st_gid);
        let stat = Self::from_parts(
            kind,
            stat.st_mode,
            size,
            stat.st_dev,
            stat.st_ino,
            (stat.st_mtime, stat.st_mtime_nsec),
            (stat.st_ctime, stat.st_ctime_nsec),
        );
        Self { nlink, uid, gid, ..stat }
    }

    fn from_parts(kind: Kind, mode: u32, size: u64, dev: u64, ino: u64, mtime: (i64, i64), ctime: (i64, i64)) -> Self {
        let mtime = Timestamp::new(mtime.0, mtime.1);
        Self {
            kind,
            mode: mode & 0o7777,
            size,
            mtime,
            stamp: Stamp { dev, ino, size, mtime, ctime: Timestamp::new(ctime.0, ctime.1) },
            nlink: 1,
            uid: 0,
            gid: 0,
        }
    }
}

/// Why a path could not be resolved beneath the root.
enum Blocked {
    /// A component does not exist.
    Missing,
    /// A component is a symlink or not a directory: the path does not exist beneath the root
    /// as a place to read or write.
    Through { component: RelPath, link: bool },
    /// A component could not be opened for another reason (out of file descriptors, no
    /// permission): not an answer about the path, an error.
    Failed { component: RelPath, errno: Errno },
}

/// An open directory that every operation stays beneath.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// The last parent resolved: consecutive paths usually share it.
    last_parent: RefCell<Option<(RelPath, OwnedFd)>>,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root").field("path", &self.path).finish()
    }
}

fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

fn io(errno: Errno) -> std::io::Error {
    std::io::Error::from(errno)
}

mod access;

const DIR_FLAGS: OFlag = OFlag::O_PATH.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

impl Root {
    /// Opens `path` (which must be a directory; a symlink to one is followed here, once:
    /// the root itself is the caller's choice).
    pub fn open(path: &Path) -> Result<Self, WorkspaceError> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| WorkspaceError::Io { path: path.to_path_buf(), source: io(errno) })?;
        Ok(Self { fd, path: path.to_path_buf(), last_parent: RefCell::new(None) })
    }

    /// The same directory, for another thread (its own descriptor: the directory it is, not
    /// whatever its path names now).
    pub fn try_clone(&self) -> Result<Self, WorkspaceError> {
        let fd = self.fd.try_clone().map_err(|source| WorkspaceError::Io { path: self.path.clone(), source })?;
        Ok(Self { fd, path: self.path.clone(), last_parent: RefCell::new(None) })
    }

    /// Which directory this is: its device and inode.
    pub fn identity(&self) -> Result<(u64, u64), WorkspaceError> {
        let stat = nix::sys::stat::fstat(&self.fd)
            .map_err(|errno| WorkspaceError::Io { path: self.path.clone(), source: io(errno) })?;
        Ok((stat.st_dev, stat.st_ino))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full path of `path` on disk, for messages.
    pub fn display(&self, path: &RelPath) -> PathBuf {
        self.path.join(path.as_path())
    }

    fn err(&self, path: &RelPath) -> impl FnOnce(Errno) -> WorkspaceError + '_ {
        let full = self.display(path);
        move |errno| WorkspaceError::Io { path: full, source: io(errno) }
    }

    /// Runs `f` with a descriptor of the directory holding `path`'s last component, resolved
    /// without following links; missing directories are created (mode 0o755 less the umask, fixed later by
    /// the caller) when `create` is set.
    fn with_parent<T>(
        &self,
        path: &RelPath,
        create: bool,
        f: impl FnOnce(BorrowedFd<'_>) -> Result<T, WorkspaceError>,
    ) -> Result<Result<T, WorkspaceError>, Blocked> {
        let Some(parent) = path.parent() else { return Ok(f(self.fd.as_fd())) };
        let fd = {
            let cached = self.last_parent.borrow();
            match cached.as_ref() {
                Some((cached_path, fd)) if *cached_path == parent => return Ok(f(fd.as_fd())),
                // Beneath the directory last resolved (the next level of a deep tree, walked
                // in order): from there, not from the root again — a chain of directories
                // costs a step per level, not its depth per level.
                Some((cached_path, fd)) if parent.starts_with(cached_path) => {
                    self.resolve_dir_from(Some((cached_path, fd.as_fd())), &parent, create)?
                }
                _ => self.resolve_dir(&parent, create)?,
            }
        };
        let result = f(fd.as_fd());
        *self.last_parent.borrow_mut() = Some((parent, fd));
        Ok(result)
    }

    /// Opens directory `dir` beneath the root, component by component.
    fn resolve_dir(&self, dir: &RelPath, create: bool) -> Result<OwnedFd, Blocked> {
        self.resolve_dir_from(None, dir, create)
    }

    /// [`Root::resolve_dir`], starting from `from` — a directory resolved beneath the root
    /// already, at a path `dir` starts with — when given.
    fn resolve_dir_from(
        &self,
        from: Option<(&RelPath, BorrowedFd<'_>)>,
        dir: &RelPath,
        create: bool,
    ) -> Result<OwnedFd, Blocked> {
        let mut current: Option<OwnedFd> = None;
        let mut walked: Option<RelPath> = from.map(|(path, _)| path.clone());
        let start = from.map_or(self.fd.as_fd(), |(_, fd)| fd);
        let skip = from.map_or(0, |(path, _)| path.components().count());
        for name in dir.components().skip(skip) {
            let here = match &walked {
                None => RelPath::from_name(name).map_err(|_| Blocked::Missing)?,
                Some(walked) => walked.join_name(name),
            };
            let at = current.as_ref().map_or(start, |fd| fd.as_fd());
            let opened = match nix::fcntl::openat(at, os(name), DIR_FLAGS, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match nix::sys::stat::mkdirat(at, os(name), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(_) => return Err(Blocked::Missing),
                    }
                    nix::fcntl::openat(at, os(name), DIR_FLAGS, Mode::empty())
                }
                other => other,
            };
            let fd = match opened {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Err(Blocked::Missing),
                Err(errno) if !matches!(errno, Errno::ENOTDIR | Errno::ELOOP) => {
                    return Err(Blocked::Failed { component: here, errno });
                }
                Err(_) => {
                    let link = nix::sys::stat::fstatat(at, os(name), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .is_ok_and(|stat| Stat::from_file_stat(&stat).kind == Kind::Symlink);
                    return Err(Blocked::Through { component: here, link });
                }
            };
            // O_PATH | O_NOFOLLOW opens a symlink itself rather than failing: check.
            match nix::sys::stat::fstat(fd.as_fd()) {
                Ok(stat) if Stat::from_file_stat(&stat).kind == Kind::Dir => {}
                Ok(stat) => {
                    let link = Stat::from_file_stat(&stat).kind == Kind::Symlink;
                    return Err(Blocked::Through { component: here, link });
                }
                Err(_) => return Err(Blocked::Missing),
            }
            current = Some(fd);
            walked = Some(here);
        }
        current.ok_or(Blocked::Missing)
    }

    fn refused(path: &RelPath, blocked: Blocked) -> WorkspaceError {
        let reason = match blocked {
            Blocked::Missing => "its directory does not exist".to_owned(),
            Blocked::Through { component, link: true } => format!("writes through the symlink '{component}'"),
            Blocked::Through { component, link: false } => format!("its parent '{component}' is not a directory"),
            Blocked::Failed { component, errno } => {
                return WorkspaceError::Io { path: PathBuf::from(component.to_string()), source: errno.into() };
            }
        };
        WorkspaceError::UnsafeEntry { entry: path.to_string(), reason }
    }

    /// Runs `f` on the parent of `path`, refusing (naming `path`) when the parent is missing or
    /// reached through a link or a file.
    fn at_parent<T>(
        &self,
        path: &RelPath,
        create: bool,
        f: impl FnOnce(BorrowedFd<'_>) -> Result<T, WorkspaceError>,
    ) -> Result<T, WorkspaceError> {
        self.with_parent(path, create, f).map_err(|blocked| Self::refused(path, blocked))?
    }

    /// When the directory at `path` was made (its birth time), where the filesystem records
    /// it; None otherwise, or when `path` is not a directory here.
    pub fn born(&self, path: &RelPath) -> Option<Timestamp> {
        let fd = self.resolve_dir(path, false).ok()?;
        Timestamp::from_system(File::from(fd).metadata().ok()?.created().ok()?)
    }

    /// The entry at `path`, not following it; None when there is none beneath the root (also
    /// when a parent is missing, a file, or a symlink: the path then names nothing here).
    pub fn lstat(&self, path: &RelPath) -> Result<Option<Stat>, WorkspaceError> {
        let found = self.with_parent(path, false, |parent| {
            match nix::sys::stat::fstatat(parent, os(path.name()), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Ok(Some(Stat::from_file_stat(&stat))),
                Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
                Err(errno) => Err(self.err(path)(errno)),
            }
        });
        match found {
            Ok(result) => result,
            Err(blocked @ Blocked::Failed { .. }) => Err(Self::refused(path, blocked)),
            Err(_) => Ok(None),
        }
    }

    /// Checks that `path` could be written: its parents are real directories beneath the root
    /// (missing ones are created), none of them a link.
    pub fn check_parent(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.at_parent(path, true, |_| Ok(()))
    }

    /// Creates directory `path` (its parents must be real directories; missing ones are
    /// created when `parents` is set).
    pub fn mkdir(&self, path: &RelPath, mode: u32, parents: bool) -> Result<(), WorkspaceError> {
        self.at_parent(path, parents, |parent| {
            nix::sys::stat::mkdirat(parent, os(path.name()), Mode::from_bits_truncate(mode)).map_err(self.err(path))
        })
    }

    /// Creates the new regular file `path` for writing (never through a link, never over an
    /// existing entry).
    pub fn create_file(&self, path: &RelPath, mode: u32, parents: bool) -> Result<File, WorkspaceError> {
        self.at_parent(path, parents, |parent| {
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = nix::fcntl::openat(parent, os(path.name()), flags, Mode::from_bits_truncate(mode))
                .map_err(self.err(path))?;
            Ok(File::from(fd))
        })
    }

    /// Opens the regular file `path` for reading, never through a link.
    pub fn open_file(&self, path: &RelPath) -> Result<File, WorkspaceError> {
        self.at_parent(path, false, |parent| {
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
            let fd = nix::fcntl::openat(parent, os(path.name()), flags, Mode::empty()).map_err(self.err(path))?;
            Ok(File::from(fd))
        })
    }

    /// Creates the symlink `path` pointing at `target` (any bytes: a link is data).
    pub fn symlink(&self, path: &RelPath, target: &[u8], parents: bool) -> Result<(), WorkspaceError> {
        self.at_parent(path, parents, |parent| {
            nix::unistd::symlinkat(os(target), parent, os(path.name())).map_err(self.err(path))
        })
    }

    /// Creates the named pipe `path` (never opened here: opening a fifo waits for a peer).
    pub fn mkfifo(&self, path: &RelPath, mode: u32, parents: bool) -> Result<(), WorkspaceError> {
        self.at_parent(path, parents, |parent| {
            nix::unistd::mkfifoat(parent, os(path.name()), Mode::from_bits_truncate(mode)).map_err(self.err(path))
        })
    }

    /// Where the symlink `path` points.
    pub fn read_link(&self, path: &RelPath) -> Result<Vec<u8>, WorkspaceError> {
        self.at_parent(path, false, |parent| {
            let target = nix::fcntl::readlinkat(parent, os(path.name())).map_err(self.err(path))?;
            Ok(target.as_bytes().to_vec())
        })
    }

    /// Sets the permission bits of `path`, which must not be a symlink.
    pub fn chmod(&self, path: &RelPath, mode: u32) -> Result<(), WorkspaceError> {
        self.at_parent(path, false, |parent| {
            let stat = nix::sys::stat::fstatat(parent, os(path.name()), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(self.err(path))?;
            if Stat::from_file_stat(&stat).kind == Kind::Symlink {
                return Err(WorkspaceError::UnsafeEntry {
                    entry: path.to_string(),
                    reason: "is a symlink: its mode is not changed".to_owned(),
                });
            }
            nix::sys::stat::fchmodat(
                parent,
                os(path.name()),
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(self.err(path))
        })
    }

    /// Gives `path` (a link itself, not what it points at) owner `uid` and group `gid` (None:
    /// left as it is). False when the system does not let this process (not root, and not a
    /// member of the group): the entry is left as it was.
    pub fn chown(&self, path: &RelPath, uid: Option<u32>, gid: Option<u32>) -> Result<bool, WorkspaceError> {
        self.at_parent(path, false, |parent| {
            match nix::unistd::fchownat(
                parent,
                os(path.name()),
                uid.map(nix::unistd::Uid::from_raw),
                gid.map(nix::unistd::Gid::from_raw),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(()) => Ok(true),
                Err(Errno::EPERM) => Ok(false),
                Err(errno) => Err(self.err(path)(errno)),
            }
        })
    }

    /// The group a new entry at `path` gets from its directory: the directory's own when it
    /// is setgid (a shared directory), None when it is the creator's.
    pub fn group_from_parent(&self, path: &RelPath) -> Result<Option<u32>, WorkspaceError> {
        self.at_parent(path, false, |parent| {
            let stat = Stat::from_file_stat(&nix::sys::stat::fstat(parent).map_err(self.err(path))?);
            Ok((stat.mode & 0o2000 != 0).then_some(stat.gid))
        })
    }

    /// Sets the access and modification times of `path` (a link itself, not what it points at).
    pub fn set_mtime(&self, path: &RelPath, mtime: Timestamp) -> Result<(), WorkspaceError> {
        self.at_parent(path, false, |parent| {
            let time = TimeSpec::new(mtime.secs, i64::from(mtime.nanos));
            nix::sys::stat::utimensat(parent, os(path.name()), &time, &time, UtimensatFlags::NoFollowSymlink)
                .map_err(self.err(path))
        })
    }

    /// Removes the non-directory `path`.
    pub fn unlink(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.at_parent(path, false, |parent| {
            nix::unistd::unlinkat(parent, os(path.name()), nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(self.err(path))
        })
    }

    /// Removes the empty directory `path`; false when it is not empty.
    pub fn rmdir(&self, path: &RelPath) -> Result<bool, WorkspaceError> {
        self.at_parent(path, false, |parent| {
            match nix::unistd::unlinkat(parent, os(path.name()), nix::unistd::UnlinkatFlags::RemoveDir) {
                Ok(()) => Ok(true),
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => Ok(false),
                Err(errno) => Err(self.err(path)(errno)),
            }
        })
    }

    /// Moves `from` (beneath `source`) to `to` (beneath `self`), replacing what is there
    /// unless `no_replace`. The entry moved is never followed: a link moves as a link.
    pub fn rename_from(
        &self,
        source: &Root,
        from: &RelPath,
        to: &RelPath,
        no_replace: bool,
    ) -> Result<(), WorkspaceError> {
        let from_parent = source.resolve_parent_fd(from)?;
        self.at_parent(to, false, |parent| {
            let flags = if no_replace { RenameFlags::RENAME_NOREPLACE } else { RenameFlags::empty() };
            nix::fcntl::renameat2(from_parent.as_fd(), os(from.name()), parent, os(to.name()), flags)
                .map_err(self.err(to))
        })
    }

    /// Swaps `from` (beneath `source`) and `to` (beneath `self`) in one step: each takes the
    /// other's place; neither is followed.
    pub fn exchange_with(&self, source: &Root, from: &RelPath, to: &RelPath) -> Result<(), WorkspaceError> {
        let from_parent = source.resolve_parent_fd(from)?;
        self.at_parent(to, false, |parent| {
            nix::fcntl::renameat2(
                from_parent.as_fd(),
                os(from.name()),
                parent,
                os(to.name()),
                RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(self.err(to))
        })
    }

    /// Makes `to` (beneath `self`) another name of the entry `from` (beneath `source`),
    /// without following `from` if it is a link.
    pub fn hard_link_from(&self, source: &Root, from: &RelPath, to: &RelPath) -> Result<(), WorkspaceError> {
        let from_parent = source.resolve_parent_fd(from)?;
        self.at_parent(to, false, |parent| {
            nix::unistd::linkat(from_parent.as_fd(), os(from.name()), parent, os(to.name()), AtFlags::empty())
                .map_err(self.err(to))
        })
    }

    /// An owned descriptor of `path`'s parent (for calls that need two).
    fn resolve_parent_fd(&self, path: &RelPath) -> Result<OwnedFd, WorkspaceError> {
        match path.parent() {
            None => self.fd.try_clone().map_err(WorkspaceError::io(&self.path)),
            Some(parent) => self.resolve_dir(&parent, false).map_err(|blocked| Self::refused(path, blocked)),
        }
    }

    /// Forgets the cached parent (after a rename or removal changed what a path leads to).
    pub fn forget(&self) {
        *self.last_parent.borrow_mut() = None;
    }
}

/// Whether `error` is the disk (or a quota) running out.
pub fn is_no_space(error: &WorkspaceError) -> bool {
    match error {
        WorkspaceError::Io { source, .. } => crate::error_kind::is_no_space_io(source),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(raw: &str) -> RelPath {
        RelPath::parse(raw.as_bytes()).expect("valid path")
    }

    #[test]
    fn never_writes_through_a_chain_of_links() {
        let outer = tempfile::tempdir().expect("tempdir");
        let root_dir = outer.path().join("root");
        std::fs::create_dir_all(root_dir.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink("..", root_dir.join("sub/l1")).expect("symlink");
        std::os::unix::fs::symlink("sub/l1/..", root_dir.join("escape")).expect("symlink");
        let root = Root::open(&root_dir).expect("open");
        let error = root.create_file(&rel("escape/x"), 0o644, true).expect_err("through a chain");
        assert!(error.to_string().contains("writes through the symlink 'escape'"), "{error}");
        let error = root.create_file(&rel("sub/l1/x"), 0o644, true).expect_err("through a link");
        assert!(error.to_string().contains("'sub/l1'"), "{error}");
        assert!(!outer.path().join("x").exists());
        assert_eq!(root.lstat(&rel("escape/x")).expect("lstat"), None, "a path through a link names nothing");
        assert_eq!(root.lstat(&rel("escape")).expect("lstat").map(|s| s.kind), Some(Kind::Symlink));
    }

    #[test]
    fn creates_parents_and_names_non_utf8_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::open(dir.path()).expect("open");
        let path = RelPath::parse(b"a/b\xff/c").expect("valid");
        std::io::Write::write_all(&mut root.create_file(&path, 0o640, true).expect("create"), b"x").expect("write");
        let stat = root.lstat(&path).expect("lstat").expect("present");
        assert_eq!((stat.kind, stat.mode, stat.size), (Kind::File, 0o640, 1));
        let error = root.create_file(&path, 0o640, true).expect_err("exists");
        assert!(error.to_string().contains("b\u{fffd}") || error.to_string().contains("File exists"), "{error}");
    }
}
