//! The connections a server (an agent, a master's registry) takes: accepted on a loop of its
//! own, so that what one peer does cannot take the server from the others.
//!
//! - A connection must begin its call within [`FIRST_FLIGHT_WITHIN`]: the HTTP/2 preface, or
//!   over TLS the first record of the handshake, whole (or anything else, which the layers
//!   above refuse saying why). One that sends nothing, or half of it, is closed — before, such
//!   a connection held a descriptor for ever, no token asked yet.
//! - At most [`most_connections`] are open at once (half the descriptors the process may open):
//!   past that, new ones wait in the kernel's queue until one closes.
//! - Running out of descriptors (or memory) makes the loop wait a moment before it accepts
//!   again: the accept loop it replaces tried again at once, a core spinning while no master
//!   could get in.
//! - A connection must make a call that is let in (its token right, where one is asked) within
//!   [`LET_IN_WITHIN`], or it is closed: a peer that began a call — the preface, a TLS
//!   handshake's first record — and then held its connection idle (answering HTTP/2 pings),
//!   kept its place for ever, and enough of them locked every master out. A master's channel,
//!   once let in, stays open between its tasks.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long a new connection has to send the beginning of its call.
pub const FIRST_FLIGHT_WITHIN: Duration = Duration::from_secs(10);

/// How long a new connection has to make a call that is let in.
pub const LET_IN_WITHIN: Duration = Duration::from_secs(20);

/// What an HTTP/2 client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long the loop waits before accepting again when the process is out of descriptors.
const OUT_OF_DESCRIPTORS_PAUSE: Duration = Duration::from_millis(100);

/// An accepted connection, counted until it closes.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    _open: OwnedSemaphorePermit,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

/// Whether a connection has made a call that was let in; the reading side closes it when told.
#[derive(Debug, Default)]
struct Watch {
    let_in: AtomicBool,
    closing: AtomicBool,
    /// The task reading the connection, to wake when it is to close.
    reader: Mutex<Option<Waker>>,
}

/// The connections open now, by their peer's address (one connection each).
static OPEN: LazyLock<Mutex<HashMap<SocketAddr, Arc<Watch>>>> = LazyLock::new(Mutex::default);

/// A call on the connection from `peer` was let in (its token checked, where one is asked):
/// the connection stays open.
pub fn let_in(peer: Option<SocketAddr>) {
    let Some(peer) = peer else { return };
    if let Some(watch) = OPEN.lock().unwrap_or_else(PoisonError::into_inner).get(&peer) {
        watch.let_in.store(true, Ordering::Relaxed);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        if open.get(&self.peer).is_some_and(|watch| Arc::ptr_eq(watch, &self.watch)) {
            open.remove(&self.peer);
        }
    }
}

/// Connections accepted from `listener`, each past its first flight (`tls`: a TLS handshake's
/// first record, else the HTTP/2 preface), at most [`most_connections`] open at once. Ends
/// when the receiving side is dropped.
pub fn incoming(listener: TcpListener, tls: bool) -> tokio_stream::wrappers::ReceiverStream<io::Result<Counted>> {
    let (admitted, stream) = tokio::sync::mpsc::channel(64);
    let most = most_connections();
    let open = Arc::new(Semaphore::new(most));
    tokio::spawn(async move {
        let mut warned_full = false;
        loop {
            let Ok(slot) = Arc::clone(&open).acquire_owned().await else { return };
            if !warned_full && open.available_permits() == 0 {
                tracing::warn!(most, "as many connections open as this server takes: new ones wait");
                warned_full = true;
            }
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) if out_of_resources(&error) => {
                        tracing::warn!(%error, "cannot accept a connection: out of descriptors or memory");
                        tokio::time::sleep(OUT_OF_DESCRIPTORS_PAUSE).await;
                        continue;
                    }
                    Err(error) => {
                        // (Mostly a peer gone before it was taken; a pause keeps an error that
                        // comes back at once from spinning a core.)
                        tracing::debug!(%error, "a connection failed as it was accepted");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                },
                () = admitted.closed() => return,
            };
            let _ = stream.set_nodelay(true);
            let admitted = admitted.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(FIRST_FLIGHT_WITHIN, first_flight(&stream, tls)).await {
                    Ok(true) => {
                        let watch = Arc::new(Watch::default());
                        OPEN.lock().unwrap_or_else(PoisonError::into_inner).insert(peer, Arc::clone(&watch));
                        let counted = Counted { stream, _open: slot, peer, watch: Arc::clone(&watch) };
                        if admitted.send(Ok(counted)).await.is_ok() {
                            tokio::time::sleep(LET_IN_WITHIN).await;
                            if !watch.let_in.load(Ordering::Relaxed) {
                                tracing::debug!(%peer, "closing a connection that made no call let in");
                                watch.closing.store(true, Ordering::Relaxed);
                                let reader = watch.reader.lock().unwrap_or_else(PoisonError::into_inner).take();
                                if let Some(reader) = reader {
                                    reader.wake();
                                }
                            }
                        }
                    }
                    Ok(false) => tracing::debug!(%peer, "a connection closed before it began a call"),
                    Err(_) => tracing::debug!(%peer, "closed a connection that did not begin a call in time"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(stream)
}

/// At most this many connections are open at once: half the descriptors this process may
/// open (the rest are its tasks', its trees', its cache's), between 16 and 65,536.
pub fn most_connections() -> usize {
    let soft =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 2).unwrap_or(65_536).clamp(16, 65_536)
}

/// Raises the descriptors this process may open to the most it is allowed (the soft limit is
/// often 1,024 where the hard one is far more): for a server, whose connections, tasks and
/// trees all take descriptors.
pub fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(errno) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::debug!(%errno, soft, hard, "cannot raise the limit of open descriptors");
    }
}

