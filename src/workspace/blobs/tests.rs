//! The blob cache: storing, building, verifying, trimming, adopting.

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;
use crate::workspace::Filter;
use crate::workspace::blob_pack::pack_blobs;
use crate::workspace::timestamp::Timestamp;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_task_made_content_is_adopted_only_as_scanned_and_only_if_new() {
    let tree = tempfile::tempdir().expect("tempdir");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let shared = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let cache = shared.for_principal("token:one");
    std::fs::write(tree.path().join("kept.txt"), "was there").expect("write");
    let before = Manifest::scan(tree.path(), &Filter::builtin()).expect("scan");
    std::fs::write(tree.path().join("made.txt"), "made by the task").expect("write");
    let after = Manifest::scan(tree.path(), &Filter::builtin()).expect("scan");
    // Grown since the scan (something still writes to it): not copied.
    std::fs::write(tree.path().join("made.txt"), "made by the task, and more").expect("grow");
    assert_eq!(cache.adopt(tree.path(), &before, &after), 0);
    std::fs::write(tree.path().join("made.txt"), "made by the task").expect("back");
    assert_eq!(cache.adopt(tree.path(), &before, &after), 1, "the new content only");
    let made = [blake3::hash(b"made by the task")];
    assert!(cache.missing_of(&made).is_empty());
    assert_eq!(cache.adopt(tree.path(), &before, &after), 0, "once");
    // Another master's view does not have it: it must send it, as if never made here.
    assert_eq!(shared.for_principal("token:two").missing_of(&made), made);
    assert_eq!(shared.adopt(tree.path(), &before, &after), 0, "nobody's view adopts nothing");
}

#[test]
fn a_workspace_round_trips_through_blobs_and_the_cache_dedups() {
    let source = two_contents_three_files();
    std::os::unix::fs::symlink("d/a.txt", source.path().join("link")).expect("symlink");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");

    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let missing = cache.missing(&manifest);
    assert_eq!(missing.len(), 2, "two distinct contents");
    let mut archive = Vec::new();
    assert_eq!(pack_blobs(source.path(), &manifest, &missing, &mut archive, source.path()).expect("pack").sent, 2);
    cache.store(&archive[..], &Limits::default()).expect("store");
    assert!(cache.missing(&manifest).is_empty());

    let dest = tempfile::tempdir().expect("tempdir");
    cache.materialize(&manifest, dest.path(), &Limits::default()).expect("materialize");
    assert_eq!(Manifest::scan(dest.path(), &Filter::builtin()).expect("scan"), manifest);
}

#[test]
fn a_blob_its_writer_never_published_is_removed_and_not_counted() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(cache_dir.path().join(".tmp-999999-3"), vec![0u8; 4096]).expect("a dead writer's file");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    assert_eq!(cache.lock().bytes, 0, "nothing published");
    assert!(!cache_dir.path().join(".tmp-999999-3").exists(), "removed");
    // And one being written now goes when dropped unpublished.
    let temp = cache.files.temp().expect("temp");
    drop(temp);
    assert_eq!(std::fs::read_dir(cache_dir.path()).expect("list").count(), 0);
}

#[test]
fn the_cache_stays_under_its_limit_but_keeps_what_is_pinned() {
    let source = tempfile::tempdir().expect("tempdir");
    for (name, content) in [("a", "aaaa"), ("b", "bbbb"), ("c", "cccc")] {
        std::fs::write(source.path().join(name), content).expect("write");
    }
    let all = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), 8).expect("cache");
    let mut archive = Vec::new();
    pack_blobs(source.path(), &all, &cache.missing(&all), &mut archive, source.path()).expect("pack");
    cache.store(&archive[..], &Limits::default()).expect("store");

    let mut only_c = all.clone();
    only_c.entries.retain(|path, _| path.as_bytes() == b"c");
    let pin = cache.pin(&only_c);
    assert!(cache.missing(&only_c).is_empty());
    assert_eq!(cache.trim().expect("trim"), 1, "12 bytes over a limit of 8: one blob goes");
    assert!(cache.missing(&only_c).is_empty(), "the pinned content stays");
    assert_eq!(cache.missing(&all).len(), 1);
    drop(pin);
}

#[test]
fn a_file_changed_after_the_manifest_is_sent_as_read_under_its_new_hash() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("log.txt"), "first").expect("write");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    std::fs::write(source.path().join("log.txt"), "other, longer").expect("rewrite");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let hashes = cache.missing(&manifest);
    let mut archive = Vec::new();
    let sent = pack_blobs(source.path(), &manifest, &hashes, &mut archive, source.path()).expect("pack");
    assert_eq!(sent.amended.len(), 1);
    let (path, entry) = &sent.amended[0];
    assert_eq!(path.as_bytes(), b"log.txt");
    assert!(matches!(entry, Entry::File { size: 13, hash, .. } if *hash == blake3::hash(b"other, longer")));
    cache.store(&archive[..], &Limits::default()).expect("stored under the hash of what was read");
}

