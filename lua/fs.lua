---@meta fs
--- Files. Available as the global `fs` and through `require("fs")`. Readers return
--- `value, err`; writers return a single `err`, nil on success (`assert(fs.write(p, s) == nil)`).
--- An err is a `sloth.Error` (`kind` "io", "no_space" or "invalid"; `path`; `call`) that prints
--- as the function and the path: `fs.read: /w/x.txt: No such file or directory`.
--- A wrong argument (a table for a path, an empty path, an unknown option) raises instead.
--- Relative paths resolve against the running task's workdir (outside a task, the current
--- directory). Names and contents are bytes: spaces, newlines, non-UTF-8 and NUL are kept.
--- Nothing here follows a link it meets inside a tree (`rm_r`, `copy`, `glob`), and `exists`,
--- `stat` and `rm` see a link itself, not what it points at.
fs = {}

---@class fs.Stat
---@field type "file"|"dir"|"link"|"other" the path itself: a link is "link", not what it points at
---@field size integer bytes (for a link, the length of its target)
---@field mode integer permission bits, e.g. 493 (0755); setuid, setgid and sticky included
---@field mtime number modification time, seconds since the Unix epoch (fraction: nanoseconds)
---@field target? string a link's target, as written in the link

--- The whole content of a file.
---@param path string
---@return string? content
---@return sloth.Error? err
function fs.read(path) end

--- Replaces a file's content (the file is created if missing; its directory is not).
---@param path string
---@param content string|number any bytes; a number is written as Lua prints it
---@return sloth.Error? err
function fs.write(path, content) end

--- Adds to the end of a file (created if missing).
---@param path string
---@param content string|number
---@return sloth.Error? err
function fs.append(path, content) end

--- Whether something is at `path`. A link counts as itself: a dangling link exists (use
--- `fs.stat` to tell it apart). False also when the path cannot be looked at.
---@param path string
---@return boolean
function fs.exists(path) end

--- What is at `path`, without following a link.
---@param path string
---@return fs.Stat? stat
---@return sloth.Error? err
function fs.stat(path) end

--- Every name in a directory, dotfiles included, sorted by their bytes.
---@param path? string default "."
---@return string[]? names
---@return sloth.Error? err
function fs.ls(path) end

--- Paths under `root` that `pattern` matches, relative to `root`, sorted (a directory's entries
--- right after it); no match is an empty array. The glob dialect of `workspace` exclusions:
--- `*` and `?` stay within a name (and match dotfiles), `**` crosses directories, `{a,b}` and
--- `[ab]`. A pattern is anchored at `root` (`*.txt` is the root's files, `**/*.txt` all of
--- them); an absolute or `..` pattern is an err. Linked directories are matched as themselves,
--- never entered.
---@param pattern string
---@param opts? { root?: string } root: default the task's workdir
---@return string[]? paths
---@return sloth.Error? err
function fs.glob(pattern, opts) end

--- Creates a directory and its missing parents; one already there is fine.
---@param path string
---@return sloth.Error? err
function fs.mkdir(path) end

--- Removes a file, a link (not its target) or an empty directory.
---@param path string
---@return sloth.Error? err
function fs.rm(path) end

--- Removes a path and everything beneath it, as `rm -rf`: nothing there is not an err, links
--- inside are removed as links (what they point at stays). `.`, `..` and `/` are refused.
---@param path string
---@return sloth.Error? err
function fs.rm_r(path) end

--- Copies a file, a link (as a link) or a directory with everything in it to `dst` — the
--- copy's own path, never "into" a directory there — keeping permission bits and times, and
--- creating `dst`'s missing parents. A file or link at `dst` is replaced; a directory at `dst`
--- receives the copied entries. Refused (an err): a directory copied into itself, a file onto
--- itself, a file over a directory or a directory over a file, fifos and devices.
---@param src string
---@param dst string
---@return sloth.Error? err
function fs.copy(src, dst) end

--- A new directory only its owner can enter, in the system's temporary directory (`TMPDIR`).
--- It is not removed for you (`fs.rm_r` it).
---@return string? path
---@return sloth.Error? err
function fs.tmpdir() end

--- A path in the temporary directory where nothing is now. Only a name: nothing is created,
--- so another process could take it first; `fs.tmpdir` is the safe way to a place of your own.
---@return string path
function fs.tmpname() end

return fs
