//! Workspace paths: relative, normalized, made of bytes.
//!
//! A file name on Unix is any sequence of bytes without `/` or NUL, not necessarily UTF-8, and
//! every name the filesystem holds must round-trip exactly — so paths are bytes everywhere:
//! in manifests, archives, on the wire. Only their display is lossy (escaped).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A normalized relative path (`a/b/c`): no empty, `.` or `..` component, not absolute, no
/// NUL byte. The only way to make one is [`RelPath::parse`] (or joining a checked name), so
/// holding one means it cannot name anything outside its root lexically.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Vec<u8>);

/// A hash map keyed by workspace paths (or anything a walk meets per entry): foldhash, seeded
/// per map, instead of SipHash, which was a tenth of the CPU of a warm task over 20,000 files.
pub type PathMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set of workspace paths; see [`PathMap`].
pub type PathSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

impl RelPath {
    /// Normalizes `raw` (`./a//b/` → `a/b`), or says why it is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, &'static str> {
        // Most paths (every one a manifest or an index holds) are normalized already.
        if Self::is_normalized(raw) {
            return Ok(Self(raw.to_vec()));
        }
        Self::normalize(raw)
    }

    /// [`RelPath::parse`] the long way: every component looked at and joined again.
    fn normalize(raw: &[u8]) -> Result<Self, &'static str> {
        if raw.contains(&0) {
            return Err("contains a NUL byte");
        }
        if raw.first() == Some(&b'/') {
            return Err("is an absolute path");
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in raw.split(|byte| *byte == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err("contains '..'"),
                name => parts.push(name),
            }
        }
        if parts.is_empty() {
            return Err("is empty");
        }
        Ok(Self(parts.join(&b'/')))
    }

    /// Whether `raw` is a normalized relative path as it is: components that are not empty,
    /// `.` or `..`, and no NUL byte.
    fn is_normalized(raw: &[u8]) -> bool {
        !raw.is_empty()
            && !raw.contains(&0)
            && raw.split(|byte| *byte == b'/').all(|part| !matches!(part, b"" | b"." | b".."))
    }

    /// `self/name` for one checked component `name` (no `/`, not `.` or `..`).
    pub fn join_name(&self, name: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(self.0.len() + 1 + name.len());
        bytes.extend_from_slice(&self.0);
        bytes.push(b'/');
        bytes.extend_from_slice(name);
        Self(bytes)
    }

    /// A top-level path from one directory entry's name.
    pub fn from_name(name: &[u8]) -> Result<Self, &'static str> {
        if name.contains(&b'/') {
            return Err("contains '/'");
        }
        Self::parse(name)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// Any bytes as a `Path` (a link's target, which is not a workspace path).
    pub fn raw_path(bytes: &[u8]) -> &Path {
        Path::new(OsStr::from_bytes(bytes))
    }

    /// The components, first to last.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.0.split(|byte| *byte == b'/')
    }

    /// The last component.
    pub fn name(&self) -> &[u8] {
        self.components().next_back().unwrap_or(&self.0)
    }

    /// The parent path, None at the top.
    pub fn parent(&self) -> Option<Self> {
        let slash = self.0.iter().rposition(|byte| *byte == b'/')?;
        Some(Self(self.0[..slash].to_vec()))
    }

    /// Every proper ancestor, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = Self> + '_ {
        self.0.iter().enumerate().filter(|(_, byte)| **byte == b'/').map(|(at, _)| Self(self.0[..at].to_vec()))
    }

    /// Number of components.
    pub fn depth(&self) -> usize {
        self.0.iter().filter(|byte| **byte == b'/').count() + 1
    }

    /// Whether `self` is `other` or below it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        self.0.starts_with(&other.0) && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/')
    }
}

impl fmt::Display for RelPath {
    /// UTF-8 as is; any other byte as `\xNN`, so a message names the file unambiguously.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A byte string shown as [`RelPath`] shows paths (for entries that were refused).
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    let _ = write_escaped(&mut out, bytes);
    out
}

/// UTF-8 as is; any other byte as `\xNN`.
fn write_escaped(out: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        out.write_str(chunk.valid())?;
        for byte in chunk.invalid() {
            write!(out, "\\x{byte:02x}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]
        #[test]
        fn a_path_taken_as_it_is_is_what_normalizing_gives(raw in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b'.', b'/', 0u8, 0xff]), 0..12)) {
            proptest::prop_assert_eq!(RelPath::parse(&raw), RelPath::normalize(&raw));
        }
    }

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(RelPath::parse(b"./a//b/").map(|p| p.to_string()), Ok("a/b".to_owned()));
        assert_eq!(RelPath::parse(b"/etc/passwd"), Err("is an absolute path"));
        assert_eq!(RelPath::parse(b"a/../../x"), Err("contains '..'"));
        assert_eq!(RelPath::parse(b"."), Err("is empty"));
        assert_eq!(RelPath::parse(b"a\0b"), Err("contains a NUL byte"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept_and_shown_escaped() {
        let path = RelPath::parse(b"dir/new\xff.txt").expect("valid bytes");
        assert_eq!(path.as_bytes(), b"dir/new\xff.txt");
        assert_eq!(path.to_string(), "dir/new\\xff.txt");
        assert_eq!(path.name(), b"new\xff.txt");
        assert_eq!(path.parent().map(|p| p.to_string()), Some("dir".to_owned()));
    }

    #[test]
    fn ancestors_and_prefixes() {
        let path = RelPath::parse(b"a/b/c").expect("valid");
        let ancestors: Vec<String> = path.ancestors().map(|p| p.to_string()).collect();
        assert_eq!(ancestors, vec!["a", "a/b"]);
        assert!(path.starts_with(&RelPath::parse(b"a/b").expect("valid")));
        assert!(!path.starts_with(&RelPath::parse(b"a/bc").expect("valid")));
        assert_eq!(path.depth(), 3);
    }
}
