//! Manifests on the wire: `workspace::Manifest` to and from `FileEntry` lists, paths and link
//! targets as bytes.

use super::proto::FileEntry;
use super::proto::file_entry::Kind;
use crate::workspace::{Entry, Manifest, RelPath, Timestamp};

/// About how many bytes `entry` takes in a message (to keep messages near their size).
pub fn wire_size(entry: &FileEntry) -> usize {
    entry.path.len() + entry.target.len() + entry.hash.len() + entry.link.len() + 32
}

pub fn to_wire(path: &RelPath, entry: &Entry) -> FileEntry {
    let mtime = entry.mtime();
    let mut wire = FileEntry {
        path: path.as_bytes().to_vec(),
        mtime_secs: mtime.secs,
        mtime_nanos: mtime.nanos,
        ..Default::default()
    };
    match entry {
        Entry::Dir { mode, .. } => {
            wire.kind = Kind::Dir as i32;
            wire.mode = *mode;
        }
        Entry::File { mode, size, hash, link, .. } => {
            wire.kind = Kind::File as i32;
            wire.mode = *mode;
            wire.size = *size;
            wire.hash = hash.as_bytes().to_vec();
            wire.link = link.as_ref().map(|leader| leader.as_bytes().to_vec()).unwrap_or_default();
        }
        Entry::Fifo { mode, .. } => {
            wire.kind = Kind::Fifo as i32;
            wire.mode = *mode;
        }
        Entry::Symlink { target, .. } => {
            wire.kind = Kind::Symlink as i32;
            wire.target = target.clone();
        }
    }
    wire
}

/// One wire entry, checked: a normalized relative path, a known kind, a whole hash, a time in
/// range. Names the entry when it is malformed.
pub fn from_wire(wire: FileEntry) -> Result<(RelPath, Entry), String> {
    let shown = crate::workspace::rel_path::display_bytes(&wire.path);
    let path = RelPath::parse(&wire.path).map_err(|reason| format!("manifest entry '{shown}': {reason}"))?;
    if path.as_bytes() != wire.path.as_slice() {
        return Err(format!("manifest entry '{shown}': is not a normalized relative path"));
    }
    if wire.mtime_nanos >= 1_000_000_000 {
        return Err(format!("manifest entry '{shown}': bad modification time"));
    }
    let mtime = Timestamp { secs: wire.mtime_secs, nanos: wire.mtime_nanos };
    let entry = match Kind::try_from(wire.kind) {
        Ok(Kind::Dir) => Entry::Dir { mode: wire.mode, mtime },
        Ok(Kind::File) => {
            let hash: [u8; 32] =
                wire.hash.as_slice().try_into().map_err(|_| format!("manifest entry '{shown}': bad hash"))?;
            let link = if wire.link.is_empty() {
                None
            } else {
                let leader =
                    RelPath::parse(&wire.link).map_err(|reason| format!("manifest entry '{shown}': link: {reason}"))?;
                if leader >= path {
                    return Err(format!(
                        "manifest entry '{shown}': a hard link to '{leader}', which does not come before it"
                    ));
                }
                Some(leader)
            };
            Entry::File { mode: wire.mode, size: wire.size, hash: blake3::Hash::from_bytes(hash), mtime, link }
        }
        Ok(Kind::Fifo) => Entry::Fifo { mode: wire.mode, mtime },
        Ok(Kind::Symlink) => Entry::Symlink { target: wire.target, mtime },
        _ => return Err(format!("manifest entry '{shown}': unknown kind {}", wire.kind)),
    };
    Ok((path, entry))
}

/// Adds the entries of one manifest message to `manifest`; names the first entry that is
/// malformed or repeated.
pub fn extend_from_wire(manifest: &mut Manifest, entries: Vec<FileEntry>) -> Result<(), String> {
    for wire in entries {
        let (path, entry) = from_wire(wire)?;
        insert_checked(manifest, path, entry)?;
    }
    Ok(())
}

/// Adds one entry to `manifest`: refused when its path is there already, or when it is a hard
/// link to anything but a file before it.
pub fn insert_checked(manifest: &mut Manifest, path: RelPath, entry: Entry) -> Result<(), String> {
    if manifest.entries.contains_key(&path) {
        return Err(format!("manifest entry '{path}': duplicate"));
    }
    if let Entry::File { link: Some(leader), .. } = &entry
        && !matches!(manifest.entries.get(leader), Some(Entry::File { link: None, .. }))
    {
        return Err(format!("manifest entry '{path}': a hard link to '{leader}', which is not a file before it"));
    }
    manifest.entries.insert(path, entry);
    Ok(())
}

/// Replaces files of `manifest` with the amended entries (files that changed while they were
/// read on the master, as they were sent); an amendment must name a file of the manifest.
pub fn amend_from_wire(manifest: &mut Manifest, entries: Vec<FileEntry>) -> Result<(), String> {
    for wire in entries {
        let (path, entry) = from_wire(wire)?;
        match (manifest.entries.get_mut(&path), &entry) {
            (Some(slot @ Entry::File { .. }), Entry::File { .. }) => *slot = entry,
            _ => return Err(format!("amended entry '{path}': not a file of the manifest")),
        }
    }
    Ok(())
}

/// Paths from a ChangesDeleted message, checked.
pub fn paths_from_wire(paths: Vec<Vec<u8>>) -> Result<Vec<RelPath>, String> {
    paths
        .into_iter()
        .map(|raw| {
            RelPath::parse(&raw).map_err(|reason| {
                format!("deleted path '{}': {reason}", crate::workspace::rel_path::display_bytes(&raw))
            })
        })
        .collect()
}

/// Hashes from a NeedBlobs message.
pub fn hashes_from_wire(hashes: &[Vec<u8>]) -> Result<Vec<blake3::Hash>, String> {
    hashes
        .iter()
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(blake3::Hash::from_bytes)
                .map_err(|_| "bad hash in NeedBlobs".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(path: &[u8], kind: Kind, link: &[u8]) -> FileEntry {
        FileEntry {
            path: path.to_vec(),
            kind: kind as i32,
            mode: 0o644,
            hash: vec![7; 32],
            target: b"t".to_vec(),
            link: link.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_hard_link_must_name_a_file_before_it() {
        let cases: [(&str, Vec<FileEntry>, &str); 4] = [
            ("to a later path", vec![wire(b"a", Kind::File, b"b")], "does not come before it"),
            ("to itself", vec![wire(b"a", Kind::File, b"a")], "does not come before it"),
            (
                "to a symlink",
                vec![wire(b"a", Kind::Symlink, b""), wire(b"b", Kind::File, b"a")],
                "not a file before it",
            ),
            ("to a missing path", vec![wire(b"b", Kind::File, b"a")], "not a file before it"),
        ];
        for (label, entries, expected) in cases {
            let error = extend_from_wire(&mut Manifest::default(), entries).expect_err(label);
            assert!(error.contains(expected), "{label}: {error}");
        }
        let mut manifest = Manifest::default();
        extend_from_wire(&mut manifest, vec![wire(b"a", Kind::File, b""), wire(b"b", Kind::File, b"a")])
            .expect("valid");
        assert!(matches!(&manifest.entries[&RelPath::parse(b"b").expect("path")], Entry::File { link: Some(_), .. }));
    }
}
