//! Puts Lua text on one line without changing what it means, for the iterations of a `range`
//! that spans lines: line breaks become spaces and `--` comments are dropped (a comment ends a
//! line). A line break Lua keeps (inside a `[[long string]]` or after a `\` in a string)
//! cannot be flattened.

/// `text` on one line, or what in it cannot be.
pub(super) fn one_line(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if let Some(comment) = rest.strip_prefix("--") {
            match long_bracket(comment) {
                Some(len) => {
                    let close = rest[2 + len..].find(&closing(len)).ok_or("an unclosed long comment")?;
                    i += 2 + len + close + len;
                }
                None => i += rest.find(['\n', '\r']).unwrap_or(rest.len()),
            }
            out.push(' ');
            continue;
        }
        if let Some(len) = long_bracket(rest) {
            let close = rest[len..].find(&closing(len)).ok_or("an unclosed long string")?;
            let whole = &rest[..len + close + len];
            if whole.contains(['\n', '\r']) {
                return Err("a [[long string]] over several lines");
            }
            out.push_str(whole);
            i += whole.len();
            continue;
        }
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != quote {
                    if bytes[j] == b'\\' {
                        j += 1;
                    }
                    if bytes.get(j).is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        return Err("a string continued on the next line");
                    }
                    j += 1;
                }
                let end = (j + 1).min(bytes.len());
                out.push_str(&text[i..end]);
                i = end;
            }
            b'\n' | b'\r' => {
                out.push(' ');
                i += 1;
            }
            _ => {
                let next = match rest.find(['-', '[', '"', '\'', '\n', '\r']) {
                    Some(0) => 1,
                    Some(n) => n,
                    None => rest.len(),
                };
                out.push_str(&rest[..next]);
                i += next;
            }
        }
    }
    Ok(out)
}

/// The length of a long bracket `[[`, `[=[`, `[==[`… opening `text`.
fn long_bracket(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('[')?;
    let level = rest.len() - rest.trim_start_matches('=').len();
    rest[level..].starts_with('[').then_some(level + 2)
}

fn closing(len: usize) -> String {
    format!("]{}]", "=".repeat(len - 2))
}
