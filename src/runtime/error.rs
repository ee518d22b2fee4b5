//! Lua errors as people read them: the message first, then the traceback, without mlua's
//! wrapping noise.

use mlua::Error;

/// The message of `error` with its traceback, innermost cause first.
pub fn describe(error: &Error) -> String {
    match error {
        Error::CallbackError { traceback, cause } => {
            let inner = describe(cause);
            if inner.contains("stack traceback:") { inner } else { format!("{inner}\n{traceback}") }
        }
        Error::WithContext { context, cause } => format!("{context}: {}", describe(cause)),
        Error::RuntimeError(message) | Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Only the message, without any traceback (for one-line summaries).
pub fn message(error: &Error) -> String {
    let full = describe(error);
    match full.find("\nstack traceback:") {
        Some(end) => full[..end].to_owned(),
        None => full,
    }
}
