//! Splits a template into text and actions, as Go's text/template lexes them: `{{- ` and ` -}}`
//! trim the whitespace beside them (but keep its line breaks, so every line stays where it
//! was), `{{/* … */}}` is a comment, and a `}}` inside a quoted string does not close an action.

use super::Failure;

#[derive(Debug)]
pub(super) enum Token<'a> {
    Text(String),
    /// What is between the delimiters (trim markers removed); `line` is where `{{` is and
    /// `newlines` how many line breaks the whole action holds.
    Action {
        body: &'a str,
        line: usize,
        newlines: usize,
    },
    Comment {
        newlines: usize,
    },
}

pub(super) fn tokens(text: &str) -> Result<Vec<Token<'_>>, Failure> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    let mut trim_leading = false;
    while let Some(found) = text[pos..].find("{{") {
        let open = pos + found;
        let mut start = open + 2;
        let trim_trailing = text[start..].starts_with('-') && text[start + 1..].starts_with(is_space);
        if trim_trailing {
            start += 1;
        }
        let before = &text[pos..open];
        tokens.push(Token::Text(trimmed(before, trim_leading, trim_trailing)));
        line += newlines(before);
        let close = close_of(text, start).ok_or_else(|| Failure::at(line, "'{{' is never closed with '}}'"))?;
        let mut end = close;
        trim_leading = end > start + 1 && text[..end].ends_with('-') && text[..end - 1].ends_with(is_space);
        if trim_leading {
            end -= 1;
        }
        let body = &text[start..end];
        let action_newlines = newlines(&text[open..close + 2]);
        let trimmed_body = body.trim();
        if trimmed_body.starts_with("/*") {
            if !trimmed_body.ends_with("*/") || trimmed_body.len() < 4 {
                return Err(Failure::at(line, "a comment must be written {{/* … */}}"));
            }
            tokens.push(Token::Comment { newlines: action_newlines });
        } else {
            tokens.push(Token::Action { body, line, newlines: action_newlines });
        }
        line += action_newlines;
        pos = close + 2;
    }
    tokens.push(Token::Text(trimmed(&text[pos..], trim_leading, false)));
    Ok(tokens)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(super) fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// `text` with the whitespace at its start and/or end reduced to the line breaks it held.
fn trimmed(text: &str, leading: bool, trailing: bool) -> String {
    let mut body = text;
    let mut head = 0;
    let mut tail = 0;
    if leading {
        let kept = body.trim_start_matches(is_space);
        head = newlines(&body[..body.len() - kept.len()]);
        body = kept;
    }
    if trailing {
        let kept = body.trim_end_matches(is_space);
        tail = newlines(&body[kept.len()..]);
        body = kept;
    }
    format!("{}{body}{}", "\n".repeat(head), "\n".repeat(tail))
}

/// Where the `}}` closing an action that starts at `start` is; quoted strings and a comment
/// are skipped.
fn close_of(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = start;
    let rest = text[start..].trim_start();
    if rest.starts_with("/*") {
        let comment = text.len() - rest.len();
        i = comment + 2 + text[comment + 2..].find("*/")? + 2;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => i += text[i + 1..].find('`')? + 1,
            _ => {}
        }
        i += 1;
    }
    None
}
