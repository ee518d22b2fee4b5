//! The archive of contents a master sends an agent (entries named by their hash), in one of
//! two forms, both gzip-compressed:
//!
//! - **tar**: one regular-file entry per content, named by its hash in hex — what agents of
//!   earlier versions take;
//! - **framed**: [`MAGIC`], then per content a tag byte (1), its hash (32 bytes), its size (8
//!   bytes, little-endian) and its bytes; a tag byte 0 ends it. A tar entry costs 512 bytes
//!   of header and pads its content to 512: over 20,000 files of 200 bytes that is five times
//!   the contents, all of it compressed by the master and decompressed by the agent.
//!
//! An agent says which it takes (NeedBlobs.blob_format); it reads either, telling them apart
//! by their first bytes.

use std::io::{BufRead, BufReader, Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::WorkspaceError;
use super::pack::GZIP_LEVEL;

/// The first bytes of a framed archive (once decompressed).
pub const MAGIC: &[u8; 8] = b"SLBLOB1\n";

const TAG_END: u8 = 0;
const TAG_BLOB: u8 = 1;

/// Which form an archive of contents takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlobFormat {
    /// tar + gzip (agents of earlier versions).
    #[default]
    Tar,
    /// Framed + gzip.
    Framed,
}

impl BlobFormat {
    /// The form a NeedBlobs message asks for; None for one this build does not know.
    pub fn from_wire(value: u32) -> Option<Self> {
        match value {
            0 => Some(BlobFormat::Tar),
            1 => Some(BlobFormat::Framed),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u32 {
        match self {
            BlobFormat::Tar => 0,
            BlobFormat::Framed => 1,
        }
    }
}

/// Writes an archive of contents in `format`.
pub(super) enum BlobWriter<W: Write> {
    Tar(tar::Builder<GzEncoder<W>>),
    Framed(GzEncoder<W>),
}

impl<W: Write> BlobWriter<W> {
    pub(super) fn new(out: W, format: BlobFormat) -> std::io::Result<Self> {
        let encoder = GzEncoder::new(out, Compression::new(GZIP_LEVEL));
        Ok(match format {
            BlobFormat::Tar => BlobWriter::Tar(tar::Builder::new(encoder)),
            BlobFormat::Framed => {
                let mut encoder = encoder;
                encoder.write_all(MAGIC)?;
                BlobWriter::Framed(encoder)
            }
        })
    }

    /// Appends the content `hash` of `size` bytes read from `content` (which must hold exactly
    /// that many).
    pub(super) fn append(&mut self, hash: &blake3::Hash, size: u64, content: impl Read) -> std::io::Result<()> {
        match self {
            BlobWriter::Tar(builder) => {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o600);
                header.set_mtime(0);
                header.set_size(size);
                builder.append_data(&mut header, hash.to_hex().as_str(), content)
            }
            BlobWriter::Framed(encoder) => {
                let mut frame = [0u8; 41];
                frame[0] = TAG_BLOB;
                frame[1..33].copy_from_slice(hash.as_bytes());
                frame[33..].copy_from_slice(&size.to_le_bytes());
                encoder.write_all(&frame)?;
                let copied = std::io::copy(&mut content.take(size), encoder)?;
                if copied != size {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("a content of {size} bytes held {copied}"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Ends the archive and its compression, flushing what holds it.
    pub(super) fn finish(self) -> std::io::Result<W> {
        let encoder = match self {
            BlobWriter::Tar(builder) => builder.into_inner()?,
            BlobWriter::Framed(mut encoder) => {
                encoder.write_all(&[TAG_END])?;
                encoder
            }
        };
        let mut out = encoder.finish()?;
        // Flushed here: a buffered writer dropped unflushed loses the error of its last bytes.
        out.flush()?;
        Ok(out)
    }
}

/// One content of an archive as it is read: its name (the hash in hex, as the archive gives
/// it), the hash it must have, the size the archive declares, and its bytes.
pub(super) struct Blob<'a> {
    pub(super) name: String,
    pub(super) expected: blake3::Hash,
    pub(super) size: u64,
    pub(super) content: &'a mut dyn Read,
}

/// Calls `each` for every content of the archive `reader` holds, in either form, until it
/// answers false; what `each` leaves unread of a content is read past. A malformed archive
/// fails naming what is wrong.
pub(super) fn for_each_blob(
    reader: impl Read,
    mut each: impl FnMut(Blob<'_>) -> Result<bool, WorkspaceError>,
) -> Result<(), WorkspaceError> {
    let mut decoder = BufReader::with_capacity(64 * 1024, GzDecoder::new(reader));
    let framed = decoder.fill_buf().map_err(corrupt)?.starts_with(MAGIC);
    if !framed {
        let mut archive = tar::Archive::new(super::tar_guard::MetadataBounded::new(decoder));
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let (name, expected) = tar_blob_name(&entry)?;
            let size = entry.header().size().map_err(corrupt)?;
            if !each(Blob { name, expected, size, content: &mut entry })? {
                break;
            }
        }
        return Ok(());
    }
    decoder.consume(MAGIC.len());
    loop {
        let mut tag = [0u8; 1];
        decoder.read_exact(&mut tag).map_err(|e| corrupt_at("the archive ends without its end", e))?;
        match tag[0] {
            TAG_END => return at_end(&mut decoder),
            TAG_BLOB => {}
            other => return Err(WorkspaceError::Corrupt(format!("unknown frame {other} in the archive"))),
        }
        let mut head = [0u8; 40];
        decoder.read_exact(&mut head).map_err(|e| corrupt_at("a frame is cut short", e))?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&head[..32]);
        let expected = blake3::Hash::from_bytes(hash);
        let mut size = [0u8; 8];
        size.copy_from_slice(&head[32..]);
        let size = u64::from_le_bytes(size);
        let mut content = (&mut decoder).take(size);
        let go_on = each(Blob { name: expected.to_hex().to_string(), expected, size, content: &mut content })?;
        if !go_on {
            return Ok(());
        }
        // What was not read of it (nothing, as the callers read) is read past.
        let rest = std::io::copy(&mut content, &mut std::io::sink()).map_err(corrupt)?;
        if content.limit() > 0 {
            return Err(WorkspaceError::Corrupt(format!(
                "{}: the archive ends within it ({rest} of its bytes read past)",
                expected.to_hex()
            )));
        }
    }
}

/// Nothing follows a framed archive's end, and its compression ends whole there (its check
/// read and verified).
fn at_end(decoder: &mut impl Read) -> Result<(), WorkspaceError> {
    let mut more = [0u8; 1];
    match decoder.read(&mut more) {
        Ok(0) => Ok(()),
        Ok(_) => Err(WorkspaceError::Corrupt("bytes after the archive's end".to_owned())),
        Err(error) => Err(corrupt_at("the archive's compression does not end whole", error)),
    }
}

fn corrupt(error: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Corrupt(error.to_string())
}

fn corrupt_at(what: &str, error: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Corrupt(format!("{what}: {error}"))
}

/// The name and hash of a tar archive's content: a regular file named by its hash in hex.
fn tar_blob_name(entry: &tar::Entry<'_, impl Read>) -> Result<(String, blake3::Hash), WorkspaceError> {
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let refuse = |reason: &str| WorkspaceError::UnsafeEntry { entry: name.clone(), reason: reason.to_owned() };
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(refuse("a blob must be a regular file"));
    }
    let expected = blake3::Hash::from_hex(&name).map_err(|_| refuse("a blob must be named by its hash"))?;
    Ok((name, expected))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// An archive of `contents` in `format`.
    fn archive(contents: &[Vec<u8>], format: BlobFormat) -> Vec<u8> {
        let mut writer = BlobWriter::new(Vec::new(), format).expect("writer");
        for content in contents {
            writer.append(&blake3::hash(content), content.len() as u64, &content[..]).expect("append");
        }
        writer.finish().expect("finish")
    }

    /// What reading `bytes` gives: each content's name, declared size and bytes.
    fn read(bytes: &[u8]) -> Result<Vec<(blake3::Hash, u64, Vec<u8>)>, WorkspaceError> {
        let mut got = Vec::new();
        for_each_blob(bytes, |blob| {
            let mut content = Vec::new();
            blob.content.take(1 << 20).read_to_end(&mut content).map_err(corrupt)?;
            assert_eq!(blob.name, blob.expected.to_hex().as_str());
            got.push((blob.expected, blob.size, content));
            Ok(true)
        })?;
        Ok(got)
    }

    proptest! {
        /// Both forms read back as written; any archive cut short or damaged is an error (or,
        /// damaged in a content's bytes, reads back other bytes — which fail their hash),
        /// never a panic.
        #[test]
        fn contents_read_back_as_written_and_a_damaged_archive_never_panics(
            contents in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..12),
            framed in any::<bool>(),
            cut in any::<proptest::sample::Index>(),
            flip in any::<proptest::sample::Index>(),
        ) {
            let format = if framed { BlobFormat::Framed } else { BlobFormat::Tar };
            let bytes = archive(&contents, format);
            let got = read(&bytes).expect("read back");
            let expected: Vec<_> =
                contents.iter().map(|content| (blake3::hash(content), content.len() as u64, content.clone())).collect();
            prop_assert_eq!(got, expected);
            // A framed archive cut short anywhere is an error (a tar one may end at an entry's
            // boundary: the call's announced size is what catches that).
            let short = cut.index(bytes.len());
            if framed && short > 0 {
                prop_assert!(read(&bytes[..short]).is_err(), "cut at {} of {}", short, bytes.len());
            }
            let mut damaged = bytes.clone();
            damaged[flip.index(bytes.len())] ^= 0x5a;
            let _ = read(&damaged);
        }
    }

    #[test]
    fn a_framed_archive_is_a_fifth_of_a_tar_one_before_compression_for_small_contents() {
        let contents: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().repeat(50)).collect();
        let raw = |format| {
            let mut decoded = Vec::new();
            GzDecoder::new(&archive(&contents, format)[..]).read_to_end(&mut decoded).expect("gunzip");
            decoded.len()
        };
        assert!(
            raw(BlobFormat::Framed) * 4 < raw(BlobFormat::Tar),
            "{} / {}",
            raw(BlobFormat::Framed),
            raw(BlobFormat::Tar)
        );
    }

    #[test]
    fn a_frame_of_another_kind_or_a_size_beyond_the_archive_is_refused() {
        let mut frames = MAGIC.to_vec();
        frames.push(7);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&frames).expect("write");
        let error = read(&encoder.finish().expect("finish")).expect_err("unknown frame");
        assert!(error.to_string().contains("unknown frame 7"), "{error}");
        let mut frames = MAGIC.to_vec();
        frames.push(TAG_BLOB);
        frames.extend_from_slice(blake3::hash(b"x").as_bytes());
        frames.extend_from_slice(&u64::MAX.to_le_bytes());
        frames.extend_from_slice(b"x");
        frames.push(TAG_END);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&frames).expect("write");
        assert!(read(&encoder.finish().expect("finish")).is_err(), "a size beyond the archive");
    }
}
