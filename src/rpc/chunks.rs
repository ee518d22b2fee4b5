//! Archives travel in chunks of [`CHUNK_SIZE`](super::CHUNK_SIZE), far below gRPC's message
//! limit, so that memory stays bounded whatever their size: the contents the agent asks for on
//! their way up, a task's changes on their way back. One loop sends them, whatever holds them.

use std::io;

use prost::bytes::Bytes;
use tokio_stream::{Stream, StreamExt};
use tokio_util::io::ReaderStream;

use super::CHUNK_SIZE;

/// Chunks from wherever they are (a file, memory), for a sender that takes either.
pub(super) type Chunks = std::pin::Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A file's contents in chunks, read as they are sent.
pub(super) fn of_file(file: tokio::fs::File) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    ReaderStream::with_capacity(file, CHUNK_SIZE)
}

/// Bytes in memory in chunks, without copying them.
pub(super) fn of_memory(bytes: Bytes) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    let size = bytes.len();
    tokio_stream::iter(
        (0..size).step_by(CHUNK_SIZE).map(move |start| Ok(bytes.slice(start..size.min(start + CHUNK_SIZE)))),
    )
}

/// Hands every chunk of `chunks` to `send`, which answers whether the other side still takes
/// them. The bytes sent, or None when the other side went away first; a read error as it came.
pub(super) async fn send_all<Sent: Future<Output = bool>>(
    mut chunks: impl Stream<Item = io::Result<Bytes>> + Unpin,
    mut send: impl FnMut(Bytes) -> Sent,
) -> io::Result<Option<u64>> {
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if !send(chunk).await {
            return Ok(None);
        }
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_and_files_come_in_the_same_chunks() {
        let bytes: Vec<u8> = (0..CHUNK_SIZE * 2 + 10).map(|i| i as u8).collect();
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &bytes).expect("write");
        let opened = tokio::fs::File::open(file.path()).await.expect("open");
        for chunks in [
            Box::new(of_memory(Bytes::from(bytes.clone()))) as Box<dyn Stream<Item = _> + Unpin>,
            Box::new(of_file(opened)),
        ] {
            let mut received = Vec::new();
            let sent = send_all(chunks, |chunk: Bytes| {
                assert!(!chunk.is_empty() && chunk.len() <= CHUNK_SIZE);
                received.extend_from_slice(&chunk);
                std::future::ready(true)
            })
            .await
            .expect("read");
            assert_eq!(sent, Some(bytes.len() as u64));
            assert_eq!(received, bytes);
        }
        let stopped = send_all(of_memory(Bytes::from(bytes)), |_| std::future::ready(false)).await.expect("read");
        assert_eq!(stopped, None, "a receiver that went away stops the sending");
    }
}
