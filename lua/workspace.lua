---@meta workspace
--- Workspaces as archives: what travels to an agent and what comes back. Available as the
--- global `workspace` and through `require("workspace")`. Relative directories resolve against
--- the running task's workdir. Everything here runs off the async threads.
workspace = {}

---@class workspace.Archive
---@field path string the archive file (tar + gzip)
---@field size integer bytes
---@field entries integer entries in the archive
---@field files? integer regular files (packed workspaces)
---@field deleted string[] paths the task deleted (changes archives)

---@class workspace.Manifest
---@field files integer
---@field size integer
---@field entries integer

--- Packs `dir`, leaving out `exclude` globs, the globs in `dir/.slothignore`, `.sloth/` and
--- symlinks pointing outside `dir`. The archive remembers what it shipped, for `apply`'s
--- conflict check.
---@param dir string
---@param opts? { exclude?: string[] }
---@return workspace.Archive
function workspace.pack(dir, opts) end

--- Extracts `archive` into `dir` (created if missing; must be empty). Refuses, naming the
--- entry, absolute paths, `..`, links pointing outside, writes through links, devices, and
--- archives past the size or entry limit.
---@param archive workspace.Archive
---@param dir string
---@return { entries: integer, bytes: integer }
function workspace.unpack(archive, dir) end

--- The content of `dir` now (kinds, modes, content hashes).
---@param dir string
---@param opts? { exclude?: string[] }
---@return workspace.Manifest
function workspace.snapshot(dir, opts) end

--- What changed in `dir` since `base`: an archive of the added and modified entries whose
--- `deleted` lists the removed ones. `output` names the archive file (default: a temp file).
---@param dir string
---@param base workspace.Manifest
---@param opts? { exclude?: string[], output?: string }
---@return workspace.Archive
function workspace.changes(dir, base, opts) end

--- Applies `changes` to `dir`: staged aside, then renamed into place. With `base` (the packed
--- archive the task started from), a path changed both here and by the task is a conflict and
--- nothing is applied. A broken archive changes nothing.
---@param dir string
---@param changes workspace.Archive
---@param opts? { base?: workspace.Archive }
---@return { written: integer, deleted: integer }
function workspace.apply(dir, changes, opts) end

return workspace
