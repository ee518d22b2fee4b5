//! Where an archive of contents that came on a task's call is kept until it is used: in
//! memory while it is small, else in a file of the task's directory. A change of a few files
//! then makes no directory and no file on the agent's disk to be removed again (each a hop to
//! a blocking thread and an inode: on a filesystem slow to make inodes, more than the rest of
//! such a task's work).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tonic::Status;

use super::task_dir::TaskDir;

/// An archive up to this size is kept in memory (the agent runs at most `--max-tasks` at
/// once, each holding at most this).
const IN_MEMORY_AT_MOST: usize = 1 << 20;

/// A received archive, whole.
#[derive(Debug)]
pub(super) enum Spool {
    Memory(Vec<u8>),
    /// In the task's directory, which removes it with itself.
    File(PathBuf),
}

impl Spool {
    /// Its bytes from the start.
    pub(super) fn reader(&self) -> std::io::Result<Box<dyn BufRead + Send + '_>> {
        Ok(match self {
            Spool::Memory(bytes) => Box::new(bytes.as_slice()),
            Spool::File(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path)?)),
        })
    }

    /// Where it is, to name in an error.
    pub(super) fn place(&self) -> &Path {
        match self {
            Spool::Memory(_) => Path::new("memory"),
            Spool::File(path) => path,
        }
    }

    /// Gives back what it holds now, not when the task's directory goes (a file is removed off
    /// the async threads).
    pub(super) async fn release(self) {
        if let Spool::File(path) = self {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        }
    }
}

/// An archive being received: in memory until it outgrows [`IN_MEMORY_AT_MOST`], then in the
/// file `path` (the task's directory made then).
pub(super) struct Spooling<'a> {
    dir: &'a TaskDir,
    path: PathBuf,
    memory: Vec<u8>,
    file: Option<tokio::fs::File>,
}

impl<'a> Spooling<'a> {
    /// Into `name` in `dir`, should it come to a file.
    pub(super) fn new(dir: &'a TaskDir, name: &str) -> Self {
        Spooling { dir, path: dir.path().join(name), memory: Vec::new(), file: None }
    }

    pub(super) async fn write(&mut self, chunk: &[u8]) -> Result<(), Status> {
        if self.file.is_none() && self.memory.len() + chunk.len() <= IN_MEMORY_AT_MOST {
            self.memory.extend_from_slice(chunk);
            return Ok(());
        }
        let cannot = |e: std::io::Error| super::status::of_io("cannot store the workspace at", &self.path, &e);
        if self.file.is_none() {
            super::task_dir::make_dir(self.dir).await?;
            let mut file = tokio::fs::File::create(&self.path).await.map_err(cannot)?;
            file.write_all(&std::mem::take(&mut self.memory)).await.map_err(cannot)?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("made above");
        file.write_all(chunk).await.map_err(cannot)
    }

    /// The archive, whole.
    pub(super) async fn finish(mut self) -> Result<Spool, Status> {
        match self.file.take() {
            None => Ok(Spool::Memory(self.memory)),
            Some(mut file) => {
                file.flush()
                    .await
                    .map_err(|e| super::status::of_io("cannot store the workspace at", &self.path, &e))?;
                Ok(Spool::File(self.path))
            }
        }
    }
}

/// Writes `bytes` to a [`Spooling`] in pieces of `piece` bytes, then finishes it (for tests).
#[cfg(test)]
async fn spooled(dir: &TaskDir, bytes: &[u8], piece: usize) -> Spool {
    let mut spooling = Spooling::new(dir, "archive");
    for chunk in bytes.chunks(piece) {
        spooling.write(chunk).await.expect("write");
    }
    spooling.finish().await.expect("finish")
}

/// Reads a spool whole (for tests).
#[cfg(test)]
fn read_whole(spool: &Spool) -> Vec<u8> {
    let mut whole = Vec::new();
    std::io::copy(&mut spool.reader().expect("reader"), &mut whole).expect("read");
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_small_archive_stays_in_memory_and_makes_no_directory() {
        let work = tempfile::tempdir().expect("work dir");
        let dir = TaskDir::new(work.path());
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let spool = spooled(&dir, &bytes, 65_536).await;
        assert!(matches!(spool, Spool::Memory(_)), "{spool:?}");
        assert_eq!(read_whole(&spool), bytes);
        assert!(!dir.path().exists(), "no task directory is made for a small archive");
    }

    #[tokio::test]
    async fn a_large_archive_goes_to_a_file_with_what_came_before_it() {
        let work = tempfile::tempdir().expect("work dir");
        let dir = TaskDir::new(work.path());
        let bytes: Vec<u8> = (0..(IN_MEMORY_AT_MOST as u32 + 300_000)).map(|i| (i % 253) as u8).collect();
        let spool = spooled(&dir, &bytes, 100_000).await;
        let Spool::File(path) = &spool else { panic!("kept in memory: {} bytes", bytes.len()) };
        assert!(path.starts_with(dir.path()));
        assert_eq!(read_whole(&spool), bytes);
        assert_eq!(std::fs::read(path).expect("the file").len(), bytes.len());
        spool.release().await;
        assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "released");
    }

    #[tokio::test]
    async fn an_archive_of_exactly_the_limit_stays_in_memory() {
        let work = tempfile::tempdir().expect("work dir");
        let dir = TaskDir::new(work.path());
        let bytes = vec![7u8; IN_MEMORY_AT_MOST];
        let spool = spooled(&dir, &bytes, IN_MEMORY_AT_MOST / 4).await;
        assert!(matches!(spool, Spool::Memory(_)));
        let mut more = Spooling::new(&dir, "archive");
        more.write(&bytes).await.expect("write");
        more.write(b"x").await.expect("write one more");
        let spool = more.finish().await.expect("finish");
        assert!(matches!(spool, Spool::File(_)));
        let mut whole = read_whole(&spool);
        assert_eq!(whole.pop(), Some(b'x'));
        assert_eq!(whole, bytes);
    }
}
