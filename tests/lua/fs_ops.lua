-- fs: every function on real files. Readers return value, err; writers a single err (nil on
-- success); argument mistakes raise. Names and contents are bytes.
local h = require("_helpers")

local function raises(expected, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error mentioning " .. expected)
  assert(tostring(err):find(expected, 1, true), tostring(err))
end

local function sh(argv)
  local _, stderr, err = exec.run(argv)
  assert(err == nil, stderr)
end

local function octal(text)
  return math.tointeger(tonumber(text, 8))
end

local dir = assert(fs.tmpdir())

-- tmpdir: a fresh private directory each time; tmpname: a name only, each time another.
assert(fs.stat(dir).type == "dir" and fs.stat(dir).mode == octal("700"), "tmpdir is private")
local other = assert(fs.tmpdir())
assert(other ~= dir and fs.rm_r(other) == nil)
local name_a, name_b = fs.tmpname(), fs.tmpname()
assert(name_a ~= name_b and not fs.exists(name_a) and select("#", fs.tmpname()) == 1)

-- Names with spaces, newlines and non-ASCII; contents with NUL and bytes that are not UTF-8.
local odd = { "with space.txt", "two\nlines.txt", "café ☕.txt", ".hidden" }
local binary = "a\0b\255\n\0"
for _, name in ipairs(odd) do
  local err = fs.write(dir .. "/" .. name, binary)
  assert(err == nil, err)
end
for _, name in ipairs(odd) do
  assert(fs.read(dir .. "/" .. name) == binary, name)
end
local listed = assert(fs.ls(dir))
local expected = { ".hidden", "café ☕.txt", "two\nlines.txt", "with space.txt" }
table.sort(expected)
assert(#listed == 4, "one entry per name, newlines included: " .. #listed)
for i, name in ipairs(expected) do
  assert(listed[i] == name, string.format("%q ~= %q", tostring(listed[i]), name))
end

-- Writers answer one value: nil on success, an err naming the function and the path.
assert(select("#", fs.write(dir .. "/n.txt", "x")) == 1)
assert(fs.append(dir .. "/n.txt", binary) == nil and fs.read(dir .. "/n.txt") == "x" .. binary)
assert(fs.write(dir .. "/n.txt", 42) == nil and fs.read(dir .. "/n.txt") == "42", "numbers are written")
assert(fs.append(dir .. "/n.txt", 1.5) == nil and fs.read(dir .. "/n.txt") == "421.5")
local err = fs.write(dir .. "/missing/x.txt", "y")
assert(tostring(err) == "fs.write: " .. dir .. "/missing/x.txt: No such file or directory", tostring(err))
assert(err.kind == "io" and err.path == dir .. "/missing/x.txt" and err.call == "fs.write", "an error value")
assert(("failed: " .. err):find("No such file", 1, true), "used as its text")
err = fs.append(dir .. "/missing/x.txt", "y")
assert(err and err:find("fs.append: " .. dir .. "/missing/x.txt", 1, true), tostring(err))
local content, read_err = fs.read(dir .. "/missing")
assert(content == nil and read_err:find("fs.read: " .. dir .. "/missing: ", 1, true), read_err)

-- Argument mistakes raise, naming the function and the argument.
raises("fs.write: expected string for 'content', got table", fs.write, dir .. "/t.txt", {})
raises("fs.write: expected string for 'content', got nil", fs.write, dir .. "/t.txt")
raises("fs.read: expected string for 'path', got nil", fs.read)
raises("fs.copy: expected string for 'dst', got number", fs.copy, dir .. "/n.txt", 3)
raises("fs.rm_r: 'path' is an empty path", fs.rm_r, "")
raises("fs.glob: expected string for 'pattern', got nil", fs.glob)
raises("fs.glob: expected string for option 'root', got boolean", fs.glob, "*", { root = true })
assert(not fs.exists(dir .. "/t.txt"))

-- mkdir: with parents, fine when there, an err over a file.
assert(fs.mkdir(dir .. "/m/n/o") == nil and fs.mkdir(dir .. "/m/n/o") == nil)
err = fs.mkdir(dir .. "/n.txt/sub")
assert(err and err:find("fs.mkdir: " .. dir .. "/n.txt/sub", 1, true), tostring(err))
err = fs.mkdir(dir .. "/n.txt")
assert(tostring(err) == "fs.mkdir: " .. dir .. "/n.txt: exists and is not a directory", tostring(err))

-- stat: the path itself; exists: a dangling link exists (as a link).
local stat = assert(fs.stat(dir .. "/n.txt"))
assert(stat.type == "file" and stat.size == 5 and math.type(stat.mode) == "integer" and stat.target == nil)
assert(math.abs(stat.mtime - os.time()) < 60, "mtime in seconds: " .. stat.mtime)
sh({ "ln", "-s", "nowhere", dir .. "/dangling" })
assert(fs.exists(dir .. "/dangling"), "a dangling link exists")
stat = assert(fs.stat(dir .. "/dangling"))
assert(stat.type == "link" and stat.target == "nowhere")
assert(fs.stat(dir .. "/m").type == "dir")
local none, stat_err = fs.stat(dir .. "/none")
assert(none == nil and stat_err:find("fs.stat: " .. dir .. "/none", 1, true))
sh({ "mkfifo", dir .. "/fifo" })
assert(fs.stat(dir .. "/fifo").type == "other")

-- rm: a file, a link (not its target), an empty directory; not a full one.
assert(fs.rm(dir .. "/dangling") == nil and not fs.exists(dir .. "/dangling"))
err = fs.rm(dir .. "/m")
assert(err and err:find("fs.rm: " .. dir .. "/m", 1, true), tostring(err))
assert(fs.rm(dir .. "/m/n/o") == nil and not fs.exists(dir .. "/m/n/o"))
assert(fs.rm(dir .. "/fifo") == nil)
err = fs.rm(dir .. "/fifo")
assert(err and err:find("No such file or directory", 1, true), tostring(err))

-- rm_r: recursive, a missing path is fine, a link to a directory outside is removed as a link.
local outside = assert(fs.tmpdir())
assert(fs.write(outside .. "/keep.txt", "precious") == nil)
assert(fs.mkdir(dir .. "/tree/sub") == nil and fs.write(dir .. "/tree/sub/f", "f") == nil)
sh({ "ln", "-s", outside, dir .. "/tree/sub/out" })
sh({ "ln", "-s", outside, dir .. "/toplink" })
assert(fs.rm_r(dir .. "/tree") == nil and not fs.exists(dir .. "/tree"))
assert(fs.rm_r(dir .. "/toplink/") == nil and not fs.exists(dir .. "/toplink"), "a trailing slash does not follow")
assert(fs.read(outside .. "/keep.txt") == "precious", "rm_r followed a link out of the tree")
assert(fs.rm_r(dir .. "/never-was") == nil)
assert(fs.mkdir(dir .. "/dot") == nil)
err = fs.rm_r(dir .. "/dot/.")
assert(err and err:find("refusing", 1, true) and fs.exists(dir .. "/dot"), tostring(err))

-- copy: a tree with a link, modes and times kept; parents of dst created.
local src = dir .. "/src"
assert(fs.mkdir(src .. "/sub") == nil)
assert(fs.write(src .. "/run.sh", "#!/bin/sh\n") == nil and fs.write(src .. "/sub/secret", binary) == nil)
assert(fs.write(src .. "/sub/two\nlines", "nl") == nil)
sh({ "ln", "-s", "sub/secret", src .. "/link" })
sh({ "ln", "-s", outside, src .. "/outside" })
sh({ "chmod", "755", src .. "/run.sh" })
sh({ "chmod", "600", src .. "/sub/secret" })
sh({ "touch", "-d", "@1000000000", src .. "/run.sh", src .. "/sub/secret" })
sh({ "touch", "-h", "-d", "@1000000001", src .. "/link" })
sh({ "chmod", "750", src .. "/sub" })
sh({ "touch", "-d", "@1000000002", src .. "/sub" })
local dst = dir .. "/copies/deep/dst"
err = fs.copy(src, dst)
assert(err == nil, err)
assert(fs.read(dst .. "/sub/secret") == binary and fs.read(dst .. "/sub/two\nlines") == "nl")
for _, case in ipairs({ { "run.sh", "755", 1000000000 }, { "sub/secret", "600", 1000000000 }, { "sub", "750", 1000000002 } }) do
  local copied = assert(fs.stat(dst .. "/" .. case[1]))
  assert(copied.mode == octal(case[2]), case[1] .. ": mode " .. copied.mode)
  assert(copied.mtime == case[3], case[1] .. ": mtime " .. copied.mtime)
end
local link = assert(fs.stat(dst .. "/link"))
assert(link.type == "link" and link.target == "sub/secret" and link.mtime == 1000000001)
assert(fs.stat(dst .. "/outside").target == outside and fs.ls(dst .. "/outside")[1] == "keep.txt")
-- A file, and a file over an existing one; onto itself, into itself, over a directory: refused.
assert(fs.copy(src .. "/run.sh", dir .. "/one/run.sh") == nil and fs.stat(dir .. "/one/run.sh").mode == octal("755"))
assert(fs.copy(src .. "/sub/secret", dir .. "/one/run.sh") == nil and fs.read(dir .. "/one/run.sh") == binary)
err = fs.copy(src .. "/run.sh", src .. "/run.sh")
assert(err and err:find("fs.copy: " .. src .. "/run.sh", 1, true) and fs.read(src .. "/run.sh") == "#!/bin/sh\n", tostring(err))
err = fs.copy(src, src .. "/sub/inner")
assert(err and err:find("inside", 1, true) and not fs.exists(src .. "/sub/inner"), tostring(err))
err = fs.copy(src .. "/run.sh", dst .. "/sub")
assert(err and err:find("is a directory", 1, true), tostring(err))
err = fs.copy(dir .. "/nothing", dir .. "/x")
assert(err and err:find("fs.copy: " .. dir .. "/nothing: No such file or directory", 1, true), tostring(err))

-- glob: anchored, `**` crosses directories, linked directories are not entered, no match is {}.
local g = dir .. "/g"
for _, file in ipairs({ "a.txt", "b.log", "d/c.txt", "d/e/f.txt", "d/e/g.log", "d/sp ace.txt" }) do
  local path = g .. "/" .. file
  assert(fs.mkdir(path:match("^(.*)/")) == nil and fs.write(path, file) == nil)
end
sh({ "ln", "-s", outside, g .. "/d/out" })
local function joined(list)
  return table.concat(assert(list), ",")
end
assert(joined(fs.glob("*.txt", { root = g })) == "a.txt")
assert(joined(fs.glob("**/*.txt", { root = g })) == "a.txt,d/c.txt,d/e/f.txt,d/sp ace.txt", joined(fs.glob("**/*.txt", { root = g })))
assert(joined(fs.glob("d/**/*.log", { root = g })) == "d/e/g.log")
assert(joined(fs.glob("d/*", { root = g })) == "d/c.txt,d/e,d/out,d/sp ace.txt")
assert(joined(fs.glob("**/keep.txt", { root = g })) == "", "entered a linked directory")
local empty = fs.glob("nothing-*.bin", { root = g })
assert(type(empty) == "table" and #empty == 0, "no match is an empty array")
local bad, glob_err = fs.glob("d/[", { root = g })
assert(bad == nil and glob_err:find("fs.glob: invalid pattern 'd/['", 1, true), tostring(glob_err))
bad, glob_err = fs.glob("../*", { root = g })
assert(bad == nil and glob_err:find("'../*'", 1, true), tostring(glob_err))
bad, glob_err = fs.glob("*", { root = g .. "/none" })
assert(bad == nil and glob_err:find("fs.glob: " .. g .. "/none", 1, true), tostring(glob_err))
assert(joined(fs.glob("two\n*", { root = dir })) == "two\nlines.txt")

-- Relative paths resolve against the running task's workdir.
local workdir = h.tmpdir()
local seen = {}
local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", command = function()
  assert(fs.write("rel.txt", "r") == nil and fs.append("rel.txt", "!") == nil)
  assert(fs.mkdir("d/e") == nil and fs.copy("rel.txt", "d/e/copy.txt") == nil)
  seen.read = fs.read("d/e/copy.txt")
  seen.ls = table.concat(fs.ls(), ",")
  seen.ls_d = table.concat(fs.ls("d/e"), ",")
  seen.glob = table.concat(fs.glob("**/*.txt"), ",")
  seen.stat = fs.stat("rel.txt").type
  seen.exists = fs.exists("d/e/copy.txt")
  assert(fs.rm("d/e/copy.txt") == nil and fs.rm_r("d") == nil)
  return true, "done"
end } } } })
assert(summary.by_group.g.t.status == "succeeded", summary.by_group.g.t.message)
assert(seen.read == "r!" and seen.ls == "d,rel.txt" and seen.ls_d == "copy.txt", seen.ls)
assert(seen.glob == "d/e/copy.txt,rel.txt" and seen.stat == "file" and seen.exists, seen.glob)
assert(h.read(workdir .. "/rel.txt") == "r!" and not fs.exists(workdir .. "/d"))
assert(fs.rm_r(workdir) == nil)

assert(fs.rm_r(dir) == nil and fs.rm_r(outside) == nil and not fs.exists(dir))
