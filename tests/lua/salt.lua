-- salt: the Go tool's module over fake `salt` and `salt-key` (no master, no network): targets
-- by expr_form, cmd and ping with their JSON parsed, result() as the Go examples read it, the
-- key helpers and wait_and_accept's bounded wait; failures as error values that keep stderr; a
-- missing salt said as such.
local h = require("_helpers")
local exec = require("exec")

assert(salt == require("salt"), "salt is the same table as a global and through require")

local fakebin, calls = h.fakebin({ "salt", "salt-key" }, [[
case "$name" in
salt)
  case "$*" in
  *down*)
    echo '{"down1": "Minion did not return. [No response]"}'
    echo "ERROR: Minions returned with non-zero exit code" >&2; exit 1 ;;
  *test.ping*) echo '{"web1": true, "web 2": true}' ;;
  *cmd.run*) printf '{"web1": "ran %s"}\n' "$#" ;;
  *) echo '{"web1": {"result": true}}' ;;
  esac ;;
salt-key)
  id=
  for arg in "$@"; do case "$arg" in --accept=*|--delete=*) id=${arg#*=} ;; esac; done
  case "$*" in
  *--list=all*) echo '{"minions": ["web1", "web 2"], "minions_pre": ["new-minion"], "minions_rejected": []}' ;;
  *--list=pre*)
    count=$(cat "$0.count" 2>/dev/null || echo 0); count=$((count + 1)); echo "$count" > "$0.count"
    if [ "$count" -ge "${PENDING_AFTER:-3}" ]; then echo '{"minions_pre": ["new-minion", "other"]}'
    else echo '{"minions_pre": []}'; fi ;;
  *--accept=ghost*) echo "The key glob 'ghost' does not match any unaccepted keys." ;;
  *--accept=locked*) echo "Permission denied: /etc/salt/pki/master/minions_pre/locked" >&2; exit 13 ;;
  *--accept=*|*--delete=*) printf '{"minions": ["%s"]}\n' "$id" ;;
  esac ;;
esac
]])

local workdir = h.tmpdir()
local ENV = { PATH = fakebin .. ":" .. os.getenv("PATH") }
assert(select(3, exec.command("mkdir", "-p", workdir .. "/salt conf")) == nil)
h.write(workdir .. "/salt conf/master", "interface: 127.0.0.1\n")

local function run(fn, env)
  local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = env or ENV, command = fn } } } })
  local result = summary.by_group.g.t
  assert(result.status == "succeeded", tostring(result.message))
  return result.outputs
end

