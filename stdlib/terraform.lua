--- `terraform`: the Go sloth-runner's terraform module, over the real `terraform` (global
--- `terraform`, or `require("terraform")`).
---
--- Each call runs `terraform` with an argument vector (no shell) in `params.workdir` (required,
--- as in the Go module; relative to the task's workdir), with the task's `env`, stopping with
--- it (timeout, cancellation). `init`, `plan`, `apply` and `destroy` return the result
--- `{ success, stdout, stderr, exit_code, command }` and an error value (nil on success) that
--- names the command and keeps its stdout and stderr; `output` returns the parsed value of
--- `terraform output -json` or `nil, err`. A missing or wrong argument is `nil, err` too
--- (kind "invalid", naming the function and the field); nothing raises.
local cli = require("sloth.tool")

local M = {}

--- A reader of `call`'s params (see `sloth.tool`), and the absolute workdir they name.
local function read_params(call, params)
  local read = cli.reader(call, params)
  local dir = read:required("workdir")
  return read, dir and cli.absolute(dir)
end

--- Runs `terraform args...` in `dir`; with `json`, `-json` and the lines it printed, parsed,
--- as `result.events`.
local function run(call, dir, args, json)
  local argv = { "terraform", args[1] }
  if json then
    argv[#argv + 1] = "-json"
  end
  table.move(args, 2, #args, #argv + 1, argv)
  local result, err = cli.run(argv, { call = call, cwd = dir })
  if json then
    local events = {}
    for line in result.stdout:gmatch("[^\n]+") do
      events[#events + 1] = cli.json_of(line)
    end
    result.events = events
  end
  return result, err
end

--- `terraform init -input=false -no-color`.
function M.init(params)
  local read, dir = read_params("terraform.init", params)
  if read.err then
    return nil, read.err
  end
  return run("terraform.init", dir, { "init", "-input=false", "-no-color" })
end

--- `terraform plan -input=false -no-color [-out=FILE]` (`-json` with `json = true`).
function M.plan(params)
  local call = "terraform.plan"
  local read, dir = read_params(call, params)
  local out = read:optional("out")
  if read.err then
    return nil, read.err
  end
  local args = { "plan", "-input=false", "-no-color" }
  if out then
    args[#args + 1] = "-out=" .. out
  end
  return run(call, dir, args, params.json)
end

--- `terraform apply -input=false -no-color [-auto-approve] [PLAN]` (`-json` with `json = true`).
function M.apply(params)
  local call = "terraform.apply"
  local read, dir = read_params(call, params)
  local plan = read:optional("plan")
  if read.err then
    return nil, read.err
  end
  local args = { "apply", "-input=false", "-no-color" }
  if params.auto_approve then
    args[#args + 1] = "-auto-approve"
  end
  if plan then
    args[#args + 1] = plan
  end
  return run(call, dir, args, params.json)
end

--- `terraform destroy -input=false -no-color [-auto-approve]` (`-json` with `json = true`).
function M.destroy(params)
  local call = "terraform.destroy"
  local read, dir = read_params(call, params)
  if read.err then
    return nil, read.err
  end
  local args = { "destroy", "-input=false", "-no-color" }
  if params.auto_approve then
    args[#args + 1] = "-auto-approve"
  end
  return run(call, dir, args, params.json)
end

--- `terraform output -json [NAME]`, parsed: one output's value, or every output as
--- `{ name = { value, type, sensitive } }`.
function M.output(params)
  local call = "terraform.output"
  local read, dir = read_params(call, params)
  local name = read:optional("name")
  if read.err then
    return nil, read.err
  end
  local args = { "output", "-json" }
  if name then
    args[#args + 1] = name
  end
  local result, run_err = run(call, dir, args)
  if run_err then
    return nil, run_err
  end
  return cli.decode(call, result)
end

return M
