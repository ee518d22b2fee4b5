-- pulumi: the Go tool's module over a fake `pulumi` (no network, no cloud): stacks' up,
-- preview, destroy, refresh, outputs, config, config_map, select; login before each command;
-- a venv's environment; install_plugin and login; failures as error values that keep stderr;
-- a missing pulumi said as such; and a pipeline using python and pulumi as the Go docs show.
local h = require("_helpers")
local exec = require("exec")

assert(pulumi == require("pulumi"), "pulumi is the same table as a global and through require")

local FAKE = [[
case "$name" in
python3)
  mkdir -p "$3/bin" && : > "$3/bin/activate" && cp "$0" "$3/bin/pip" && cp "$0" "$3/bin/python" ;;
pip)
  echo "Successfully installed $*" ;;
pulumi)
  case "$1" in
  login) echo "Logged in to sloth as user ($2)" ;;
  up|preview|destroy|refresh)
    if [ "$3" = "org/proj/broken" ]; then
      echo "Updating (org/proj/broken)"; echo "error: update failed: quota exceeded" >&2; exit 255
    fi
    echo "$1 of $3: Resources: 2 created"
    echo "VIRTUAL_ENV=$VIRTUAL_ENV"
    echo "PATH=$PATH"
    echo "warning: a deprecated resource" >&2 ;;
  stack)
    case "$2" in
    output)
      if [ "$5" = "org/proj/garbled" ]; then echo "no outputs here"; exit 0; fi
      printf 'Current stack outputs (3):\n{\n  "bucket": "my bucket",\n  "count": 3,\n  "nested": {"ids": [1, 2]}\n}\n' ;;
    select) echo "Created stack '$3'" ;;
    esac ;;
  config)
    case "$*" in *broken-key*) echo "error: invalid configuration key 'broken-key'" >&2; exit 255 ;; esac ;;
  plugin) echo "[$3 plugin $4] installing" >&2 ;;
  esac ;;
esac
]]

local fakebin, calls = h.fakebin({ "pulumi", "python3" }, FAKE)
local workdir = h.tmpdir()
local home = h.tmpdir()
local ENV = { PATH = fakebin .. ":" .. os.getenv("PATH"), HOME = home }
local project = workdir .. "/infra dir"
assert(select(3, exec.command("mkdir", "-p", project)) == nil)

local function run(fn, env)
  local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = env or ENV, command = fn } } } })
  local result = summary.by_group.g.t
  assert(result.status == "succeeded", tostring(result.message))
  return result.outputs
end