fn out_of_resources(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if [nix::libc::EMFILE, nix::libc::ENFILE, nix::libc::ENOBUFS, nix::libc::ENOMEM].contains(&code))
}

/// Waits until the connection has sent the beginning of its call whole — the HTTP/2 preface,
/// or with `tls` the first handshake record — or something else (which the layers above refuse
/// as ever, saying why: TLS spoken to a plain agent, plain HTTP/2 to one that serves TLS); the
/// caller bounds the wait. False: the peer closed, or the connection failed, first.
async fn first_flight(stream: &TcpStream, tls: bool) -> bool {
    let mut buffer = vec![0u8; 5 + (1 << 14)];
    let mut needed = if tls { 5 } else { PREFACE.len() };
    loop {
        let seen = match stream.peek(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(seen) => seen,
        };
        if !tls && !PREFACE.starts_with(&buffer[..seen.min(PREFACE.len())]) {
            return true;
        }
        if tls && seen >= 5 {
            // A handshake record (22), TLS 1.x, of at most 2^14 bytes.
            let length = usize::from(u16::from_be_bytes([buffer[3], buffer[4]]));
            if buffer[0] != 22 || buffer[1] != 3 || length > 1 << 14 {
                return true;
            }
            needed = 5 + length;
        }
        if seen >= needed {
            return true;
        }
        // Part of it came: a peek returns at once while anything is queued, so look again in
        // a moment.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Connected for Counted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.watch.let_in.load(Ordering::Relaxed) {
            // Told to close: its end, as if the peer had closed it.
            if self.watch.closing.load(Ordering::Relaxed) {
                return Poll::Ready(Ok(()));
            }
            *self.watch.reader.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    async fn server(tls: bool) -> (std::net::SocketAddr, tokio_stream::wrappers::ReceiverStream<io::Result<Counted>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        (address, incoming(listener, tls))
    }

    #[tokio::test]
    async fn a_connection_is_handed_on_once_its_preface_is_whole_or_something_else_came() {
        let (address, mut accepted) = server(false).await;
        let mut client = TcpStream::connect(address).await.expect("connect");
        client.write_all(&PREFACE[..10]).await.expect("half");
        let early = tokio::time::timeout(Duration::from_millis(300), accepted.next()).await;
        assert!(early.is_err(), "handed on with half a preface");
        client.write_all(&PREFACE[10..]).await.expect("the rest");
        let whole = tokio::time::timeout(Duration::from_secs(5), accepted.next()).await.expect("in time");
        assert!(matches!(whole, Some(Ok(_))));

        // Something else: the HTTP/2 layer answers it (as it always did).
        let mut other = TcpStream::connect(address).await.expect("connect");
        other.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
        let handed = tokio::time::timeout(Duration::from_secs(5), accepted.next()).await.expect("in time");
        assert!(matches!(handed, Some(Ok(_))));
    }

    #[tokio::test]
    async fn over_tls_the_first_record_must_be_a_whole_handshake_record() {
        let (address, mut accepted) = server(true).await;
        let mut client = TcpStream::connect(address).await.expect("connect");
        let record: Vec<u8> = [22u8, 3, 1, 0, 4].into_iter().chain([1, 0, 0, 0]).collect();
        client.write_all(&record[..7]).await.expect("part");
        assert!(tokio::time::timeout(Duration::from_millis(300), accepted.next()).await.is_err());
        client.write_all(&record[7..]).await.expect("the rest");
        let whole = tokio::time::timeout(Duration::from_secs(5), accepted.next()).await.expect("in time");
        assert!(matches!(whole, Some(Ok(_))));
    }

    #[test]
    fn the_count_is_half_the_descriptors_within_bounds() {
        let most = most_connections();
        assert!((16..=65_536).contains(&most), "{most}");
    }
}
