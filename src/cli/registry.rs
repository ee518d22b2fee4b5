//! `sloth-runner agent list|run|stop`: the agents a master's registry holds (see `master`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{ListFormat, USAGE_ERROR, session};
use crate::rpc::auth::Token;
use crate::rpc::registry::client::{MasterClient, MasterError};
use crate::rpc::registry::master_tls;
use crate::rpc::registry_proto::RegisteredAgent;
use crate::runtime::RuntimeOptions;

/// How long a call to the master may take.
const MASTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the master is and how to prove who we are to it.
#[derive(Debug, Args, Clone)]
pub struct MasterConnection {
    /// The master's address, host:port (https://host:port for one serving TLS).
    #[arg(long, env = "SLOTH_MASTER", value_name = "ADDR")]
    pub master: Option<String>,
    /// The master's token (its --token).
    #[arg(long, env = "SLOTH_MASTER_TOKEN", hide_env_values = true)]
    pub master_token: Option<String>,
    /// Trust this CA (PEM) for a master serving TLS (default: the system's roots).
    #[arg(long, value_name = "PEM", env = master_tls::CA_VARIABLE)]
    pub master_tls_ca: Option<PathBuf>,
    /// Present this certificate (PEM) to a master that requires client certificates.
    #[arg(long, value_name = "PEM", env = master_tls::CERT_VARIABLE)]
    pub master_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --master-tls-cert.
    #[arg(long, value_name = "PEM", env = master_tls::KEY_VARIABLE)]
    pub master_tls_key: Option<PathBuf>,
}