run(function()
  -- The workdir resolves against the task's; nothing runs yet.
  local stack = pulumi.stack("org/proj/dev", { workdir = "infra dir" })
  assert(stack.workdir == project and stack.name == "org/proj/dev", stack.workdir)
  assert(#h.calls(calls) == 0)

  -- up with every option: the exact command, in the stack's workdir; stdout and stderr apart.
  local result, err = stack:up({ yes = true, skip_preview = true, non_interactive = true,
    config = { ["app:region"] = "us east 1", ["app:ids"] = { 1, 2 } }, args = { "--parallel", "2" } })
  assert(err == nil, tostring(err))
  assert(result.success == true and result.code == 0)
  h.contains(result.stdout, "up of org/proj/dev: Resources: 2 created\n")
  assert(result.stderr == "warning: a deprecated resource\n", result.stderr)
  -- ~/.pulumi/bin comes first on PATH, as in the Go module; no venv, no VIRTUAL_ENV.
  h.contains(result.stdout, "\nPATH=" .. home .. "/.pulumi/bin:" .. fakebin .. ":")
  h.contains(result.stdout, "\nVIRTUAL_ENV=\n")
  h.same_calls(h.calls(calls), {
    { "pulumi", project, "up", "--stack", "org/proj/dev", "--yes", "--skip-preview", "--non-interactive",
      "--config", "app:ids=[1,2]", "--config", "app:region=us east 1", "--parallel", "2" },
  })

  assert(select(2, stack:preview()) == nil)
  assert(select(2, stack:destroy({ yes = true })) == nil)
  assert(select(2, stack:refresh({ yes = true })) == nil)
  h.same_calls(h.calls(calls), {
    { "pulumi", project, "preview", "--stack", "org/proj/dev" },
    { "pulumi", project, "destroy", "--stack", "org/proj/dev", "--yes" },
    { "pulumi", project, "refresh", "--stack", "org/proj/dev", "--yes" },
  })

  -- outputs: of this stack, parsed (what pulumi prints before the JSON is skipped).
  local outputs, outputs_err = stack:outputs()
  assert(outputs_err == nil, tostring(outputs_err))
  assert(outputs.bucket == "my bucket" and outputs.count == 3 and outputs.nested.ids[2] == 2)
  h.same_calls(h.calls(calls), { { "pulumi", project, "stack", "output", "--json", "--stack", "org/proj/dev" } })

  -- config, config_map and select return the stack, so they chain; values are one argument
  -- each, whatever they hold, after `--` (a value "-1" is not a flag); tables as JSON.
  local chained, config_err = stack:select():config("app:greeting", "it's \"quoted\" $HOME", true)
    :config("app:offset", -1):config_map({ ["app:b"] = { x = 1 }, ["app:a"] = "one" })
  assert(config_err == nil, tostring(config_err))
  assert(chained == stack and stack.success == true)
  h.same_calls(h.calls(calls), {
    { "pulumi", project, "stack", "select", "org/proj/dev", "--create" },
    { "pulumi", project, "config", "set", "--stack", "org/proj/dev", "--secret", "--", "app:greeting",
      "it's \"quoted\" $HOME" },
    { "pulumi", project, "config", "set", "--stack", "org/proj/dev", "--", "app:offset", "-1" },
    { "pulumi", project, "config", "set", "--stack", "org/proj/dev", "--", "app:a", "one" },
    { "pulumi", project, "config", "set", "--stack", "org/proj/dev", "--", "app:b", "{\"x\":1}" },
  })

  -- login (or login_url, as examples spell it): `pulumi login URL` before each command.
  local logged = pulumi.stack("org/proj/dev", { workdir = project, login_url = "s3://state bucket/dir" })
  assert(select(2, logged:preview()) == nil)
  h.same_calls(h.calls(calls), {
    { "pulumi", project, "login", "s3://state bucket/dir" },
    { "pulumi", project, "preview", "--stack", "org/proj/dev" },
  })

  -- A failed update: the failed result and an error value naming the command, stderr kept.
  local broken = pulumi.stack("org/proj/broken", { workdir = "infra dir", login = "file://state" })
  local failed, up_err = broken:up({ yes = true })
  assert(failed.success == false and failed.code == 255)
  assert(failed.stdout == "Updating (org/proj/broken)\n", failed.stdout)
  assert(failed.stderr == "error: update failed: quota exceeded\n", failed.stderr)
  assert(up_err.kind == "exit" and up_err.code == 255 and up_err.call == "stack:up")
  assert(up_err.stderr == failed.stderr and up_err.stdout == failed.stdout)
  assert(tostring(up_err) == "stack:up: pulumi up --stack org/proj/broken --yes exited with code 255: "
    .. "error: update failed: quota exceeded", tostring(up_err))
  h.calls(calls)

  -- A failed config stops a chain, saying why; the stack stays usable.
  local ok, message = pcall(function() return stack:config("broken-key", "v"):select() end)
  assert(not ok and tostring(message):find("pulumi: cannot call select: the previous pulumi call failed: stack:config: "
    .. "pulumi config set --stack org/proj/dev -- broken-key v exited with code 255: error: invalid configuration key", 1,
    true), tostring(message))
  h.calls(calls)
  local map_result, map_err = stack:config_map({ ["app:a"] = "one", ["broken-key"] = "v", ["z"] = "never" })
  assert(map_result.success == false and map_err.stderr == "error: invalid configuration key 'broken-key'\n")
  assert(#h.calls(calls) == 2, "config_map stops at the first failure")
  assert(select(2, stack:select()) == nil and stack.success == true)
  h.calls(calls)

  -- Outputs that are not JSON: an error value with what was printed.
  local none, garbled = pulumi.stack("org/proj/garbled", { workdir = project }):outputs()
  assert(none == nil and garbled.kind == "invalid" and garbled.stdout == "no outputs here\n", tostring(garbled))
  h.contains(tostring(garbled), "stack:outputs: pulumi stack output --json --stack org/proj/garbled printed no JSON")
  h.calls(calls)

  -- A workdir that is not there, or a venv that was never made: error values, not raises.
  local _, no_dir = pulumi.stack("org/proj/dev", { workdir = "nowhere" }):up()
  assert(no_dir.kind == "io" and tostring(no_dir) == "stack:up: " .. workdir .. "/nowhere is not a directory",
    tostring(no_dir))
  local _, no_venv = pulumi.stack("org/proj/dev", { workdir = project, venv_path = ".venv" }):up()
  assert(no_venv.kind == "io" and tostring(no_venv) == "stack:up: the venv " .. workdir .. "/.venv does not exist "
    .. "(no bin/activate)", tostring(no_venv))
  assert(#h.calls(calls) == 0)

  -- install_plugin and login run in the task's workdir.
  local plugin, plugin_err = pulumi.install_plugin("python", { version = "v3.100.0" })
  assert(plugin_err == nil and plugin.stderr == "[language plugin python] installing\n", plugin.stderr)
  local login, login_err = pulumi.login("file://" .. workdir .. "/state dir")
  assert(login_err == nil and login.stdout == "Logged in to sloth as user (file://" .. workdir .. "/state dir)\n")
  h.same_calls(h.calls(calls), {
    { "pulumi", workdir, "plugin", "install", "language", "python", "v3.100.0", "--reinstall" },
    { "pulumi", workdir, "login", "file://" .. workdir .. "/state dir" },
  })

  -- Called wrongly: a Lua error, as the Go module raised.
  ok, message = pcall(pulumi.stack, "org/proj/dev", {})
  assert(not ok and tostring(message):find("pulumi.stack: the 'workdir' option is required", 1, true), tostring(message))
  ok, message = pcall(pulumi.stack, "org/proj/dev", { workdir = project, venv = 42 })
  assert(not ok and tostring(message):find("pulumi.stack: expected a venv or a path for 'venv', got number", 1, true),
    tostring(message))
  return true
end)

-- Without pulumi on PATH (nor in ~/.pulumi/bin): said as such, not as a spawn error.
run(function()
  local result, err = pulumi.stack("org/proj/dev", { workdir = project }):up({ yes = true })
  assert(result.success == false and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`pulumi` is not installed (needed by stack:up)", tostring(err))
  local _, plugin_err = pulumi.install_plugin("python")
  assert(tostring(plugin_err) == "`pulumi` is not installed (needed by pulumi.install_plugin)", tostring(plugin_err))
  return true
end, { PATH = h.tmpdir(), HOME = home })

-- A pulumi installed the way its installer does it, in ~/.pulumi/bin, is found there.
local installed_home = h.tmpdir()
assert(select(3, exec.command("mkdir", "-p", installed_home .. "/.pulumi/bin")) == nil)
assert(select(3, exec.command("cp", fakebin .. "/pulumi", installed_home .. "/.pulumi/bin/pulumi")) == nil)
run(function()
  assert(select(2, pulumi.stack("org/proj/dev", { workdir = project }):preview()) == nil)
  h.same_calls(h.calls(calls), { { "pulumi", project, "preview", "--stack", "org/proj/dev" } })
  return true
end, { PATH = "/usr/bin:/bin", HOME = installed_home })

-- A pipeline as the Go tool's documentation writes one: a task makes the venv the Pulumi
-- program needs, the next deploys the stack with it, configured, and returns an output.
local TASK_ENV = { PATH = fakebin .. ":" .. os.getenv("PATH"), HOME = home }
local pipeline = {
  infra = {
    description = "Deploys the network stack with its Python program",
    workdir = workdir,
    tasks = {
      {
        name = "setup_venv",
        env = TASK_ENV,
        command = function()
          local venv = python.venv(".venv")
          if not venv:exists() then
            local created = venv:create()
            if not created.success then
              return false, "venv creation failed: " .. created.stderr
            end
          end
          local pip = venv:pip("install -r requirements.txt")
          if not pip.success then
            return false, "pip install failed: " .. pip.stderr
          end
          return true, "venv ready", { venv = venv }
        end,
      },
      {
        name = "deploy",
        depends_on = "setup_venv",
        env = TASK_ENV,
        command = function(params, deps)
          local stack = pulumi.stack("org/network/prod", {
            workdir = "infra dir",
            login = "file://" .. workdir .. "/state",
            venv = deps.setup_venv.venv,
          })
          stack:select():config_map({ ["network:region"] = "eu-west-1", ["network:tags"] = { team = "sloth" } })
          local result = stack:up({ yes = true })
          if not result.success then
            return false, "deploy failed: " .. result.stderr
          end
          local outputs, err = stack:outputs()
          if err then
            return false, "no outputs: " .. err
          end
          log.info("bucket: " .. outputs.bucket)
          return true, "deployed", { bucket = outputs.bucket, up = result.stdout }
        end,
      },
    },
  },
}
local summary = h.run(pipeline)
assert(summary.ok, tostring(summary.by_group.infra.deploy.message or summary.by_group.infra.setup_venv.message))
local deployed = summary.by_group.infra.deploy.outputs
assert(deployed.bucket == "my bucket")
-- The stack's commands ran with the venv's environment, its bin first on PATH.
local venv = workdir .. "/.venv"
h.contains(deployed.up, "VIRTUAL_ENV=" .. venv .. "\n")
h.contains(deployed.up, "PATH=" .. venv .. "/bin:" .. home .. "/.pulumi/bin:" .. fakebin .. ":")
local login = { "pulumi", project, "login", "file://" .. workdir .. "/state" }
h.same_calls(h.calls(calls), {
  { "python3", workdir, "-m", "venv", venv },
  { "pip", workdir, "install", "-r", "requirements.txt" },
  login,
  { "pulumi", project, "stack", "select", "org/network/prod", "--create" },
  login,
  { "pulumi", project, "config", "set", "--stack", "org/network/prod", "--", "network:region", "eu-west-1" },
  login,
  { "pulumi", project, "config", "set", "--stack", "org/network/prod", "--", "network:tags", "{\"team\":\"sloth\"}" },
  login,
  { "pulumi", project, "up", "--stack", "org/network/prod", "--yes" },
  login,
  { "pulumi", project, "stack", "output", "--json", "--stack", "org/network/prod" },
})
