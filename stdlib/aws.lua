--- `aws`: the Go sloth-runner's aws module, over the real `aws` CLI (global `aws`, or
--- `require("aws")`), in both the forms its code had (`aws.client{ profile }`, `:s3():sync`,
--- `:get_secret`) and the forms its documentation shows (`aws.exec`, `aws.s3.sync`,
--- `aws.secretsmanager.get_secret`).
---
--- With a profile (not ""), a command runs as `aws-vault exec PROFILE -- aws ...`, as the Go
--- code did; without, as `aws ...`. Commands run with an argument vector (no shell) in the
--- task's workdir (relative local paths resolve against it), with the task's `env`, stopping
--- with it (timeout, cancellation). Every call returns `value, err`: `err` an error value that
--- names the command and keeps its stdout and stderr; a missing or wrong argument is
--- `nil, err` (kind "invalid", naming the function and the field). Nothing raises, except a
--- method chained on a failed `:sync` (the chain stops there, as the Go code's raise did).
local cli = require("sloth.tool")

local M = {}

--- The profile given, or nil ("" is none, as in the Go examples), or `nil, err`.
local function profile_of(call, opts)
  if opts == nil then
    return false
  end
  return cli.optional(call, opts, "profile")
end

--- Runs `aws args...`, through aws-vault with a profile.
local function run(call, profile, args)
  local argv = profile and { "aws-vault", "exec", profile, "--", "aws" } or { "aws" }
  table.move(args, 1, #args, #argv + 1, argv)
  return cli.run(argv, { call = call })
end

--- `aws args...` as given; `json` is stdout parsed when it is a JSON array or object.
function M.exec(args, opts)
  local call = "aws.exec"
  local list, err = cli.strings(call, "args", args, true)
  if not list then
    return nil, err
  end
  if opts ~= nil and type(opts) ~= "table" then
    return cli.invalid(call, "opts", "expected a table for 'opts', got " .. type(opts))
  end
  local profile, profile_err = profile_of(call, opts)
  if profile == nil then
    return nil, profile_err
  end
  local result, run_err = run(call, profile, list)
  result.json = cli.json_of(result.stdout)
  return result, run_err
end

--- `aws s3 sync FROM TO [--delete]`: the result, or `nil, err`.
local function sync(call, profile, from, to, delete)
  local args = { "s3", "sync", from, to }
  if delete then
    args[#args + 1] = "--delete"
  end
  return run(call, profile, args)
end

--- `aws secretsmanager get-secret-value --secret-id ID --output json`: the SecretString, or
--- `nil, err`.
local function get_secret(call, profile, id)
  local result, err = run(call, profile, { "secretsmanager", "get-secret-value", "--secret-id", id, "--output", "json" })
  if err then
    return nil, err
  end
  local value, decode_err = cli.decode(call, result)
  if decode_err then
    return nil, decode_err
  end
  if type(value) ~= "table" or type(value.SecretString) ~= "string" then
    return nil, require("sloth.core").error_value("invalid",
      string.format("%s returned no SecretString (a binary secret?)", result.command),
      { call = call, command = result.command, stdout = result.stdout, stderr = result.stderr })
  end
  return value.SecretString
end

M.s3 = {}

--- The docs' `aws.s3.sync{ source, destination, profile?, delete? }` (`from`/`to` too): the
--- result on success, `nil, err` on failure (so the docs' `if not ok` sees it).
function M.s3.sync(params)
  local call = "aws.s3.sync"
  local read = cli.reader(call, params)
  local from, to = read:either("source", "from"), read:either("destination", "to")
  local profile = read:optional("profile")
  if read.err then
    return nil, read.err
  end
  local result, run_err = sync(call, profile, from, to, params.delete)
  if run_err then
    return nil, run_err
  end
  return result
end

M.secretsmanager = {}

--- The docs' `aws.secretsmanager.get_secret{ secret_id, profile? }`: the SecretString, or
--- `nil, err`.
function M.secretsmanager.get_secret(params)
  local call = "aws.secretsmanager.get_secret"
  local read = cli.reader(call, params)
  local id, profile = read:required("secret_id"), read:optional("profile")
  if read.err then
    return nil, read.err
  end
  return get_secret(call, profile, id)
end

local Client = {}
Client.__index = Client

local S3 = {}
S3.__index = S3

--- The code's `aws.client{ profile? }`: a client whose commands use that profile.
function M.client(opts)
  local call = "aws.client"
  if opts ~= nil and type(opts) ~= "table" then
    return cli.invalid(call, "opts", "expected a table for 'opts', got " .. type(opts))
  end
  local profile, err = profile_of(call, opts)
  if profile == nil then
    return nil, err
  end
  return setmetatable({ profile = profile or nil }, Client)
end

--- The client's S3: `:sync{ from, to, delete? }`.
function Client:s3()
  return setmetatable({ client = self, success = true, stdout = "", stderr = "" }, S3)
end

--- `aws secretsmanager get-secret-value`: the SecretString, or `nil, err`.
function Client:get_secret(secret_id)
  local call = "client:get_secret"
  local id, err = cli.required(call, { secret_id = secret_id }, "secret_id")
  if not id then
    return nil, err
  end
  return get_secret(call, self.profile, id)
end

--- `aws s3 sync FROM TO [--delete]` (`source`/`destination` too): the S3 object (chains, as
--- in the Go code) with the command's `success`, `stdout`, `stderr`; on failure the failed
--- result and the error.
function S3:sync(params)
  local call = "s3:sync"
  local read = cli.reader(call, params)
  local from, to = read:either("from", "source"), read:either("to", "destination")
  if read.err then
    return nil, read.err
  end
  local result, run_err = sync(call, self.client.profile, from, to, params.delete)
  self.success, self.stdout, self.stderr = result.success, result.stdout, result.stderr
  if run_err then
    return cli.failed(result, S3, "aws"), run_err
  end
  return self, nil
end

return M
