-- docker: the Go tool's module over the `docker` CLI, against a fake docker first on PATH that
-- logs its argv and cwd and prints what docker prints: exec, build, push, run with the
-- arguments in the Go module's order (maps sorted), the Go module's result table, parsed JSON
-- from `inspect`, failures as error values keeping stderr, missing arguments and CLI.
local h = require("_helpers")
local fake = require("_fake_cli")

assert(docker == require("docker"), "docker is the same table as a global and through require")

local fakes = fake.new({
  docker = [[
case "$1" in
  build)
    for arg in "$@"; do
      case "$arg" in
        *broken*) printf 'ERROR: failed to solve: failed to read dockerfile: open Dockerfile.missing: no such file or directory\n' >&2
          exit 1 ;;
      esac
    done
    printf '#0 building with "default" instance using docker driver\n#8 naming to docker.io/library/app:1.0 done\n' >&2 ;;
  push) printf 'The push refers to repository [registry.example.com/app]\n1.0: digest: sha256:4bd0e5ac5e47a8e4ab83c7b1aa3f1a9e5e1bb2a0cd6b8e4dfe3e6c7b2d2b4f10 size: 1570\n' ;;
  run)
    for last in "$@"; do :; done
    if [ "$last" = hang ]; then echo $$ > hang.pid; exec sleep 30; fi
    echo 3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e ;;
  inspect) cat <<'JSON'
[
    {
        "Id": "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d",
        "RepoTags": ["app:1.0"],
        "Config": {"Env": ["PATH=/usr/local/bin:/usr/bin"], "ExposedPorts": {"80/tcp": {}}}
    }
]
JSON
  ;;
  ps) printf 'CONTAINER ID   IMAGE     STATUS\n3f4e5d6c7b8a   app:1.0   Up 2 seconds\n' ;;
  *) printf 'docker: unknown command: docker %s\n\nRun '"'"'docker --help'"'"' for more information\n' "$1" >&2; exit 1 ;;
esac
]],
})

local workdir = h.tmpdir()