#[test]
fn sizes_are_enforced_on_the_bytes_written_not_the_sizes_declared() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("big.bin"), vec![7u8; 4096]).expect("write");
    let mut manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut archive = Vec::new();
    pack_blobs(source.path(), &manifest, &cache.missing(&manifest), &mut archive, source.path()).expect("pack");
    cache.store(&archive[..], &Limits::default()).expect("store");
    for entry in manifest.entries.values_mut() {
        if let Entry::File { size, .. } = entry {
            *size = 0;
        }
    }
    let limits = Limits { max_bytes: 1024, max_entries: 10, ..Limits::default() };
    let dest = tempfile::tempdir().expect("tempdir");
    let error = cache.materialize(&manifest, dest.path(), &limits).expect_err("4096 bytes written");
    assert!(error.to_string().contains("size limit") && error.to_string().contains("big.bin"), "{error}");

    let dest = tempfile::tempdir().expect("tempdir");
    let built = cache.materialize(&manifest, dest.path(), &Limits::default()).expect("no limit");
    assert!(built.entries.values().all(|entry| matches!(entry, Entry::File { size: 4096, .. })), "{built:?}");
}

#[test]
fn a_corrupted_cache_entry_is_fetched_again_not_used() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("data.txt"), "precious").expect("write");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut archive = Vec::new();
    pack_blobs(source.path(), &manifest, &cache.missing(&manifest), &mut archive, source.path()).expect("pack");
    cache.store(&archive[..], &Limits::default()).expect("store");
    let blob = cache_dir.path().join(blake3::hash(b"precious").to_hex().as_str());
    std::fs::write(&blob, "rotten!!").expect("corrupt the cache");

    let dest = tempfile::tempdir().expect("tempdir");
    let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
    assert_eq!(build.missing(), vec![blake3::hash(b"precious")], "the bad content is asked for again");
    assert!(!blob.exists(), "the bad content left the cache");
    cache.store(&archive[..], &Limits::default()).expect("store again");
    build.retry(&cache).expect("retry");
    let built = build.finish().expect("finish");
    assert_eq!(built, manifest);
    assert_eq!(std::fs::read(dest.path().join("data.txt")).expect("read"), b"precious");
}

#[test]
fn a_blob_that_does_not_match_its_name_is_refused() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o600);
    let name = blake3::hash(b"real").to_hex();
    builder.append_data(&mut header, name.as_str(), &b"fake"[..]).expect("append");
    let archive = builder.into_inner().expect("tar").finish().expect("gzip");
    let error = cache.store(&archive[..], &Limits::default()).expect_err("poisoned blob");
    assert!(error.to_string().contains("does not match its hash"), "{error}");
    assert!(
        cache
            .missing(&Manifest {
                entries: [(
                    RelPath::parse(b"x").expect("valid"),
                    Entry::File {
                        mode: 0o644,
                        size: 4,
                        hash: blake3::hash(b"real"),
                        mtime: Timestamp::default(),
                        link: None
                    }
                )]
                .into(),
                ..Default::default()
            })
            .len()
            == 1
    );
}

#[test]
fn a_new_tree_is_written_straight_from_the_archive_and_the_cache_gets_it_from_the_same_archive_after() {
    let source = two_contents_three_files();
    std::fs::hard_link(source.path().join("c.sh"), source.path().join("h.sh")).expect("hard link");
    std::os::unix::fs::symlink("d/a.txt", source.path().join("link")).expect("symlink");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let missing = cache.missing(&manifest);
    let mut archive = Vec::new();
    pack_blobs(source.path(), &manifest, &missing, &mut archive, source.path()).expect("pack");

    let dest = tempfile::tempdir().expect("tempdir");
    let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
    assert_eq!(build.missing().len(), 2, "nothing cached: both contents lacking");
    assert_eq!(cache.fill(&mut build, &archive[..], &Limits::default()).expect("fill").contents, 2);
    assert!(build.missing().is_empty());
    let built = build.finish().expect("finish");
    assert_eq!(Manifest::scan(dest.path(), &Filter::builtin()).expect("scan"), manifest);
    assert_eq!(built.entries.len(), manifest.entries.len());
    use std::os::unix::fs::MetadataExt;
    let inode = |name: &str| std::fs::metadata(dest.path().join(name)).expect("stat").ino();
    assert_eq!(inode("c.sh"), inode("h.sh"), "a hard link again");
    // Nothing went through the cache (the content two files share was held in memory): it
    // gets them from `store`.
    let contents = [blake3::hash(b"same"), blake3::hash(b"other")];
    assert_eq!(cache.missing_of(&contents), contents);
    cache.store(&archive[..], &Limits::default()).expect("store");
    assert!(cache.missing(&manifest).is_empty(), "stored from the same archive");
}

#[test]
fn a_wanted_content_that_does_not_match_its_name_is_refused_and_not_left_in_the_tree() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("c.sh"), "other").expect("write");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let name = blake3::hash(b"other").to_hex().to_string();
    let archive = blob_archive(&[("0".repeat(64), b"unwanted".to_vec()), (name.clone(), b"evil!".to_vec())]);
    let (dest, refused) = fill_refused(&manifest, &archive);
    assert!(
        matches!(&refused, WorkspaceError::UnsafeEntry { entry, reason } if *entry == name && reason.contains("does not match")),
        "{refused:?}"
    );
    assert!(!dest.path().join("c.sh").exists(), "nothing of it left behind");
    let limits = Limits { max_entries: 1, ..Limits::default() };
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
    let refused = cache.fill(&mut build, &archive[..], &limits).expect_err("too many");
    assert!(matches!(refused, WorkspaceError::TooLarge { what: "entry count", .. }), "{refused:?}");
}

