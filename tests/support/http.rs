//! A small HTTP/1.1 server on `127.0.0.1` port 0 for the `net` tests: every request is
//! recorded, and a handler decides the reply — a full answer, raw bytes then a close (an
//! answer cut short), or silence until the server is dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names lowercased, in the order they came.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// Every value of header `name`.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// What the server answers.
pub enum Reply {
    /// A status, headers (a name may repeat) and a body with its Content-Length.
    Full { status: u16, headers: Vec<(&'static str, String)>, body: Vec<u8> },
    /// These bytes, then the connection closed.
    Raw(Vec<u8>),
    /// Nothing, ever: the connection stays open until the server is dropped.
    Silent,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::Full { status: 200, headers: Vec::new(), body: body.into() }
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply::Full { status, headers: Vec::new(), body: body.into() }
    }
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Connections left unanswered, closed when the server is dropped.
    held: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

pub struct HttpServer {
    pub port: u16,
    shared: Arc<Shared>,
    accepting: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let accepting = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (shared, handler) = (Arc::clone(&shared), Arc::clone(&handler));
                    std::thread::spawn(move || serve(stream, &shared, &*handler));
                }
            })
        };
        HttpServer { port, shared, accepting: Some(accepting) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for stream in self.shared.held.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        // Wakes the accepting thread, which then sees the stop flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, shared: &Shared, handler: &Handler) {
    let Some(request) = read_request(&mut stream) else {
        // Not HTTP (a TLS handshake): answered as an HTTP server answers garbage.
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    shared.received.lock().expect("lock").push(request.clone());
    match handler(&request) {
        Reply::Full { status, headers, body } => {
            let mut head =
                format!("HTTP/1.1 {status} Status\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        Reply::Silent => {
            if let Ok(held) = stream.try_clone() {
                shared.held.lock().expect("lock").push(held);
            }
            // Already stopping: nobody is left to close it later.
            if shared.stop.load(Ordering::SeqCst) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// The request on `stream`; None if it does not start like HTTP or ends early.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut data: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        if data.first().is_some_and(|byte| !byte.is_ascii_uppercase()) || data.len() > 64 * 1024 {
            return None;
        }
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(name, _)| name == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    Some(Received { method, path, headers, body })
}
