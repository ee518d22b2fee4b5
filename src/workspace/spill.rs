//! Where an archive goes as it is written or received: in memory while it is small (most tasks
//! change a few files, or none), in a temporary file past [`IN_MEMORY`] — a file per task costs
//! an inode, and making inodes is slow on some filesystems (ext4 right after deletes), which
//! made it a fifth of what an agent spent on a trivial task.

use std::io::Write;
use std::path::PathBuf;

/// The most bytes of an archive kept in memory.
pub const IN_MEMORY: usize = 1024 * 1024;

/// An archive, complete.
#[derive(Debug)]
pub enum Spilled {
    Memory(Vec<u8>),
    File(tempfile::NamedTempFile),
}

impl Spilled {
    /// Its size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        match self {
            Spilled::Memory(bytes) => Ok(bytes.len() as u64),
            Spilled::File(file) => Ok(file.as_file().metadata()?.len()),
        }
    }
}

/// Collects an archive's bytes; a `Write` (a short write never happens).
#[derive(Debug, Default)]
pub struct Spill {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<tempfile::NamedTempFile>>,
    /// Where the file goes (made if missing); the system's temporary directory when None.
    dir: Option<PathBuf>,
}

impl Spill {
    /// A spill whose file, if it comes to one, goes in `dir` (made then if missing).
    pub fn in_dir(dir: PathBuf) -> Self {
        Spill { dir: Some(dir), ..Spill::default() }
    }

    /// Where the bytes would spill.
    pub fn spill_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn spill(&mut self) -> std::io::Result<()> {
        let temp = match &self.dir {
            Some(dir) => {
                match std::fs::create_dir(dir) {
                    Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => return Err(error),
                    _ => {}
                }
                tempfile::NamedTempFile::new_in(dir)?
            }
            None => tempfile::NamedTempFile::new()?,
        };
        let mut file = std::io::BufWriter::new(temp);
        file.write_all(&std::mem::take(&mut self.memory))?;
        self.file = Some(file);
        Ok(())
    }

    /// The archive, all written.
    pub fn finish(self) -> std::io::Result<Spilled> {
        match self.file {
            Some(file) => Ok(Spilled::File(file.into_inner().map_err(std::io::IntoInnerError::into_error)?)),
            None => Ok(Spilled::Memory(self.memory)),
        }
    }
}

impl Write for Spill {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.memory.len() + chunk.len() > IN_MEMORY {
            self.spill()?;
        }
        match &mut self.file {
            Some(file) => file.write_all(chunk)?,
            None => self.memory.extend_from_slice(chunk),
        }
        Ok(chunk.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_archives_stay_in_memory_and_large_ones_spill_whole() {
        let mut small = Spill::default();
        small.write_all(b"abc").expect("write");
        small.write_all(b"def").expect("write");
        assert!(matches!(small.finish().expect("finish"), Spilled::Memory(bytes) if bytes == b"abcdef"));
        let mut large = Spill::default();
        let chunk = vec![7u8; IN_MEMORY / 2 + 1];
        large.write_all(&chunk).expect("write");
        large.write_all(&chunk).expect("write");
        large.write_all(b"end").expect("write");
        let Spilled::File(file) = large.finish().expect("finish") else { panic!("spilled to a file") };
        let bytes = std::fs::read(file.path()).expect("read");
        assert_eq!(bytes.len(), chunk.len() * 2 + 3);
        assert!(bytes.ends_with(b"end") && bytes[..chunk.len() * 2].iter().all(|b| *b == 7));
    }

    #[test]
    fn a_spill_directory_is_made_only_when_the_bytes_outgrow_memory() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("task");
        let mut small = Spill::in_dir(dir.clone());
        small.write_all(b"small").expect("write");
        assert!(matches!(small.finish().expect("finish"), Spilled::Memory(_)));
        assert!(!dir.exists(), "no directory for what stayed in memory");
        let mut large = Spill::in_dir(dir.clone());
        large.write_all(&vec![1u8; IN_MEMORY + 1]).expect("write");
        let Spilled::File(file) = large.finish().expect("finish") else { panic!("spilled to a file") };
        assert!(file.path().starts_with(&dir), "spilled into the given directory");
    }
}
