//! Text an agent sends in one message (a log line and its fields, a task's message) is cut
//! to [`MAX_TEXT`]: each such field rides in a single gRPC message, and one past the message
//! limit failed a task that had succeeded with the transport's own error. Output, outputs,
//! exports and changes travel in parts or are bounded on their own.

/// The most bytes of one such text that are sent.
pub const MAX_TEXT: usize = 4 * 1024 * 1024;

/// `text`, or its first [`MAX_TEXT`] bytes (cut between characters) and a note of how much
/// was left out.
pub fn fitted(text: String) -> String {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut cut = MAX_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let left_out = text.len() - cut;
    let mut fitted = text;
    fitted.truncate(cut);
    fitted.push_str(&format!(" … [{left_out} more bytes not sent by the agent]"));
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_within_the_limit_is_sent_whole_and_a_longer_one_cut_between_characters() {
        assert_eq!(fitted("short".to_owned()), "short");
        let exact = "x".repeat(MAX_TEXT);
        assert_eq!(fitted(exact.clone()), exact);
        // A three-byte character across the limit is left out whole.
        let long = format!("{}€{}", "x".repeat(MAX_TEXT - 1), "y".repeat(10));
        let cut = fitted(long);
        assert!(cut.starts_with(&"x".repeat(MAX_TEXT - 1)));
        assert!(cut.ends_with(" … [13 more bytes not sent by the agent]"), "{}", &cut[MAX_TEXT - 5..]);
    }
}
