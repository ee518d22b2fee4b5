//! Where the master keeps a task's changes archive as it arrives: in memory while it is small
//! (most tasks change a few files, or none), in a temporary file past [`IN_MEMORY`] — a file per
//! task costs an inode, and making inodes is slow on some filesystems (ext4 right after
//! deletes).

use std::io::Write;

/// The most bytes of changes kept in memory.
pub const IN_MEMORY: usize = 1024 * 1024;

/// A changes archive (tar + gzip), complete.
#[derive(Debug)]
pub enum ReceivedChanges {
    Memory(Vec<u8>),
    File(tempfile::NamedTempFile),
}

/// Collects the chunks of a changes archive.
#[derive(Debug, Default)]
pub struct ChangesSink {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<tempfile::NamedTempFile>>,
}

impl ChangesSink {
    /// Adds a chunk (spilling to a temporary file once past [`IN_MEMORY`]).
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if let Some(file) = &mut self.file {
            return file.write_all(chunk);
        }
        if self.memory.len() + chunk.len() <= IN_MEMORY {
            self.memory.extend_from_slice(chunk);
            return Ok(());
        }
        let mut file = std::io::BufWriter::new(tempfile::NamedTempFile::new()?);
        file.write_all(&std::mem::take(&mut self.memory))?;
        file.write_all(chunk)?;
        self.file = Some(file);
        Ok(())
    }

    /// The archive, all written.
    pub fn finish(self) -> std::io::Result<ReceivedChanges> {
        match self.file {
            Some(file) => Ok(ReceivedChanges::File(file.into_inner().map_err(std::io::IntoInnerError::into_error)?)),
            None => Ok(ReceivedChanges::Memory(self.memory)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_changes_stay_in_memory_and_large_ones_spill_whole() {
        let mut small = ChangesSink::default();
        small.write(b"abc").expect("write");
        small.write(b"def").expect("write");
        assert!(matches!(small.finish().expect("finish"), ReceivedChanges::Memory(bytes) if bytes == b"abcdef"));
        let mut large = ChangesSink::default();
        let chunk = vec![7u8; IN_MEMORY / 2 + 1];
        large.write(&chunk).expect("write");
        large.write(&chunk).expect("write");
        large.write(b"end").expect("write");
        let ReceivedChanges::File(file) = large.finish().expect("finish") else { panic!("spilled to a file") };
        let bytes = std::fs::read(file.path()).expect("read");
        assert_eq!(bytes.len(), chunk.len() * 2 + 3);
        assert!(bytes.ends_with(b"end") && bytes[..chunk.len() * 2].iter().all(|b| *b == 7));
    }
}
