-- python: the Go tool's venv module over fake `python3`, `pip` and `python` (no network):
-- create, exists, pip, exec; the exact commands and where they ran; failures as error values
-- that keep stderr; a chain stops at its first failure; a missing python3 said as such.
local h = require("_helpers")

assert(python == require("python"), "python is the same table as a global and through require")

-- python3 -m venv DIR makes DIR/bin/activate and DIR/bin/{pip,python} (this same script).
local fakebin, calls = h.fakebin({ "python3" }, [[
case "$name" in
python3)
  case "$3" in *broken*) echo "Error: [Errno 13] Permission denied: '$3'" >&2; exit 1 ;; esac
  mkdir -p "$3/bin" && : > "$3/bin/activate" && cp "$0" "$3/bin/pip" && cp "$0" "$3/bin/python"
  ;;
pip)
  case "$*" in *no-such-package*)
    echo "Collecting no-such-package"
    echo "ERROR: No matching distribution found for no-such-package" >&2; exit 1 ;;
  esac
  echo "Successfully installed $2"
  ;;
python)
  printf '  hello from %s (%s args)  \n\n' "$1" "$#"
  echo "  a warning  " >&2
  ;;
esac
]])

local workdir = h.tmpdir()
local ENV = { PATH = fakebin .. ":" .. os.getenv("PATH") }

local function run(fn, env)
  local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = env or ENV, command = fn } } } })
  local result = summary.by_group.g.t
  assert(result.status == "succeeded", tostring(result.message))
  return result.outputs
end

run(function()
  -- A venv is named relative to the task's workdir; nothing is made yet.
  local venv = python.venv(".venv")
  assert(venv.path == workdir .. "/.venv", venv.path)
  assert(venv:exists() == false)
  assert(#h.calls(calls) == 0)

  -- create, then pip with a string (split at whitespace, as the Go module did), chained.
  local chained, err = venv:create():pip("install -r requirements.txt")
  assert(err == nil, tostring(err))
  assert(chained == venv and venv.success == true and venv.exit_code == 0)
  assert(venv.stdout == "Successfully installed -r", venv.stdout)
  assert(venv:exists() == true)
  local bin = workdir .. "/.venv/bin/"
  h.same_calls(h.calls(calls), {
    { "python3", workdir, "-m", "venv", workdir .. "/.venv" },
    { "pip", workdir, "install", "-r", "requirements.txt" },
  })

  -- pip with a list: each element one argument, spaces and quotes kept, nothing expanded.
  assert(select(2, venv:pip({ "install", "my pkg", "it's \"q\"", "$HOME" })) == nil)
  h.same_calls(h.calls(calls), { { "pip", workdir, "install", "my pkg", "it's \"q\"", "$HOME" } })

  -- exec: its result (trimmed, as the Go module), not the venv.
  local result, exec_err = venv:exec({ "app dir/main.py", "--name", "a b" })
  assert(exec_err == nil, tostring(exec_err))
  assert(result ~= venv and result.success == true and result.exit_code == 0)
  assert(result.stdout == "hello from app dir/main.py (3 args)", result.stdout)
  assert(result.stderr == "a warning", result.stderr)
  assert(result.command == bin .. "python 'app dir/main.py' --name 'a b'", result.command)
  h.same_calls(h.calls(calls), { { "python", workdir, "app dir/main.py", "--name", "a b" } })
  local string_result = venv:exec("main.py --port 8080")
  assert(string_result.stdout == "hello from main.py (3 args)", string_result.stdout)
  h.same_calls(h.calls(calls), { { "python", workdir, "main.py", "--port", "8080" } })
  assert(venv:result() == string_result)

  -- A failing pip: the failed result, and an error value naming the command, stderr kept.
  local failed, pip_err = venv:pip("install no-such-package")
  assert(failed ~= venv and failed.success == false and failed.exit_code == 1)
  assert(failed.stdout == "Collecting no-such-package", failed.stdout)
  assert(pip_err.kind == "exit" and pip_err.code == 1 and pip_err.call == "venv:pip", tostring(pip_err))
  assert(pip_err.stderr == "ERROR: No matching distribution found for no-such-package\n", pip_err.stderr)
  assert(tostring(pip_err) == "venv:pip: " .. bin .. "pip install no-such-package exited with code 1: "
    .. "ERROR: No matching distribution found for no-such-package", tostring(pip_err))
  assert(venv.success == false and select(2, venv:result()) == pip_err)
  -- A chain stops there, saying why; the venv itself stays usable.
  local ok, message = pcall(function() return venv:pip("install no-such-package"):pip("install x") end)
  assert(not ok and tostring(message):find("python: cannot call pip: the previous python call failed: venv:pip:", 1, true),
    tostring(message))
  assert(select(2, venv:pip("install x")) == nil and venv.success == true)
  h.calls(calls)

  -- A venv that cannot be made: the error keeps python's words.
  local broken = python.venv("broken venv")
  local broken_result, create_err = broken:create()
  assert(broken_result.success == false and broken_result.path == workdir .. "/broken venv")
  assert(tostring(create_err) == "venv:create: python3 -m venv '" .. workdir .. "/broken venv' exited with code 1: "
    .. "Error: [Errno 13] Permission denied: '" .. workdir .. "/broken venv'", tostring(create_err))
  -- pip or exec in a venv not created: said as such, not as a spawn error.
  local _, not_made = broken:exec("x.py")
  assert(not_made.kind == "io" and not_made.not_found == true)
  assert(tostring(not_made) == "venv:exec: " .. workdir .. "/broken venv/bin/python does not exist (is the venv created? "
    .. "venv:create())", tostring(not_made))

  -- Called wrongly: a Lua error naming the argument.
  ok, message = pcall(python.venv, "")
  assert(not ok and tostring(message):find("python.venv: expected a non-empty string for 'path', got an empty string",
    1, true), tostring(message))
  ok, message = pcall(venv.pip, venv, 42)
  assert(not ok and tostring(message):find("venv:pip: expected a string or a list of arguments for 'args', got number",
    1, true), tostring(message))
  return true
end)

-- Without python3 on PATH: said as such, not as a spawn error.
run(function()
  local result, err = python.venv("other"):create()
  assert(result.success == false and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`python3` is not installed (needed by venv:create)", tostring(err))
  return true
end, { PATH = h.tmpdir() })
