//! Remote failures reach Lua as error values whose `kind` (and `cause`) a script decides on —
//! an agent nothing listens for, a wrong or missing token, a task past its timeout, a change
//! that conflicts — and that print exactly as they always did. Real agents, real gRPC; the Lua
//! runs in a VM with the native modules and the stdlib, as the engine's does.

use std::time::Duration;

use sloth_runner::runtime::{Runtime, RuntimeOptions, error};

use crate::support::agent::{Agent, dead_port};

/// Upper bound for one script (each waits on nothing unbounded).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Helpers every script gets: a temporary directory, files, and a request for the task `t` of
/// group `g` that runs `command` in a snapshot of `dir`.
const PRELUDE: &str = r#"
local function tmpdir()
  local out, _, err = exec.run({ "mktemp", "-d" })
  assert(err == nil, tostring(err))
  return (out:gsub("%s+$", ""))
end
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("a")
  f:close()
  return text
end
local function request(snapshot, command)
  local pipeline = string.format("TaskDefinitions = { g = { tasks = { { name = 't', command = %q } } } }", command)
  return { group = "g", task = "t", pipeline = "tasks.lua", scripts = { ["tasks.lua"] = pipeline },
    params = {}, deps = {}, values = {}, workspace = snapshot }
end
local function starts(text, prefix)
  assert(text:sub(1, #prefix) == prefix, string.format("%q does not start with %q", text, prefix))
end
"#;

/// Runs `script` (after [`PRELUDE`]) with `ADDRESS` set to `address`; the script asserts.
fn run_lua(address: &str, script: &str) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&tokio, async {
        let runtime = Runtime::new(&RuntimeOptions::default()).map_err(|e| error::describe(&e))?;
        let lua = runtime.lua();
        lua.globals().set("ADDRESS", address).map_err(|e| error::describe(&e))?;
        let chunk = lua.load(format!("{PRELUDE}\n{script}")).set_name("=remote_errors");
        match tokio::time::timeout(SCRIPT_TIMEOUT, chunk.call_async::<()>(())).await {
            Ok(result) => result.map_err(|e| error::describe(&e)),
            Err(_) => Err(format!("did not finish within {SCRIPT_TIMEOUT:?}")),
        }
    });
    if let Err(message) = outcome {
        panic!("the script failed:\n{message}");
    }
}

#[test]
fn an_agent_nothing_listens_for_is_unreachable() {
    let dead = dead_port();
    let address = format!("127.0.0.1:{}", dead.port);
    run_lua(
        &address,
        r#"
        local ok, err = pcall(agent.connect, ADDRESS)
        assert(not ok, "connected to nothing")
        assert(err.kind == "unreachable", "kind: " .. tostring(err.kind))
        assert(err.cause == "nothing_listens", "cause: " .. tostring(err.cause))
        assert(err.address == ADDRESS and err.agent == nil and err.call == "agent.connect")
        -- The text it always had.
        starts(tostring(err), "agent.connect: cannot reach the agent at " .. ADDRESS .. ": ")
        assert(tostring(err) == "agent.connect: " .. err.message)
        -- A client given the agent's name names it so.
        local _, named = pcall(agent.connect, ADDRESS, { name = "ghost" })
        assert(named.kind == "unreachable" and named.agent == "ghost", tostring(named))
        starts(tostring(named), "agent.connect: cannot reach agent 'ghost' (" .. ADDRESS .. "): ")
        "#,
    );
}

#[test]
fn a_wrong_or_missing_token_is_refused() {
    let agent = Agent::start(&["--token", "the-right-token"]);
    run_lua(
        &agent.address,
        r#"
        local wrong = agent.connect(ADDRESS, { token = "a-wrong-token" })
        local ok, err = pcall(wrong.info, wrong)
        assert(not ok and err.kind == "refused", tostring(err))
        assert(err.cause == "wrong_token", "cause: " .. tostring(err.cause))
        assert(tostring(err) == "agent.info: the agent at " .. ADDRESS .. " refused the call: wrong token", tostring(err))

        local ok, err = pcall(wrong.execute, wrong, request(workspace.snapshot(tmpdir()), "true"))
        assert(not ok and err.kind == "refused" and err.cause == "wrong_token", tostring(err))
        assert(tostring(err) == "agent.execute: the agent at " .. ADDRESS .. " refused the call: wrong token", tostring(err))

        local bare = agent.connect(ADDRESS)
        local ok, err = pcall(bare.info, bare)
        assert(not ok and err.kind == "refused" and err.cause == "token_required", tostring(err))
        assert(tostring(err) == "agent.info: the agent at " .. ADDRESS .. " refused the call: this agent requires a token",
          tostring(err))
        "#,
    );
}

