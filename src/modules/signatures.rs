//! The native modules' functions as scripts call them: each parameter (`?` when it may be
//! left out) and how many values come back. Kept beside the code that registers them (the
//! argument tuples in `log.rs`, `exec.rs`, `agent.rs`, `workspace.rs`, `data.rs`, `fs.rs`, `net.rs`); the definitions for
//! editors in `lua/` must say the same, which the test suite checks.

/// One function (`name`, or `Class:name` for a method of the values a module returns).
#[derive(Debug)]
pub struct Signature {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub returns: usize,
}

const fn sig(name: &'static str, params: &'static [&'static str], returns: usize) -> Signature {
    Signature { name, params, returns }
}

/// Every native module's functions, by module.
pub const SIGNATURES: &[(&str, &[Signature])] = &[
    (
        "log",
        &[
            sig("debug", &["message", "fields?"], 0),
            sig("info", &["message", "fields?"], 0),
            sig("warn", &["message", "fields?"], 0),
            sig("error", &["message", "fields?"], 0),
            sig("success", &["message", "fields?"], 0),
        ],
    ),
    ("exec", &[sig("run", &["cmd", "opts?"], 3), sig("command", &["cmd", "..."], 3)]),
    (
        "agent",
        &[
            sig("connect", &["address", "opts?"], 1),
            sig("spawn", &["opts"], 1),
            sig("discover", &["url", "opts?"], 1),
            sig("Client:info", &[], 1),
            sig("Client:execute", &["request", "opts?"], 1),
            sig("Client:address", &[], 1),
        ],
    ),
    (
        "data",
        &[
            sig("to_json", &["value", "opts?"], 2),
            sig("parse_json", &["text"], 2),
            sig("to_yaml", &["value"], 2),
            sig("parse_yaml", &["text"], 2),
        ],
    ),
    (
        "fs",
        &[
            sig("read", &["path"], 2),
            sig("write", &["path", "content"], 1),
            sig("append", &["path", "content"], 1),
            sig("exists", &["path"], 1),
            sig("stat", &["path"], 2),
            sig("ls", &["path?"], 2),
            sig("glob", &["pattern", "opts?"], 2),
            sig("mkdir", &["path"], 1),
            sig("rm", &["path"], 1),
            sig("rm_r", &["path"], 1),
            sig("copy", &["src", "dst"], 1),
            sig("tmpdir", &[], 2),
            sig("tmpname", &[], 1),
        ],
    ),
    (
        "net",
        &[
            sig("http_get", &["url", "opts?"], 4),
            sig("http_post", &["url", "body", "headers_or_opts?"], 4),
            sig("download", &["url", "dest", "opts?"], 1),
        ],
    ),
    (
        "workspace",
        &[
            sig("pack", &["dir", "opts?"], 1),
            sig("unpack", &["archive", "dir"], 1),
            sig("snapshot", &["dir", "opts?"], 1),
            sig("rules", &["dir", "opts?"], 1),
            sig("changes", &["dir", "base", "opts?"], 1),
            sig("rescan", &["dir", "base"], 1),
            sig("apply", &["dir", "changes", "opts?"], 1),
            sig("recover", &["dir"], 1),
        ],
    ),
];
