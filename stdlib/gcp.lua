--- `gcp`: the Go sloth-runner's gcp module, over the real `gcloud` (global `gcp`, or
--- `require("gcp")`): the client chains its code had (`gcp.client{ project }:compute{ zone }
--- :instances():list()`, storage buckets, SQL instances, GKE clusters, service accounts) and
--- the `gcp.exec(args)` its documentation shows.
---
--- Commands run with an argument vector (no shell) in the task's workdir, with the task's
--- `env`, stopping with it (timeout, cancellation). A client's commands start
--- `gcloud --project PROJECT` (when it has one) and ask for `--format=json`. Every call
--- returns `value, err`: `err` an error value that names the command and keeps its stdout and
--- stderr; a missing or wrong argument is `nil, err` (kind "invalid", naming the function and
--- the field). Nothing raises, except a method chained on a failed service-account call (the
--- chain stops there, as the Go code's raise did).
local cli = require("sloth.tool")

local M = {}

--- Runs `gcloud [--project P] args...`: the result with `json` (stdout parsed when it is a
--- JSON array or object) and the error value.
local function run(call, project, args)
  local argv = { "gcloud" }
  if project then
    table.move({ "--project", project }, 1, 2, #argv + 1, argv)
  end
  table.move(args, 1, #args, #argv + 1, argv)
  local result, err = cli.run(argv, { call = call })
  result.json = cli.json_of(result.stdout)
  return result, err
end

--- `gcloud args...` as given; `json` is stdout parsed when it is a JSON array or object.
function M.exec(args)
  local list, err = cli.strings("gcp.exec", "args", args, true)
  if not list then
    return nil, err
  end
  return run("gcp.exec", nil, list)
end

local Client = {}
Client.__index = Client

--- `gcp.client{ project? }`.
function M.client(opts)
  local call = "gcp.client"
  if opts ~= nil and type(opts) ~= "table" then
    return cli.invalid(call, "opts", "expected a table for 'opts', got " .. type(opts))
  end
  local project, err = cli.optional(call, opts or {}, "project")
  if project == nil then
    return nil, err
  end
  return setmetatable({ project = project or nil }, Client)
end

--- A listing: `:list()` runs `gcloud [--project P] WHAT... list --format=json [extra...]`.
local Listing = {}
Listing.__index = Listing

local function listing(client, call, what, extra)
  return setmetatable({ client = client, call = call, what = what, extra = extra or {} }, Listing)
end

--- The listing's result, its JSON parsed as `result.json`; on failure the failed result and
--- the error.
function Listing:list()
  local args = {}
  table.move(self.what, 1, #self.what, 1, args)
  table.move({ "list", "--format=json" }, 1, 2, #args + 1, args)
  table.move(self.extra, 1, #self.extra, #args + 1, args)
  local result, err = run(self.call, self.client.project, args)
  if err == nil and result.json == nil then
    if result.stdout:find("%S") then
      err = require("sloth.core").error_value("invalid", result.command .. " printed what is not a JSON list",
        { call = self.call, command = result.command, stdout = result.stdout, stderr = result.stderr })
      result.error = err
    else
      -- (Nothing listed: some gcloud versions print nothing rather than `[]`.)
      result.json = {}
    end
  end
  return result, err
end

--- `client:compute{ zone? }`: `:instances()`.
function Client:compute(opts)
  if opts ~= nil and type(opts) ~= "table" then
    return cli.invalid("client:compute", "opts", "expected a table for 'opts', got " .. type(opts))
  end
  local zone, err = cli.optional("client:compute", opts or {}, "zone")
  if zone == nil then
    return nil, err
  end
  local client = self
  return {
    zone = zone or nil,
    --- `gcloud compute instances list --format=json [--zones ZONE]`.
    instances = function()
      return listing(client, "instances:list", { "compute", "instances" }, zone and { "--zones", zone } or nil)
    end,
  }
end

--- `client:storage()`: `:buckets()`.
function Client:storage()
  local client = self
  return {
    buckets = function()
      return listing(client, "buckets:list", { "storage", "buckets" })
    end,
  }
end

--- `client:sql()`: `:instances()`.
function Client:sql()
  local client = self
  return {
    instances = function()
      return listing(client, "instances:list", { "sql", "instances" })
    end,
  }
end

--- `client:gke()`: `:clusters()`.
function Client:gke()
  local client = self
  return {
    clusters = function()
      return listing(client, "clusters:list", { "container", "clusters" })
    end,
  }
end

local ServiceAccount = {}
ServiceAccount.__index = ServiceAccount

--- `client:service_account(name, project?)`: a service account of `project` (default the
--- client's; one of them is required), `email` NAME@PROJECT.iam.gserviceaccount.com.
function Client:service_account(name, project)
  local call = "client:service_account"
  local given, err = cli.required(call, { name = name }, "name")
  if not given then
    return nil, err
  end
  local chosen, project_err = cli.optional(call, { project = project }, "project")
  if chosen == nil then
    return nil, project_err
  end
  chosen = chosen or self.project
  if not chosen then
    return cli.invalid(call, "project",
      "'project' is required, in gcp.client{ project } or as client:service_account's second argument")
  end
  return setmetatable({ client = self, name = given, project = chosen,
    email = string.format("%s@%s.iam.gserviceaccount.com", given, chosen), success = true, stdout = "", stderr = "" },
    ServiceAccount)
end

--- A service-account command: the account (chains) with the command's `success`, `stdout`,
--- `stderr`, `json`; on failure the failed result and the error.
local function in_account(account, call, args, tolerated)
  local result, err = run(call, account.project, args)
  if err and tolerated and err.kind == "exit" and result.stderr:find(tolerated, 1, true) then
    result.success, err = true, nil
    result.existed = true
  end
  account.success, account.stdout, account.stderr, account.json = result.success, result.stdout, result.stderr, result.json
  if err then
    return cli.failed(result, ServiceAccount, "gcp"), err
  end
  return account, nil
end

--- `gcloud --project P iam service-accounts create NAME [--display-name D] --format=json`;
--- one that already exists is a success (as in the Go code).
function ServiceAccount:create(opts)
  local call = "sa:create"
  if opts ~= nil and type(opts) ~= "table" then
    return cli.invalid(call, "opts", "expected a table for 'opts', got " .. type(opts))
  end
  local display, err = cli.optional(call, opts or {}, "display_name")
  if display == nil then
    return nil, err
  end
  local args = { "iam", "service-accounts", "create", self.name }
  if display then
    table.move({ "--display-name", display }, 1, 2, #args + 1, args)
  end
  args[#args + 1] = "--format=json"
  return in_account(self, call, args, "already exists")
end

--- `gcloud --project P projects add-iam-policy-binding P --member M --role R --format=json`.
function ServiceAccount:add_iam_binding(opts)
  local call = "sa:add_iam_binding"
  local read = cli.reader(call, opts)
  local member, role = read:required("member"), read:required("role")
  if read.err then
    return nil, read.err
  end
  return in_account(self, call,
    { "projects", "add-iam-policy-binding", self.project, "--member", member, "--role", role, "--format=json" })
end

return M
