//! A real pseudo-terminal for a process under test: what it prints is collected as it comes,
//! keystrokes are written as a person (or a paste) would send them.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Terminal::wait_for`] waits for a text.
const WAIT: Duration = Duration::from_secs(20);

pub struct Terminal {
    child: Child,
    input: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    /// Starts `command` with stdin, stderr — and stdout, unless `stdout` says otherwise — on a
    /// new terminal.
    pub fn spawn(mut command: Command, stdout: Option<Stdio>) -> Self {
        // Both ends close-on-exec from the start: the suite's other tests spawn processes
        // meanwhile, and one that inherited an end would keep this terminal open.
        use nix::fcntl::OFlag;
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        nix::pty::grantpt(&master).expect("grantpt");
        nix::pty::unlockpt(&master).expect("unlockpt");
        let slave_path = nix::pty::ptsname_r(&master).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
            .open(&slave_path)
            .expect("opening the terminal");
        let end = || Stdio::from(slave.try_clone().expect("dup"));
        command.stdin(end()).stdout(stdout.unwrap_or_else(end)).stderr(end());
        let child = command.spawn().expect("starting the process");
        drop((command, slave));
        let master = std::fs::File::from(std::os::fd::OwnedFd::from(master));
        let input = master.try_clone().expect("dup");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&seen);
        let reader = std::thread::spawn(move || {
            let mut master = master;
            let mut buffer = [0u8; 4096];
            // Until the last holder of the terminal is gone (EIO) or it ends.
            while let Ok(read) = master.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                collected.lock().expect("output").extend_from_slice(&buffer[..read]);
            }
        });
        Self { child, input, seen, reader }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `bytes` at once (typed ahead, or pasted).
    pub fn send(&mut self, bytes: &[u8]) {
        self.input.write_all(bytes).expect("writing to the terminal");
    }

    /// Types `text` a key at a time, as a person does.
    pub fn type_slowly(&mut self, text: &str) {
        for byte in text.bytes() {
            self.send(&[byte]);
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    /// Everything printed so far, as text.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("output")).into_owned()
    }

    /// Waits until what was printed after byte `from` contains `needle`; the offset just past
    /// it. Panics with the output after [`WAIT`].
    pub fn wait_for(&self, from: usize, needle: &str) -> usize {
        if needle.is_empty() {
            return from;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let seen = self.seen.lock().expect("output");
                let tail = &seen[from.min(seen.len())..];
                if let Some(at) = tail.windows(needle.len().max(1)).position(|window| window == needle.as_bytes()) {
                    return from + at + needle.len();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never came after byte {from}; the terminal shows (escaped, from 400 bytes before):\n{}",
                String::from_utf8_lossy(&self.seen.lock().expect("output")[from.saturating_sub(400)..]).escape_debug()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many bytes were printed so far.
    pub fn len(&self) -> usize {
        self.seen.lock().expect("output").len()
    }

    /// Waits for the process to exit (30 s at most) and for the terminal to close; its exit
    /// code and everything it printed.
    pub fn finish(mut self) -> (Option<i32>, Vec<u8>) {
        let code = super::wait_exit(&mut self.child);
        drop(self.input);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.reader.is_finished() {
            assert!(Instant::now() < deadline, "the terminal stayed open after the process ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.reader.join();
        let seen = std::mem::take(&mut *self.seen.lock().expect("output"));
        (code, seen)
    }
}