fake.task(workdir, fakes.env, function()
  -- build: -t, -f, build args sorted by name, the context last (relative to the task's workdir).
  local built, err = docker.build({ tag = "app:1.0", path = "./app dir", dockerfile = "docker/Dockerfile.prod",
    build_args = { VERSION = "1.0", GREETING = "it's \"here\"", WORKERS = 4 } })
  assert(err == nil, tostring(err))
  assert(built.success and built.exit_code == 0 and built.stdout == "")
  assert(built.stderr:find("naming to docker.io/library/app:1.0 done", 1, true), built.stderr)
  -- push, run, exec: the Go module's result, and `json` where docker printed JSON.
  local pushed = assert(docker.push({ tag = "registry.example.com/app:1.0" }))
  assert(pushed.stdout:find("digest: sha256:", 1, true) and pushed.json == nil)
  local ran = assert(docker.run({ image = "app:1.0", name = "web", detach = true, ports = { "8080:80", 8443 },
    env = { MODE = "prod", B = "x y" } }))
  assert(ran.stdout == "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e\n")
  assert(ran.command == "docker run -d --name web -p 8080:80 -p 8443 -e 'B=x y' -e MODE=prod app:1.0", ran.command)
  assert(assert(docker.run({ image = "alpine" })).success)
  local inspected = assert(docker.exec({ "inspect", "app:1.0" }))
  assert(inspected.json[1].RepoTags[1] == "app:1.0" and inspected.json[1].Config.ExposedPorts["80/tcp"] ~= nil)
  local ps = assert(docker.exec({ "ps" }))
  assert(ps.json == nil and ps.stdout:find("Up 2 seconds", 1, true))
  fake.expect(fakes.calls(), {
    { workdir, "docker", "build", "-t", "app:1.0", "-f", "docker/Dockerfile.prod", "--build-arg", [[GREETING=it's "here"]],
      "--build-arg", "VERSION=1.0", "--build-arg", "WORKERS=4", "./app dir" },
    { workdir, "docker", "push", "registry.example.com/app:1.0" },
    { workdir, "docker", "run", "-d", "--name", "web", "-p", "8080:80", "-p", "8443", "-e", "B=x y", "-e", "MODE=prod",
      "app:1.0" },
    { workdir, "docker", "run", "alpine" },
    { workdir, "docker", "inspect", "app:1.0" },
    { workdir, "docker", "ps" },
  })

  -- A non-zero exit: the result says so, the error names the command and keeps stderr.
  local failed, failure = docker.build({ tag = "app:broken", path = "." })
  assert(failed.success == false and failed.exit_code == 1 and failed.error == failure)
  assert(failure.kind == "exit" and failure.stderr:find("failed to solve", 1, true))
  assert(tostring(failure) == "docker.build: docker build -t app:broken . exited with code 1: ERROR: failed to solve: "
    .. "failed to read dockerfile: open Dockerfile.missing: no such file or directory", tostring(failure))
  local _, unknown = docker.exec({ "frobnicate" })
  assert(unknown.code == 1 and tostring(unknown):find("docker.exec: docker frobnicate exited with code 1: docker: unknown "
    .. "command: docker frobnicate\n\nRun 'docker --help'", 1, true), tostring(unknown))
  fakes.calls()

  -- A missing or wrong argument: nil and an error value naming the function and the field, as
  -- the Go module's `nil, msg`; nothing runs.
  local function invalid(text, field, fn, ...)
    local call_result, call_err = fn(...)
    assert(call_result == nil and call_err.kind == "invalid", tostring(call_err))
    assert(tostring(call_err) == text, tostring(call_err))
    assert(call_err.field == field)
  end
  invalid("docker.build: 'path' is required", "path", docker.build, { tag = "app:1.0" })
  invalid("docker.build: expected a non-empty string for 'tag', got an empty string", "tag", docker.build,
    { tag = "", path = "." })
  invalid("docker.build: expected 'build_args' to map names to strings, got 1 = string", "build_args", docker.build,
    { tag = "a", path = ".", build_args = { "X=1" } })
  invalid("docker.push: 'tag' is required", "tag", docker.push, {})
  invalid("docker.push: expected a table of parameters, got string", nil, docker.push, "app:1.0")
  invalid("docker.run: 'image' is required", "image", docker.run, { name = "web" })
  invalid("docker.run: expected a list of strings for 'ports', got string", "ports", docker.run,
    { image = "a", ports = "80:80" })
  invalid("docker.exec: expected a non-empty list of strings for 'args', got string", "args", docker.exec, "ps -a")
  fake.expect(fakes.calls(), {})
  return true
end)

-- Without docker on PATH: said as such, not as a spawn error.
fake.task(workdir, fake.no_tools(), function()
  local result, err = docker.push({ tag = "app:1.0" })
  assert(result.success == false and result.exit_code == -1 and err.not_found == true and err.kind == "io")
  assert(tostring(err) == "`docker` is not installed (needed by docker.push)", tostring(err))
  return true
end)

-- The task's timeout stops the command (and the task), as for any command a task runs.
local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", timeout = "1s", env = fakes.env,
  command = function()
    docker.run({ image = "hang" })
    return true
  end } } } })
local message = summary.by_group.g.t.message
assert(summary.by_group.g.t.status == "failed" and message:find("^timed out after 1"), message)
-- (The fake writes its pid as it starts; one killed before it got there left nothing to check.)
local pid = (h.read(workdir .. "/hang.pid") or ""):gsub("%s+$", "")
if pid ~= "" then
  assert(h.wait_until_dead(pid), "the hanging docker " .. pid .. " survived the timeout")
  fake.expect(fakes.calls(), { { workdir, "docker", "run", "hang" } })
end