run(function()
  -- cmd: one argument each, as given (quotes, spaces, `$` kept); glob targets take no flag.
  local client = salt.client()
  local target = client:target("web*")
  local result, err = target:cmd("cmd.run", "echo 'hi there' \"x\" $HOME")
  assert(err == nil, tostring(err))
  assert(result.success == true and result.code == 0 and result.stderr == "")
  assert(result.stdout == '{"web1": "ran 5"}\n' and result.data.web1 == "ran 5", result.stdout)
  assert(result.command == "salt --out=json --static 'web*' cmd.run 'echo '\\''hi there'\\'' \"x\" $HOME'", result.command)
  h.same_calls(h.calls(calls), {
    { "salt", workdir, "--out=json", "--static", "web*", "cmd.run", "echo 'hi there' \"x\" $HOME" },
  })
  -- The Go code's three values, through result() on the result or on the target.
  local stdout, stderr, none = result:result()
  assert(stdout == result.stdout and stderr == "" and none == nil)
  stdout = target:result()
  assert(stdout == result.stdout)

  -- A config directory (relative to the task's workdir), or the master's config file in it;
  -- expr_form picks salt's flag; numbers, booleans and tables (as JSON) are arguments too.
  local configured = salt.client({ config = "salt conf" })
  assert(configured.config == workdir .. "/salt conf")
  local pinged, ping_err = configured:target("web1,web 2", "list"):ping()
  assert(ping_err == nil and pinged.data.web1 == true and pinged.data["web 2"] == true)
  assert(salt.client({ config_path = "salt conf/master" }).config == workdir .. "/salt conf")
  assert(select(2, configured:target("os:Debian", "grain"):cmd("state.apply", "nginx", 2, true, { pillar = { port = 8080 } }))
    == nil)
  assert(select(2, salt.target("G@os:Debian and web*", "compound"):cmd("pkg.upgrade")) == nil)
  h.same_calls(h.calls(calls), {
    { "salt", workdir, "--out=json", "--config-dir=" .. workdir .. "/salt conf", "--static", "-L", "web1,web 2",
      "test.ping" },
    { "salt", workdir, "--out=json", "--config-dir=" .. workdir .. "/salt conf", "--static", "-G", "os:Debian",
      "state.apply", "nginx", "2", "true", '{"pillar":{"port":8080}}' },
    { "salt", workdir, "--out=json", "--static", "-C", "G@os:Debian and web*", "pkg.upgrade" },
  })

  -- As the Go examples chain it: salt.target(...):ping():result().
  local out, said, ping_failure = salt.target("web1"):ping():result()
  assert(ping_failure == nil and out == '{"web1": true, "web 2": true}\n' and said == "")
  h.calls(calls)

  -- A failure: the result (its JSON still parsed) and an error value naming the command.
  local failed, failure = salt.target("down*"):ping()
  assert(failed.success == false and failed.code == 1)
  assert(failed.data.down1 == "Minion did not return. [No response]")
  assert(failure.kind == "exit" and failure.code == 1 and failure.call == "target:cmd")
  assert(failure.stderr == "ERROR: Minions returned with non-zero exit code\n", failure.stderr)
  assert(tostring(failure) == "target:cmd: salt --out=json --static 'down*' test.ping exited with code 1: "
    .. "ERROR: Minions returned with non-zero exit code", tostring(failure))
  local _, failed_stderr, failed_err = failed:result()
  assert(failed_err == failure and failed_stderr == failure.stderr)
  h.calls(calls)

  -- Keys: list (every state there, empty when salt-key leaves it out), accept, delete.
  local keys, keys_err = salt.key.list()
  assert(keys_err == nil, tostring(keys_err))
  assert(keys.minions[2] == "web 2" and keys.minions_pre[1] == "new-minion")
  assert(#keys.minions_rejected == 0 and #keys.minions_denied == 0)
  local accepted, accept_err = salt.key.accept("new minion")
  assert(accept_err == nil and accepted.success and accepted.minions[1] == "new minion" and #accepted.minions == 1)
  local nothing, nothing_err = salt.key.accept("ghost")
  assert(nothing_err == nil and #nothing.minions == 0 and nothing.stdout:find("does not match", 1, true))
  local deleted = salt.key.delete("web 2", { config = "salt conf" })
  assert(deleted.minions[1] == "web 2")
  local _, locked = salt.key.accept("locked")
  assert(locked.kind == "exit" and locked.code == 13 and locked.stderr:find("Permission denied", 1, true))
  assert(tostring(locked) == "salt.key.accept: salt-key --out=json --yes --accept=locked exited with code 13: "
    .. "Permission denied: /etc/salt/pki/master/minions_pre/locked", tostring(locked))
  h.same_calls(h.calls(calls), {
    { "salt-key", workdir, "--out=json", "--list=all" },
    { "salt-key", workdir, "--out=json", "--yes", "--accept=new minion" },
    { "salt-key", workdir, "--out=json", "--yes", "--accept=ghost" },
    { "salt-key", workdir, "--out=json", "--config-dir=" .. workdir .. "/salt conf", "--yes", "--delete=web 2" },
    { "salt-key", workdir, "--out=json", "--yes", "--accept=locked" },
  })

  -- wait_and_accept: polls the pending keys until one is there (the third look), accepts it.
  local id, wait_err = salt.key.wait_and_accept({ interval = 0.01 })
  assert(wait_err == nil and id == "new-minion", tostring(wait_err))
  local pre = { "salt-key", workdir, "--out=json", "--list=pre" }
  h.same_calls(h.calls(calls), { pre, pre, pre, { "salt-key", workdir, "--out=json", "--yes", "--accept=new-minion" } })
  -- Waiting for one minion: the others are left pending.
  id = salt.key.wait_and_accept({ id = "other", interval = 0.01 })
  assert(id == "other")
  h.same_calls(h.calls(calls), { pre, { "salt-key", workdir, "--out=json", "--yes", "--accept=other" } })

  -- Called wrongly: a Lua error.
  local ok, message = pcall(client.target, client, "web1", "regex")
  assert(not ok and tostring(message):find("client:target: unknown expr_form 'regex' (expected compound, glob, grain,", 1,
    true), tostring(message))
  ok, message = pcall(salt.key.wait_and_accept, { timeout = "soon" })
  assert(not ok and tostring(message):find("salt.key.wait_and_accept: invalid 'timeout'", 1, true), tostring(message))
  return true
end)

-- No key comes: wait_and_accept gives up after its timeout, with a "timeout" error.
run(function()
  local started = require("sloth.core").now()
  local id, err = salt.key.wait_and_accept({ id = "late", timeout = 0.1, interval = 0.02 })
  assert(id == nil and err.kind == "timeout" and err.call == "salt.key.wait_and_accept", tostring(err))
  h.contains(tostring(err), "salt.key.wait_and_accept: no pending key of minion 'late' within ")
  assert(require("sloth.core").now() - started >= 0.1)
  local looks = h.calls(calls)
  assert(#looks >= 2 and looks[#looks].argv[2] == "--list=pre", #looks)
  return true
end, { PATH = ENV.PATH, PENDING_AFTER = "1000000" })

-- Without salt or salt-key on PATH: said as such, not as a spawn error.
run(function()
  local result, err = salt.target("web1"):ping()
  assert(result.success == false and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`salt` is not installed (needed by target:cmd)", tostring(err))
  local keys, key_err = salt.key.list()
  assert(keys == nil and tostring(key_err) == "`salt-key` is not installed (needed by salt.key.list)", tostring(key_err))
  local id, wait_err = salt.key.wait_and_accept({ timeout = 5 })
  assert(id == nil and tostring(wait_err) == "`salt-key` is not installed (needed by salt.key.wait_and_accept)")
  return true
end, { PATH = h.tmpdir() })
