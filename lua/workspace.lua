---@meta workspace
--- Workspaces as archives: what travels to an agent and what comes back. Available as the
--- global `workspace` and through `require("workspace")`. Relative directories resolve against
--- the running task's workdir. Everything here runs off the async threads. A failure raises a
--- `sloth.Error` whose `path` names the file or entry: "conflict", "no_space", "invalid" (a
--- crafted entry, past a limit, a corrupt archive, a bad pattern) or "io".
workspace = {}

---@class workspace.Archive
---@field path string the archive file (tar + gzip)
---@field size integer bytes
---@field entries integer entries in the archive
---@field files? integer regular files (packed workspaces)
---@field deleted string[] paths the task deleted (changes archives)
---@field skipped { path: string, kind: string }[] sockets and devices the task left, not carried (changes archives)

---@class workspace.Manifest
---@field files integer
---@field size integer
---@field entries integer
---@field root string the directory it describes
---@field skipped { path: string, kind: string }[] sockets and devices found, which a workspace does not carry
---@field setid string[] files with setuid or setgid bits

---@class workspace.Rules

--- Packs `dir`, leaving out `exclude` globs, the globs in `dir/.slothignore` and `.sloth/`.
--- Names are carried as bytes, modification times with nanoseconds, all twelve mode bits,
--- symlinks as they are (whatever they point at), hard links as hard links, named pipes as
--- pipes. The archive remembers what it shipped, for `apply`'s conflict check.
---@param dir string
---@param opts? { exclude?: string[] }
---@return workspace.Archive
function workspace.pack(dir, opts) end

--- Extracts `archive` into `dir` (created if missing; must be empty). Refuses, naming the
--- entry, absolute paths, `..`, anything written through a link (however links chain),
--- devices, hard links to anything but a file earlier in the archive, and archives past the
--- size or entry limit. Links themselves are created as they are; setuid and setgid bits of
--- files are cleared.
---@param archive workspace.Archive
---@param dir string
---@return { entries: integer, bytes: integer }
function workspace.unpack(archive, dir) end

--- The content of `dir` now (kinds, modes, times, content hashes); it keeps the rules it was
--- read with, for `changes`.
---@param dir string
---@param opts? { exclude?: string[] }
---@return workspace.Manifest
function workspace.snapshot(dir, opts) end

--- What `dir` leaves out — built-in exclusions, `exclude`, `dir/.slothignore` — fixed now, so
--- that `changes` judges a task's result by the rules it started with.
---@param dir string
---@param opts? { exclude?: string[] }
---@return workspace.Rules
function workspace.rules(dir, opts) end

--- Takes back what applies that died halfway (their master killed) left in `dir` — staging
--- directories at its root that an apply of this user made — as the next snapshot would.
--- A run does this for each group's workdir before its tasks start.
---@param dir string
---@return string[] notes one line for each apply taken back
function workspace.recover(dir) end

--- What changed in `dir` since `base`: an archive of the added and modified entries whose
--- `deleted` lists the removed ones. The rules are `rules`, else `exclude` read now, else
--- the base's. `output` names the archive file; without it the archive stays in memory while
--- small, else goes to a temporary file in `spill` (a directory, made if missing; default: the
--- run's scratch directory). `archive.path` writes an in-memory archive to a file. `pack =
--- false` looks at `dir` without packing anything: an empty archive.
---@param dir string
---@param base workspace.Manifest
---@param opts? { rules?: workspace.Rules, exclude?: string[], output?: string, spill?: string, pack?: boolean }
---@return workspace.Archive
function workspace.changes(dir, base, opts) end

--- The tree at `dir` as it is now, read as `changes` reads it (`base`'s rules; a file whose
--- identity `base` proves untouched is not read again): `snapshot`, to take changes against,
--- and how many paths differ from `base` (`count`), the first ten named (`paths`). No stat
--- cache is used and no dead apply looked for: for a tree of the agent's own.
---@param dir string
---@param base workspace.Manifest
---@return { snapshot: workspace.Manifest, count: integer, paths: string[] }
function workspace.rescan(dir, base) end

--- Applies `changes` to `dir`: staged aside, then renamed into place, never through a link.
--- With `base` (the archive or snapshot the task started from), a path changed both here and
--- by the task — checked before anything is touched and again right before each rename — is
--- a conflict (a `sloth.Error` of kind "conflict") and nothing is applied. A broken archive or a full disk changes nothing.
--- `kept` lists directories the task deleted that still hold entries it never saw. A change
--- of mode or time alone is made in place. Files keep setuid and setgid bits only with
--- `setuid`; otherwise the bits are cleared and the files listed in `stripped`. `unlinked`
--- lists files replaced here whose other names (hard links the task never saw) keep the old
--- file.
---@param dir string
---@param changes workspace.Archive
---@param opts? { base?: workspace.Archive|workspace.Manifest, setuid?: boolean }
---@return { written: integer, deleted: integer, kept: string[], stripped: string[], unlinked: string[] }
function workspace.apply(dir, changes, opts) end

return workspace
