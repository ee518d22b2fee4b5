//! A new tree written from an archive as it streams, files the master found changed as it read
//! them announced on the way (`pack_blobs_announcing` → `fill_amended`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;

use super::*;
use crate::workspace::blob_pack::pack_blobs_announcing;
use crate::workspace::blob_stream::BlobFormat;
use crate::workspace::timestamp::Timestamp;

/// Announcements, each with the length of the archive when it was made.
type Announced = Vec<(usize, RelPath, Entry)>;

/// An archive as it went, and where in it each announcement was made.
#[derive(Default)]
struct Recorded {
    bytes: Vec<u8>,
    announced: Announced,
}

/// Reads a recorded archive back as an agent would receive it: each announcement is pushed
/// before any byte written after it is read.
struct Replay<'a> {
    recorded: &'a Recorded,
    at: usize,
    next: usize,
    amendments: &'a Amendments,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((offset, path, entry)) = self.recorded.announced.get(self.next) {
            if *offset > self.at {
                break;
            }
            self.amendments.push(path.clone(), entry.clone());
            self.next += 1;
        }
        let until = self.recorded.announced.get(self.next).map_or(self.recorded.bytes.len(), |(offset, ..)| *offset);
        // Small reads: the reader sees the stream in pieces, as it would come.
        let length = buf.len().min(until - self.at).min(777);
        buf[..length].copy_from_slice(&self.recorded.bytes[self.at..self.at + length]);
        self.at += length;
        Ok(length)
    }
}

/// Packs `hashes` of `manifest`'s files under `root` in `format`, recording the archive and
/// where in it each announcement was made.
fn pack_recorded(
    root: &std::path::Path,
    manifest: &Manifest,
    hashes: &[blake3::Hash],
    format: BlobFormat,
) -> (Recorded, crate::workspace::BlobPack) {
    let recording = std::cell::RefCell::new(Recorded::default());
    struct Out<'a>(&'a std::cell::RefCell<Recorded>);
    impl Write for Out<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let report = pack_blobs_announcing(root, manifest, hashes, (Out(&recording), format), root, |path, entry| {
        let mut recorded = recording.borrow_mut();
        let offset = recorded.bytes.len();
        recorded.announced.push((offset, path.clone(), entry.clone()));
        Ok(())
    })
    .expect("pack");
    (recording.into_inner(), report)
}

/// Contents no scan of this process has seen (a scan's contents are sent from memory, never
/// read again, so they are never found changed).
fn unique(label: usize) -> Vec<u8> {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    format!("{}-{run}-content {label}\n", std::process::id()).repeat(1 + label % 3).into_bytes()
}

/// One file of a generated case: the content the manifest claims (an index), the one on disk
/// when it is packed, and an earlier file it is a hard link of.
#[derive(Debug, Clone)]
struct Case {
    claimed: usize,
    actual: usize,
    link: Option<usize>,
}

