//! `agent.spawn{ name, port, … }`: local agents for `run --spawn-agents`, stopped with the VM
//! that started them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use mlua::{Lua, Result as LuaResult, Table};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::lua_error;
use crate::modules::lua_args;

/// How long a spawned agent has to print its `listening on` line.
const SPAWN_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Agents this VM started; they are stopped when the VM's runtime goes away.
#[derive(Default)]
pub struct SpawnedAgents(RefCell<HashMap<u32, tokio::process::Child>>);

/// Stops the agents `agent.spawn` started in this VM and nobody stopped (a REPL line that was
/// interrupted while they served it).
pub fn stop_spawned(lua: &Lua) {
    drop(lua.remove_app_data::<SpawnedAgents>());
}

impl Drop for SpawnedAgents {
    /// The run ended without stopping them (Ctrl-C, an error): SIGTERM lets each agent cancel
    /// its tasks and remove its directories on its own; nobody waits for it here.
    fn drop(&mut self) {
        for (_, child) in self.0.borrow_mut().drain() {
            // Only a child still running has a pid; never signal pid 0 (our own group).
            if let Some(pid) = child.id().filter(|pid| *pid > 0) {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
            }
        }
    }
}

/// `agent.spawn{ name, port[, bind, token, labels] } -> { address, pid, stop = fn }`: starts
/// `sloth-runner agent` as a child process and waits for its `listening on` line.
pub(super) async fn spawn(lua: Lua, options: Table) -> LuaResult<Table> {
    lua_args::known_keys(&options, "agent.spawn", "option", &["name", "port", "bind", "token", "labels"])?;
    let name: String = options.get("name")?;
    let port: u16 = options.get("port")?;
    let bind: String = options.get::<Option<String>>("bind")?.unwrap_or_else(|| "127.0.0.1".to_owned());
    let token: Option<String> = options.get("token")?;
    let labels: Option<Table> = options.get("labels")?;
    let exe = std::env::current_exe().map_err(|e| lua_error("spawn", e))?;
    let mut command = tokio::process::Command::new(exe);
    command
        .args(["--quiet", "agent", "--port", &port.to_string(), "--bind", &bind, "--name", &name, "--grace", "2s"])
        // A pipe only this process writes to, held open with the child: its end (this process
        // gone, however it ended — `kill -9` runs no `Drop`) stops the agent.
        .arg("--until-stdin-closes")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its log on this terminal, past the status line when that is drawn.
        .stderr(if crate::status_line::is_on() { Stdio::piped() } else { Stdio::inherit() })
        // Its own process group: a Ctrl-C at the terminal reaches the master, which stops it.
        .process_group(0);
    if let Some(token) = token {
        command.env("SLOTH_AGENT_TOKEN", token);
    }
    if let Some(labels) = labels {
        let mut pairs = Vec::new();
        for pair in labels.pairs::<String, String>() {
            let (key, value) = pair?;
            pairs.push(format!("{key}={value}"));
        }
        if !pairs.is_empty() {
            pairs.sort();
            command.arg("--labels").arg(pairs.join(","));
        }
    }
    let mut child = command.spawn().map_err(|e| lua_error("spawn", format!("starting agent '{name}': {e}")))?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).split(b'\n');
            while let Ok(Some(mut line)) = lines.next_segment().await {
                line.push(b'\n');
                crate::status_line::write(crate::status_line::Stream::Stderr, &line);
            }
        });
    }
    let stdout = child.stdout.take().ok_or_else(|| lua_error("spawn", "no stdout"))?;
    let mut first = String::new();
    let read = tokio::time::timeout(SPAWN_READY_TIMEOUT, BufReader::new(stdout).read_line(&mut first)).await;
    let address = match read {
        Ok(Ok(_)) if first.starts_with("listening on ") => {
            first.trim_end().trim_start_matches("listening on ").to_owned()
        }
        _ => {
            let _ = child.kill().await;
            return Err(lua_error(
                "spawn",
                format!("agent '{name}' on port {port} did not start (first line: {:?})", first.trim_end()),
            ));
        }
    };
    // No pid: it has already exited (and signalling pid 0 would hit our own process group).
    let Some(pid) = child.id() else {
        return Err(lua_error("spawn", format!("agent '{name}' on port {port} exited as it started")));
    };
    if lua.app_data_ref::<SpawnedAgents>().is_none() {
        lua.set_app_data(SpawnedAgents::default());
    }
    if let Some(spawned) = lua.app_data_ref::<SpawnedAgents>() {
        spawned.0.borrow_mut().insert(pid, child);
    }
    let handle = lua.create_table()?;
    handle.set("address", address)?;
    handle.set("pid", pid)?;
    handle.set("name", name)?;
    handle.set(
        "stop",
        lua.create_async_function(move |lua, _: mlua::MultiValue| async move {
            let child = lua.app_data_ref::<SpawnedAgents>().and_then(|spawned| spawned.0.borrow_mut().remove(&pid));
            if let Some(child) = child {
                stop_child(child).await;
            }
            Ok(())
        })?,
    )?;
    Ok(handle)
}

/// SIGTERM, a grace period for the agent's own cleanup, then SIGKILL.
async fn stop_child(mut child: tokio::process::Child) {
    if let Some(pid) = child.id().filter(|pid| *pid > 0) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