/// A tree of three files holding two contents (`d/a.txt` and `b.txt` the same, `c.sh`
/// another, executable).
fn two_contents_three_files() -> tempfile::TempDir {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(source.path().join("d")).expect("mkdir");
    std::fs::write(source.path().join("d/a.txt"), "same").expect("write");
    std::fs::write(source.path().join("b.txt"), "same").expect("write");
    std::fs::write(source.path().join("c.sh"), "other").expect("write");
    std::fs::set_permissions(source.path().join("c.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    source
}

/// A new tree of many files (written by the fill's threads): exactly the manifest — modes,
/// times, a large file, a shared content, a hard link, subdirectories — with every file's
/// identity recorded as a look at it finds it.
#[test]
fn a_large_new_tree_written_by_several_threads_is_exactly_the_manifest_with_every_identity() {
    let source = tempfile::tempdir().expect("tempdir");
    for d in 0..4 {
        std::fs::create_dir(source.path().join(format!("d{d}"))).expect("mkdir");
    }
    for i in 0..1200 {
        let path = source.path().join(format!("d{}/f{i}", i % 4));
        std::fs::write(&path, format!("content {i}")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode([0o644, 0o755, 0o600, 0o444][i % 4]))
            .expect("chmod");
    }
    std::fs::write(source.path().join("big"), vec![7u8; 200 * 1024]).expect("write");
    std::fs::write(source.path().join("same1"), "shared").expect("write");
    std::fs::write(source.path().join("same2"), "shared").expect("write");
    std::fs::hard_link(source.path().join("d1/f1"), source.path().join("linked")).expect("hard link");
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut archive = Vec::new();
    pack_blobs(source.path(), &manifest, &cache.missing(&manifest), &mut archive, source.path()).expect("pack");
    let dest = tempfile::tempdir().expect("tempdir");
    let mut build = cache.build(&manifest, dest.path(), &Limits::default()).expect("build");
    cache.fill(&mut build, &archive[..], &Limits::default()).expect("fill");
    assert!(build.missing().is_empty());
    let built = build.finish().expect("finish");
    assert_eq!(Manifest::scan(dest.path(), &Filter::builtin()).expect("scan"), manifest);
    assert_eq!(built, manifest);
    let root = crate::workspace::beneath::Root::open(dest.path()).expect("root");
    for i in 0..1200 {
        let path = RelPath::parse(format!("d{}/f{i}", i % 4).as_bytes()).expect("path");
        if i == 1 {
            continue; // linked since: looked at again
        }
        let now = root.lstat(&path).expect("lstat").expect("there").stamp;
        assert_eq!(built.stamps.get(&path), Some(&now), "{path}");
    }
}

/// Among many files, one whose content does not match its name fails the fill, naming the
/// blob, and is not left in the tree.
#[test]
fn a_wrong_content_among_many_fails_the_threads_fill_and_is_not_left() {
    let source = tempfile::tempdir().expect("tempdir");
    for i in 0..800 {
        std::fs::write(source.path().join(format!("f{i:04}")), format!("content {i}")).expect("write");
    }
    let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
    let poisoned = blake3::hash(b"content 700").to_hex().to_string();
    let blobs: Vec<(String, Vec<u8>)> = (0..800)
        .map(|i| {
            let content = if i == 700 { "CONTENT 700".to_owned() } else { format!("content {i}") };
            (blake3::hash(format!("content {i}").as_bytes()).to_hex().to_string(), content.into_bytes())
        })
        .collect();
    let (dest, refused) = fill_refused(&manifest, &blob_archive(&blobs));
    assert!(
        matches!(&refused, WorkspaceError::UnsafeEntry { entry, reason } if *entry == poisoned && reason.contains("does not match")),
        "{refused:?}"
    );
    assert!(!dest.path().join("f0700").exists(), "nothing of it left behind");
}

/// A blob archive of `blobs` (name, content) as a master sends them, whatever the names say.
fn blob_archive(blobs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut archive = GzEncoder::new(Vec::new(), Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut archive);
        for (name, content) in blobs {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, &content[..]).expect("append");
        }
        tar.finish().expect("finish");
    }
    archive.finish().expect("gzip")
}

/// A new tree of `manifest` in a fresh directory, filled from `archive`: the fill's error.
fn fill_refused(manifest: &Manifest, archive: &[u8]) -> (tempfile::TempDir, WorkspaceError) {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let dest = tempfile::tempdir().expect("tempdir");
    let mut build = cache.build(manifest, dest.path(), &Limits::default()).expect("build");
    let refused = cache.fill(&mut build, archive, &Limits::default()).expect_err("a wrong content");
    (dest, refused)
}