/// Packs the files `cases` describe (the manifest claiming one content, the disk holding
/// another), fills a new tree from the archive as it streams, and checks that every file holds
/// what the master says the task got: its amended content where it was announced, the
/// claimed one otherwise.
fn round_trip(cases: &[Case], contents: &[Vec<u8>], format: BlobFormat) -> Result<(), TestCaseError> {
    let source = tempfile::tempdir().expect("tempdir");
    let name = |i: usize| RelPath::parse(format!("d/f{i:04}").as_bytes()).expect("path");
    std::fs::create_dir(source.path().join("d")).expect("dir");
    let mut manifest = Manifest::default();
    manifest
        .entries
        .insert(RelPath::parse(b"d").expect("path"), Entry::Dir { mode: 0o755, mtime: Timestamp::default() });
    // A hard link follows its first name: its claimed and actual contents are that file's.
    let resolved: Vec<Case> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| match case.link.filter(|&first| first < i && cases[first].link.is_none()) {
            Some(first) => Case { link: Some(first), ..cases[first].clone() },
            None => Case { link: None, ..case.clone() },
        })
        .collect();
    for (i, case) in resolved.iter().enumerate() {
        let path = source.path().join(name(i).as_path());
        match case.link {
            Some(first) => std::fs::hard_link(source.path().join(name(first).as_path()), &path).expect("link"),
            None => std::fs::write(&path, &contents[case.actual]).expect("write"),
        }
        let claimed = &contents[case.claimed];
        let entry = Entry::File {
            mode: 0o644,
            size: claimed.len() as u64,
            hash: blake3::hash(claimed),
            mtime: Timestamp::default(),
            link: case.link.map(name),
        };
        manifest.entries.insert(name(i), entry);
    }
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let missing = cache.missing(&manifest);
    let (recorded, report) = pack_recorded(source.path(), &manifest, &missing, format);
    let announced: BTreeMap<RelPath, Entry> =
        recorded.announced.iter().map(|(_, path, entry)| (path.clone(), entry.clone())).collect();
    prop_assert_eq!(&announced, &report.amended.iter().cloned().collect::<BTreeMap<_, _>>());

    let dest = tempfile::tempdir().expect("tempdir");
    let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
    let amendments = Amendments::default();
    let replay = Replay { recorded: &recorded, at: 0, next: 0, amendments: &amendments };
    cache.fill_amended(&mut build, replay, &Limits::default(), &amendments).expect("fill");
    prop_assert!(amendments.left().is_none(), "every announcement was taken");
    prop_assert!(build.missing().is_empty(), "lacking {:?}", build.missing());
    let built = build.finish().expect("finish");
    for (i, case) in resolved.iter().enumerate() {
        let path = name(i);
        let expected = match announced.get(&path) {
            Some(Entry::File { hash, .. }) => {
                prop_assert_eq!(*hash, blake3::hash(&contents[case.actual]), "{} announced as read", path);
                &contents[case.actual]
            }
            _ => &contents[case.claimed],
        };
        let got = std::fs::read(dest.path().join(path.as_path())).expect("built file");
        prop_assert_eq!(&got, expected, "{}", path);
        prop_assert!(
            matches!(built.entries.get(&path), Some(Entry::File { hash, .. }) if *hash == blake3::hash(expected)),
            "{} recorded as built",
            path
        );
    }
    Ok(())
}

