//! A command's output as it is read: each stream's lines shown live (a line too long shown in
//! pieces), and its last bytes kept for when it has finished — kept as read, so that what was
//! read is there however the reading ends.

use std::cell::RefCell;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::OutputStream;

/// How much of a stream's output a finished process keeps (live lines are all shown): the
/// last 8 MiB, after a line saying how much went before.
pub const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

/// A live line longer than this is shown in pieces of this size.
pub(super) const LINE_LIMIT: usize = 1024 * 1024;

/// What a stream's reader keeps as it reads (so that what was read is there even if the
/// reading is given up): the last bytes, and how many went before them.
#[derive(Default)]
pub(super) struct Capture {
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    /// The last [`CAPTURE_LIMIT`] bytes, after a line saying how much went before them.
    pub(super) fn into_bytes(mut self) -> Vec<u8> {
        if self.kept.len() > CAPTURE_LIMIT {
            let excess = self.kept.len() - CAPTURE_LIMIT;
            self.kept.drain(..excess);
            self.dropped += excess as u64;
        }
        if self.dropped == 0 {
            return self.kept;
        }
        let mut all = format!(
            "[sloth-runner: {} bytes of output before these were not kept; the last {CAPTURE_LIMIT} are]\n",
            self.dropped
        )
        .into_bytes();
        all.extend_from_slice(&self.kept);
        all
    }
}

/// Reads `pipe` to its end: each line goes to `on_line` as it arrives, and the bytes into
/// `buf` as they come (see [`Capture`]).
pub(super) async fn pump(
    pipe: Option<impl AsyncRead + Unpin>,
    stream: OutputStream,
    (buf, pending): (&RefCell<Capture>, &RefCell<Vec<u8>>),
    on_line: &dyn Fn(OutputStream, &str),
) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = vec![0u8; 16 * 1024];
    let emit = |line: &[u8]| emit_line(stream, line, on_line);
    loop {
        let read = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let data = &chunk[..read];
        {
            let mut capture = buf.borrow_mut();
            capture.kept.extend_from_slice(data);
            // Trimmed in batches, so that keeping the tail stays linear.
            if capture.kept.len() > 2 * CAPTURE_LIMIT {
                let excess = capture.kept.len() - CAPTURE_LIMIT;
                capture.kept.drain(..excess);
                capture.dropped += excess as u64;
            }
        }
        // The line being read is kept outside: a reader given up (a timeout) leaves it to be
        // shown still.
        let mut line = pending.borrow_mut();
        // Only the new bytes are looked at for line ends.
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&rest[..pos]);
            emit(&line);
            line.clear();
            rest = &rest[pos + 1..];
        }
        line.extend_from_slice(rest);
        while line.len() >= LINE_LIMIT {
            let cut = char_boundary(&line, LINE_LIMIT);
            let piece: Vec<u8> = line.drain(..cut).collect();
            emit(&piece);
        }
    }
    let line = std::mem::take(&mut *pending.borrow_mut());
    if !line.is_empty() {
        emit(&line);
    }
}

/// Shows one line of a command's output.
pub(super) fn emit_line(stream: OutputStream, line: &[u8], on_line: &dyn Fn(OutputStream, &str)) {
    let text = String::from_utf8_lossy(line);
    on_line(stream, text.trim_end_matches('\r'));
}

/// Where to cut `line` at most `at` bytes in: not inside a UTF-8 character (a character cut in
/// two shows as two replacement characters) — also one whose last bytes have not been read yet
/// — unless what precedes is no UTF-8 anyway.
pub(super) fn char_boundary(line: &[u8], at: usize) -> usize {
    let at = at.min(line.len());
    // The last character begun before `at`: its lead byte is at most 3 bytes back.
    let Some(lead_at) = (at.saturating_sub(4)..at).rev().find(|&i| line[i] & 0xC0 != 0x80) else { return at };
    let length = match line[lead_at] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if lead_at > 0 && lead_at + length > at { lead_at } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_steps_back_over_a_character_s_continuation_bytes_only() {
        let line = "a\u{1F600}b".as_bytes(); // 'a', a four-byte character, 'b'
        assert_eq!(char_boundary(line, 1), 1);
        assert_eq!(char_boundary(line, 2), 1);
        assert_eq!(char_boundary(line, 4), 1);
        assert_eq!(char_boundary(line, 5), 5);
        assert_eq!(char_boundary(&[0x80, 0x80, 0x80, 0x80, 0x80], 4), 4, "no UTF-8: cut where asked");
        assert_eq!(char_boundary(&"a\u{e9}".as_bytes()[..2], 2), 1, "a character whose end is not read yet");
    }
}
