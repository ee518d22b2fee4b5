--- `docker`: the Go sloth-runner's docker module, over the real `docker` CLI (global `docker`,
--- or `require("docker")`).
---
--- Each call runs `docker` with an argument vector (no shell) in the task's workdir (so a
--- relative build context resolves against it), with the task's `env`, stopping with it
--- (timeout, cancellation), and returns the result `{ success, stdout, stderr, exit_code,
--- command, json? }` and an error value (nil on success) that names the command and keeps its
--- stdout and stderr. A missing or wrong argument is `nil, err` (kind "invalid", naming the
--- function and the field), as the Go module's `nil, msg`; nothing raises.
local cli = require("sloth.tool")

local M = {}

local function run(call, args)
  local argv = { "docker" }
  table.move(args, 1, #args, 2, argv)
  local result, err = cli.run(argv, { call = call })
  result.json = cli.json_of(result.stdout)
  return result, err
end

--- `docker args...`; `json` is stdout parsed when it is a JSON array or object (`inspect`).
function M.exec(args)
  local list, err = cli.strings("docker.exec", "args", args, true)
  if not list then
    return nil, err
  end
  return run("docker.exec", list)
end

--- `docker build -t TAG [-f DOCKERFILE] [--build-arg K=V]... PATH` (build args sorted by name).
function M.build(params)
  local call = "docker.build"
  local read = cli.reader(call, params)
  local tag, path = read:required("tag"), read:required("path")
  local dockerfile, build_args = read:optional("dockerfile"), read:assignments("build_args")
  if read.err then
    return nil, read.err
  end
  local args = { "build", "-t", tag }
  if dockerfile then
    table.move({ "-f", dockerfile }, 1, 2, #args + 1, args)
  end
  for _, assignment in ipairs(build_args) do
    table.move({ "--build-arg", assignment }, 1, 2, #args + 1, args)
  end
  args[#args + 1] = path
  return run(call, args)
end

--- `docker push TAG`.
function M.push(params)
  local call = "docker.push"
  local read = cli.reader(call, params)
  local tag = read:required("tag")
  if read.err then
    return nil, read.err
  end
  return run(call, { "push", tag })
end

--- `docker run [-d] [--name NAME] [-p PORT]... [-e K=V]... IMAGE` (env sorted by name).
function M.run(params)
  local call = "docker.run"
  local read = cli.reader(call, params)
  local image, name = read:required("image"), read:optional("name")
  local ports, env = read:strings("ports"), read:assignments("env")
  if read.err then
    return nil, read.err
  end
  local args = { "run" }
  if params.detach then
    args[#args + 1] = "-d"
  end
  if name then
    table.move({ "--name", name }, 1, 2, #args + 1, args)
  end
  for _, port in ipairs(ports) do
    table.move({ "-p", port }, 1, 2, #args + 1, args)
  end
  for _, assignment in ipairs(env) do
    table.move({ "-e", assignment }, 1, 2, #args + 1, args)
  end
  args[#args + 1] = image
  return run(call, args)
end

return M
