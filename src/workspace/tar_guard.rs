//! A tar stream's metadata entries bounded before the tar reader sees them.
//!
//! The tar crate reads a long-name entry (`L`, `K`) or a PAX header (`x`, `g`) whole into
//! memory before the entry it describes is looked at: an archive of a megabyte, compressed,
//! whose long name says it is a gigabyte had a master take gigabytes before refusing it. This
//! reader follows the stream's headers as the bytes pass and fails one whose metadata entry is
//! larger than any path or record a workspace carries.

use std::io::Read;

/// The largest metadata entry passed: far above any path (`PATH_MAX` is 4,096 bytes) or the
/// PAX records of one entry.
pub const METADATA_AT_MOST: u64 = 1 << 20;

const BLOCK: usize = 512;

/// `inner`, a tar stream, failing at a metadata entry larger than [`METADATA_AT_MOST`].
pub struct MetadataBounded<R> {
    inner: R,
    /// The header being gathered, and how much of it is.
    header: [u8; BLOCK],
    filled: usize,
    /// Bytes of the current entry's data (padded to whole blocks) still to pass.
    data_left: u64,
}

impl<R> MetadataBounded<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, header: [0; BLOCK], filled: 0, data_left: 0 }
    }

    /// Follows `bytes`, just read, through headers and data.
    fn follow(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            if self.data_left > 0 {
                let passed = usize::try_from(self.data_left).unwrap_or(usize::MAX).min(bytes.len());
                self.data_left -= passed as u64;
                bytes = &bytes[passed..];
                continue;
            }
            let taken = (BLOCK - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + taken].copy_from_slice(&bytes[..taken]);
            self.filled += taken;
            bytes = &bytes[taken..];
            if self.filled == BLOCK {
                self.filled = 0;
                self.data_left = self.entry_data()?;
            }
        }
        Ok(())
    }

    /// The data (whole blocks) that follows the gathered header; an error for a metadata entry
    /// too large.
    fn entry_data(&self) -> std::io::Result<u64> {
        // (A block of zeros ends the archive: nothing follows it.)
        if self.header.iter().all(|&byte| byte == 0) {
            return Ok(0);
        }
        let size = header_size(&self.header[124..136]).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "a tar header with a malformed size")
        })?;
        if matches!(self.header[156], b'L' | b'K' | b'x' | b'g') && size > METADATA_AT_MOST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a tar metadata entry of {size} bytes (at most {METADATA_AT_MOST})"),
            ));
        }
        Ok(size.div_ceil(BLOCK as u64) * BLOCK as u64)
    }
}

/// A header's size field: octal digits (spaces and NULs around them), or base-256 (the high
/// bit of its first byte set).
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut size: u64 = u64::from(field[0] & 0x7f);
        for &byte in &field[1..] {
            size = size.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        return Some(size);
    }
    let digits = field.iter().copied().skip_while(|&byte| byte == b' ').take_while(|&byte| byte != 0 && byte != b' ');
    let mut size: u64 = 0;
    for byte in digits {
        if !(b'0'..=b'7').contains(&byte) {
            return None;
        }
        size = size.checked_mul(8)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some(size)
}

impl<R: Read> Read for MetadataBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.follow(&buf[..read])?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(long_name: usize) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = "d/".repeat(long_name / 2);
        builder.append_data(&mut header, format!("{name}file"), &b"hello"[..]).expect("append");
        builder.into_inner().expect("finish")
    }

    #[test]
    fn an_archive_passes_whole_and_a_metadata_entry_too_large_fails() {
        for long in [0, 300, 5000] {
            let bytes = archive(long);
            let mut read = Vec::new();
            // Small reads: headers come in pieces.
            let mut bounded = MetadataBounded::new(std::io::BufReader::with_capacity(7, &bytes[..]));
            bounded.read_to_end(&mut read).expect("read");
            assert_eq!(read, bytes);
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(METADATA_AT_MOST + 1);
        header.set_cksum();
        let mut bomb = header.as_bytes().to_vec();
        bomb.extend(std::iter::repeat_n(b'a', 4096));
        let mut sink = Vec::new();
        let error = MetadataBounded::new(&bomb[..]).read_to_end(&mut sink).expect_err("refused");
        assert!(error.to_string().contains("tar metadata entry"), "{error}");
        assert_eq!(header_size(b"\x80\0\0\0\0\0\0\0\0\0\x02\0"), Some(512));
    }
}
