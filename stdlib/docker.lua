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
  local ok, err = cli.params(call, params)
  if not ok then
    return nil, err
  end
  local tag, tag_err = cli.required(call, params, "tag")
  if not tag then
    return nil, tag_err
  end
  local path, path_err = cli.required(call, params, "path")
  if not path then
    return nil, path_err
  end
  local dockerfile, dockerfile_err = cli.optional(call, params, "dockerfile")
  if dockerfile == nil then
    return nil, dockerfile_err
  end
  local build_args, args_err = cli.assignments(call, "build_args", params.build_args)
  if not build_args then
    return nil, args_err
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
  local ok, err = cli.params(call, params)
  if not ok then
    return nil, err
  end
  local tag, tag_err = cli.required(call, params, "tag")
  if not tag then
    return nil, tag_err
  end
  return run(call, { "push", tag })
end

--- `docker run [-d] [--name NAME] [-p PORT]... [-e K=V]... IMAGE` (env sorted by name).
function M.run(params)
  local call = "docker.run"
  local ok, err = cli.params(call, params)
  if not ok then
    return nil, err
  end
  local image, image_err = cli.required(call, params, "image")
  if not image then
    return nil, image_err
  end
  local name, name_err = cli.optional(call, params, "name")
  if name == nil then
    return nil, name_err
  end
  local ports, ports_err = cli.strings(call, "ports", params.ports)
  if not ports then
    return nil, ports_err
  end
  local env, env_err = cli.assignments(call, "env", params.env)
  if not env then
    return nil, env_err
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