#[test]
fn a_remote_task_past_its_timeout_is_a_timeout_and_stops_on_the_agent() {
    let agent = Agent::start(&[]);
    run_lua(
        &agent.address,
        r#"
        local core = require("sloth.core")
        local client = agent.connect(ADDRESS)
        local started = core.now()
        local ok, err = pcall(client.execute, client, request(workspace.snapshot(tmpdir()), "sleep 30"), { timeout = "300ms" })
        assert(not ok and err.kind == "timeout", tostring(err))
        assert(err.address == ADDRESS and err.cause == nil)
        assert(tostring(err) == "agent.execute: the agent at " .. ADDRESS .. " did not finish the task within 300ms", tostring(err))
        assert(core.now() - started < 20, "the call outlived its timeout")
        -- Cancelling the call stopped the task: the agent has nothing in flight (bounded wait).
        local deadline = core.now() + 15
        while client:info().tasks_in_flight > 0 and core.now() < deadline do
          core.sleep(0.05)
        end
        assert(client:info().tasks_in_flight == 0, "the task still runs on the agent")
        "#,
    );
}

#[test]
fn the_time_a_task_waits_for_a_slot_is_not_counted_against_the_calls_timeout() {
    let agent = Agent::start(&["--max-tasks", "1"]);
    run_lua(
        &agent.address,
        r#"
        local core = require("sloth.core")
        local client = agent.connect(ADDRESS)
        local go = tmpdir() .. "/go"
        -- The first task holds the only slot until `go` exists.
        local holder = core.spawn(function()
          return client:execute(request(workspace.snapshot(tmpdir()),
            "for i in $(seq 3000); do [ -e '" .. go .. "' ] && break; sleep 0.01; done"))
        end)
        local deadline = core.now() + 15
        while client:info().tasks_in_flight == 0 and core.now() < deadline do
          core.sleep(0.02)
        end
        assert(client:info().tasks_in_flight == 1, "the first task did not start")
        -- The second waits for the slot three times as long as its timeout, then runs at once.
        local told = {}
        local second = core.spawn(function()
          return client:execute(request(workspace.snapshot(tmpdir()), "echo ran"), { timeout = "300ms",
            on_queue = function(waiting) told[#told + 1] = waiting end })
        end)
        while #told == 0 and core.now() < deadline do
          core.sleep(0.02)
        end
        assert(told[1] == true, "the second task was not queued")
        core.sleep(0.9)
        write(go, "")
        local job_ok, result = core.wait(second)
        assert(job_ok and result.ok, "the queued task failed: " .. tostring(result))
        assert(#told == 2 and told[2] == false, "on_queue was told " .. #told .. " time(s)")
        local held_ok, held = core.wait(holder)
        assert(held_ok and held.ok, tostring(held))
        "#,
    );
}

#[test]
fn a_file_gone_before_its_content_is_sent_is_a_conflict_a_new_snapshot_settles() {
    let agent = Agent::start(&[]);
    run_lua(
        &agent.address,
        r#"
        local dir = tmpdir()
        exec.run({ "mkdir", dir .. "/tmpd" })
        write(dir .. "/tmpd/f", "saved\n")
        write(dir .. "/kept.txt", "kept\n")
        local base = workspace.snapshot(dir)
        -- Gone between the snapshot and the upload (an atomic save, a temporary directory
        -- cleaned): the task cannot have the workspace the snapshot named.
        exec.run({ "rm", "-r", dir .. "/tmpd" })
        local client = agent.connect(ADDRESS)
        local ok, err = pcall(client.execute, client, request(base, "cat tmpd/f kept.txt"))
        assert(not ok and err.kind == "conflict" and err.cause == "changed_while_sent", tostring(err))
        assert(tostring(err):find("tmpd/f: removed or replaced while the workspace was being sent", 1, true),
          tostring(err))
        assert(err.path == dir .. "/tmpd/f", tostring(err.path))
        -- A second name of the same content still there carries it: the task gets the snapshot.
        write(dir .. "/a.txt", "same\n")
        write(dir .. "/b.txt", "same\n")
        base = workspace.snapshot(dir)
        os.remove(dir .. "/a.txt")
        local result = client:execute(request(base, "cat a.txt b.txt"))
        assert(result.ok and result.outputs.stdout == "same\nsame\n", tostring(result.message))
        "#,
    );
}

#[test]
fn a_change_made_here_meanwhile_is_a_conflict() {
    let agent = Agent::start(&[]);
    run_lua(
        &agent.address,
        r#"
        local dir = tmpdir()
        write(dir .. "/shared.txt", "base\n")
        local base = workspace.snapshot(dir)
        local client = agent.connect(ADDRESS)
        local result = client:execute(request(base, "echo remote > shared.txt"))
        assert(result.ok, tostring(result.message))
        -- The same file changes here before the task's change is applied.
        write(dir .. "/shared.txt", "changed here\n")
        local ok, err = pcall(workspace.apply, dir, result.changes, { base = base })
        assert(not ok and err.kind == "conflict", tostring(err))
        assert(err.call == "workspace.apply" and err.address == nil)
        starts(tostring(err), "workspace.apply: conflict: changed both here and by the task, nothing was applied: ")
        assert(tostring(err):find("shared.txt", 1, true), tostring(err))
        assert(read(dir .. "/shared.txt") == "changed here\n", "the conflicting change was applied")
        "#,
    );
}

/// A tmpfs of `size` (as `mount -o size=` takes it) on a temporary directory, unmounted when
/// dropped; None where one cannot be mounted (not root, no `mount`): the test then skips.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn an_agent_whose_disk_fills_while_packing_the_changes_says_no_space() {
    let Some(disk) = SmallDisk::mount("4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let work_dir = disk.dir.path().to_str().expect("UTF-8 path").to_owned();
    let agent = Agent::start(&["--work-dir", &work_dir]);
    // 2.5 MB the task writes fit in the task's tree; their archive, incompressible, does not.
    run_lua(
        &agent.address,
        r#"
        local dir = tmpdir()
        write(dir .. "/kept.txt", "mine\n")
        local client = agent.connect(ADDRESS)
        local ok, err = pcall(client.execute, client,
          request(workspace.snapshot(dir), "head -c 2500000 /dev/urandom > big.bin"))
        assert(not ok, "a task whose changes could not be packed succeeded")
        assert(err.kind == "no_space", "kind: " .. tostring(err.kind) .. ": " .. tostring(err))
        assert(err.address == ADDRESS, tostring(err))
        local text = tostring(err)
        assert(text:find("no space left on device while collecting the task's changes", 1, true), text)
        assert(not text:find("stack traceback", 1, true), "a Lua traceback in the message: " .. text)
        assert(read(dir .. "/kept.txt") == "mine\n")
        assert(io.open(dir .. "/big.bin", "r") == nil, "something of the changes landed here")
        "#,
    );
}

#[test]
fn a_file_here_that_fails_a_call_is_named_with_the_agent_the_call_was_for() {
    let agent = Agent::start(&[]);
    run_lua(
        &agent.address,
        r#"
        local dir = tmpdir()
        write(dir .. "/gone.txt", "soon gone\n")
        local snapshot = workspace.snapshot(dir)
        -- Gone before its contents go up: the call fails on this side (the workspace changed
        -- under the snapshot: a new one may go).
        os.remove(dir .. "/gone.txt")
        local client = agent.connect(ADDRESS, { name = "box" })
        local ok, err = pcall(client.execute, client, request(snapshot, "true"))
        assert(not ok and err.kind == "conflict" and err.cause == "changed_while_sent", tostring(err))
        assert(err.address == ADDRESS and err.agent == "box", tostring(err))
        assert(err.path == dir .. "/gone.txt", "path: " .. tostring(err.path))
        starts(tostring(err), "agent.execute: agent 'box' (" .. ADDRESS .. "): ")
        assert(tostring(err):find("gone.txt", 1, true), tostring(err))

        local bare = agent.connect(ADDRESS)
        local ok, err = pcall(bare.execute, bare, request(snapshot, "true"))
        assert(not ok and err.address == ADDRESS and err.agent == nil, tostring(err))
        starts(tostring(err), "agent.execute: the agent at " .. ADDRESS .. ": ")
        "#,
    );
}