impl MasterConnection {
    /// A client of the master, or None when no master is given.
    pub fn client(&self) -> Option<Result<MasterClient, MasterError>> {
        let address = self.master.as_deref()?;
        let token = self.master_token.clone().and_then(Token::new);
        // (A certificate without its key is checked here rather than by clap, which would not
        // name the variable when the environment gave one of them.)
        let tls =
            master_tls::settings(self.master_tls_ca.clone(), self.master_tls_cert.clone(), self.master_tls_key.clone());
        Some(
            tls.map_err(MasterError::Settings)
                .and_then(|tls| MasterClient::new(address, token.as_ref(), tls.as_ref(), MASTER_TIMEOUT)),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// The agents registered with the master: name, address, labels, version, last seen, tasks.
    List(ListArgs),
    /// Run a shell command on a registered agent, found by name (output and exit code as `exec`).
    Run(RunArgs),
    /// Ask a registered agent to stop: it hears so on its next heartbeat and stops as on
    /// SIGTERM (running tasks get its --grace).
    Stop(StopArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    master: MasterConnection,
    /// A table for people, or one JSON document.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    output: ListFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    master: MasterConnection,
    /// The agent's name, as `agent list` shows it.
    #[arg(value_name = "NAME")]
    name: String,
    /// The command, run with `sh -c` on the agent (its words joined with spaces, as ssh does).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Send this directory as the command's workspace and apply its changes here after it succeeds.
    #[arg(long)]
    sync: bool,
    /// Give up after this long (e.g. "30s"), killing the command there.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    master: MasterConnection,
    /// The agent's name, as `agent list` shows it.
    #[arg(value_name = "NAME")]
    name: String,
}

pub fn execute(command: &RegistryCommand) -> ExitCode {
    let master = match command {
        RegistryCommand::List(args) => &args.master,
        RegistryCommand::Run(args) => &args.master,
        RegistryCommand::Stop(args) => &args.master,
    };
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // (The client's channel is made inside the runtime.)
    let entered = tokio.enter();
    let mut client = match master.client() {
        None => {
            eprintln!("error: which master? Give --master ADDR, or set SLOTH_MASTER");
            return ExitCode::from(USAGE_ERROR);
        }
        Some(Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
        Some(Ok(client)) => client,
    };
    match command {
        RegistryCommand::List(args) => match tokio.block_on(client.list()) {
            Ok(agents) => {
                print_list(&agents, args.output);
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        RegistryCommand::Stop(args) => match tokio.block_on(client.stop(&args.name)) {
            Ok(()) => {
                println!("{}: asked to stop (it stops on its next heartbeat)", args.name);
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        RegistryCommand::Run(args) => {
            let master_address = client.address().to_owned();
            let listed = tokio.block_on(client.list());
            drop(client);
            drop(entered);
            drop(tokio);
            let agents: Vec<_> = match listed {
                Ok(agents) => agents.into_iter().filter_map(|entry| entry.agent).collect(),
                Err(error) => return fail(&error),
            };
            let names: Vec<&str> = agents.iter().map(|agent| agent.name.as_str()).collect();
            match agents.iter().find(|agent| agent.name == args.name) {
                None => {
                    let known = if names.is_empty() {
                        "no agent is registered".to_owned()
                    } else {
                        format!("agents: {}", names.join(", "))
                    };
                    eprintln!(
                        "error: no agent named '{}' is registered with the master at {master_address} ({known})",
                        args.name
                    );
                    ExitCode::from(USAGE_ERROR)
                }
                Some(agent) => {
                    let options = json!({
                        "target": agent.address,
                        "agent": { "name": agent.name, "address": agent.address, "labels": agent.labels },
                        "command": args.command.join(" "),
                        "sync": args.sync,
                        "jobs": 1,
                        "timeout": args.timeout.map(|timeout| timeout.as_secs_f64()),
                    });
                    session::run_entry("exec", &options, &RuntimeOptions::from_env())
                }
            }
        }
    }
}

/// Exit 2 for a name the master does not know, 1 for a master that cannot be asked.
fn fail(error: &MasterError) -> ExitCode {
    eprintln!("error: {error}");
    match error {
        MasterError::NotFound { .. } | MasterError::Address(_) | MasterError::Settings(_) => {
            ExitCode::from(USAGE_ERROR)
        }
        _ => ExitCode::FAILURE,
    }
}

fn labels_text(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    if pairs.is_empty() { "-".to_owned() } else { pairs.join(",") }
}

fn print_list(agents: &[RegisteredAgent], output: ListFormat) {
    let records = agents.iter().filter_map(|entry| entry.agent.as_ref().map(|agent| (entry, agent)));
    match output {
        ListFormat::Json => {
            let list: Vec<_> = records
                .map(|(entry, agent)| {
                    json!({
                        "name": agent.name,
                        "address": agent.address,
                        "labels": agent.labels,
                        "version": agent.version,
                        "max_tasks": agent.max_tasks,
                        "tasks_in_flight": entry.tasks_in_flight,
                        "last_seen_ms": entry.last_seen_ms,
                        "heartbeat_ms": agent.heartbeat_ms,
                        "stopping": entry.stopping,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(list));
        }
        ListFormat::Table => {
            let mut rows = vec![[
                "NAME".to_owned(),
                "ADDRESS".to_owned(),
                "LABELS".to_owned(),
                "VERSION".to_owned(),
                "LAST SEEN".to_owned(),
                "TASKS".to_owned(),
            ]];
            for (entry, agent) in records {
                let seen = Duration::from_millis(entry.last_seen_ms);
                let seen = if seen < Duration::from_secs(1) {
                    format!("{}ms ago", seen.as_millis())
                } else {
                    format!("{}s ago", seen.as_secs())
                };
                let tasks = format!("{}/{}", entry.tasks_in_flight, agent.max_tasks);
                let tasks = if entry.stopping { format!("{tasks} (stopping)") } else { tasks };
                rows.push([
                    agent.name.clone(),
                    agent.address.clone(),
                    labels_text(&agent.labels),
                    agent.version.clone(),
                    seen,
                    tasks,
                ]);
            }
            let mut widths = [0; 6];
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            for row in &rows {
                let cells: Vec<String> =
                    row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
                println!("{}", cells.join("  ").trim_end());
            }
        }
    }
}