fn cases(files: std::ops::Range<usize>, kinds: usize) -> impl Strategy<Value = Vec<Case>> {
    proptest::collection::vec(
        (0..kinds, proptest::bool::weighted(0.3), 0..kinds, proptest::option::weighted(0.15, 0..64usize)),
        files,
    )
    .prop_map(|files| {
        files
            .into_iter()
            .map(|(claimed, changed, other, link)| Case {
                claimed,
                actual: if changed { other } else { claimed },
                link,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Files changed after the manifest was taken — to a content no file had, to another
    /// file's content, sharing contents with unchanged files, through hard links — land with
    /// what the master says it sent, whatever the order of the archive and its announcements.
    #[test]
    fn a_tree_written_as_its_archive_streams_holds_what_the_master_says_it_sent(files in cases(1..40, 6), framed in any::<bool>()) {
        let contents: Vec<Vec<u8>> = (0..6).map(unique).collect();
        round_trip(&files, &contents, if framed { BlobFormat::Framed } else { BlobFormat::Tar })?;
    }
}

/// The same on the fill's threads (hundreds of files lacking their small contents).
#[test]
fn a_large_tree_written_on_several_threads_as_its_archive_streams_takes_its_announcements() {
    let contents: Vec<Vec<u8>> = (0..700).map(unique).collect();
    let files: Vec<Case> = (0..700)
        .map(|i| Case { claimed: i, actual: if i % 37 == 5 { (i * 7) % 700 } else { i }, link: None })
        .collect();
    for format in [BlobFormat::Framed, BlobFormat::Tar] {
        round_trip(&files, &contents, format).expect("round trip");
    }
}

/// Announcements the fill must refuse: for a file whose content was not asked for, for one
/// whose content already came, and one that came after every content.
#[test]
fn an_announcement_out_of_its_place_fails_the_fill_naming_the_file() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("a.txt"), "a").expect("write");
    std::fs::write(source.path().join("b.txt"), "b").expect("write");
    let file = |content: &[u8]| Entry::File {
        mode: 0o644,
        size: content.len() as u64,
        hash: blake3::hash(content),
        mtime: Timestamp::default(),
        link: None,
    };
    let path = |name: &str| RelPath::parse(name.as_bytes()).expect("path");
    let mut manifest = Manifest::default();
    manifest.entries.insert(path("a.txt"), file(b"a"));
    manifest.entries.insert(path("b.txt"), file(b"b"));
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut archive = Vec::new();
    // Only a's content is asked for: b's is in the archive but unasked.
    crate::workspace::blob_pack::pack_blobs(
        source.path(),
        &manifest,
        &[blake3::hash(b"a"), blake3::hash(b"b")],
        &mut archive,
        source.path(),
    )
    .expect("pack");
    let cases: [(&str, Announced, &str); 3] = [
        ("not asked for", vec![(0, path("c.txt"), file(b"c"))], "c.txt"),
        ("after its content came", vec![(archive.len(), path("a.txt"), file(b"z"))], "a.txt"),
        ("not a file", vec![(0, path("a.txt"), Entry::Dir { mode: 0o755, mtime: Timestamp::default() })], "a.txt"),
    ];
    for (label, announced, named) in cases {
        let dest = tempfile::tempdir().expect("tempdir");
        let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
        let recorded = Recorded { bytes: archive.clone(), announced };
        let amendments = Amendments::default();
        let mut replay = Replay { recorded: &recorded, at: 0, next: 0, amendments: &amendments };
        let outcome = cache.fill_amended(&mut build, &mut replay, &Limits::default(), &amendments);
        // Read to its end, as the agent does.
        std::io::copy(&mut replay, &mut std::io::sink()).expect("drained");
        let error = match outcome {
            Err(error) => error.to_string(),
            // Too late for the fill to see: left for its caller, which refuses it.
            Ok(_) => match amendments.left() {
                Some(left) => left.to_string(),
                None => panic!("{label}: accepted"),
            },
        };
        assert!(error.contains(named), "{label}: {error}");
    }
}

/// A hard link broken after the manifest was taken (`mv new a` over one of two names): the
/// name that still holds the old file is sent as a file of its own with what it holds, never
/// announced with the other's new content.
#[test]
fn a_hard_link_broken_since_the_manifest_keeps_what_it_holds() {
    let old = unique(1);
    let new = unique(2);
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("a"), &old).expect("write");
    std::fs::hard_link(source.path().join("a"), source.path().join("b")).expect("link");
    let path = |name: &str| RelPath::parse(name.as_bytes()).expect("path");
    let claimed = |link: Option<&str>| Entry::File {
        mode: 0o644,
        size: old.len() as u64,
        hash: blake3::hash(&old),
        mtime: Timestamp::default(),
        link: link.map(path),
    };
    let mut manifest = Manifest::default();
    manifest.entries.insert(path("a"), claimed(None));
    manifest.entries.insert(path("b"), claimed(Some("a")));
    // Since: `a` is another file; `b` still the old one.
    std::fs::write(source.path().join("new"), &new).expect("write");
    std::fs::rename(source.path().join("new"), source.path().join("a")).expect("mv");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    for format in [BlobFormat::Framed, BlobFormat::Tar] {
        let missing = cache.missing(&manifest);
        let (recorded, report) = pack_recorded(source.path(), &manifest, &missing, format);
        assert!(
            report.amended.iter().any(|(p, e)| *p == path("b")
                && matches!(e, Entry::File { link: None, hash, .. } if *hash == blake3::hash(&old))),
            "{:?}",
            report.amended
        );
        let dest = tempfile::tempdir().expect("tempdir");
        let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
        let amendments = Amendments::default();
        let mut replay = Replay { recorded: &recorded, at: 0, next: 0, amendments: &amendments };
        cache.fill_amended(&mut build, &mut replay, &Limits::default(), &amendments).expect("fill");
        std::io::copy(&mut replay, &mut std::io::sink()).expect("drained");
        assert!(amendments.left().is_none());
        build.finish().expect("finish");
        assert_eq!(std::fs::read(dest.path().join("a")).expect("a"), new);
        assert_eq!(std::fs::read(dest.path().join("b")).expect("b"), old, "b holds what it holds");
    }
}
