//! A real `sloth-runner agent` process on 127.0.0.1, port 0, for tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::binary;

/// How long an agent may take to print its `listening on` line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Agent {
    child: Child,
    pub address: String,
    log: tempfile::NamedTempFile,
    /// The lines the agent printed after `listening on`.
    lines: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl Agent {
    /// Starts `sloth-runner agent -p 0 --name test-agent ARGS...` and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(Command::new(binary()), args, env)
    }

    /// Starts the agent through `wrapper` (a command that runs its arguments, e.g. `setpriv
    /// --reuid=…`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Self {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(binary());
        Self::spawn(command, args, &[])
    }

    /// Starts the agent inside network namespace `namespace` (`ip netns exec`).
    pub fn start_in_namespace(namespace: &str, args: &[&str]) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace]).arg(binary());
        Self::spawn(command, args, &[])
    }

    /// Starts `sloth-runner agent -p 0 --name NAME ARGS...` with `env` and waits until it listens.
    pub fn start_named(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command.args(["agent", "-p", "0", "--name", name]);
        Self::launch(command, args, env)
    }

    /// Starts `sloth-runner master -p PORT ARGS...` (a master's registry: it prints its
    /// `listening on` line as an agent does) and waits until it listens.
    pub fn start_master(port: u16, args: &[&str]) -> Self {
        let mut command = Command::new(binary());
        command.args(["master", "-p", &port.to_string()]);
        Self::launch(command, args, &[])
    }

    fn spawn(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Self {
        command.args(["agent", "-p", "0", "--name", "test-agent"]);
        Self::launch(command, args, env)
    }

    fn launch(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = tempfile::NamedTempFile::new().expect("agent log file");
        command
            .args(args)
            .env_remove("SLOTH_AGENT_TOKEN")
            .env_remove("SLOTH_MASTER")
            .env_remove("SLOTH_MASTER_TOKEN")
            .env_remove("SLOTH_MASTER_TLS_CA")
            .env_remove("SLOTH_MASTER_TLS_CERT")
            .env_remove("SLOTH_MASTER_TLS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("agent log file"));
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting the agent");
        let stdout = child.stdout.take().expect("agent stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            // Every line, read on so that the agent never blocks on a full pipe.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let _ = tx.send(std::mem::take(&mut line));
            }
        });
        let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the agent did not print its address within {READY_TIMEOUT:?}")
        });
        let address = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the agent: {line:?}"))
            .to_owned();
        Self { child, address, log, lines: std::sync::Mutex::new(rx) }
    }

    /// The next line the agent prints on stdout after `listening on` (e.g. `metrics on ADDR`).
    pub fn next_line(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.recv_timeout(READY_TIMEOUT).expect("another line from the agent").trim_end().to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> &str {
        self.address.rsplit(':').next().expect("address has a port")
    }

    /// What the agent wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, then waits (bounded) for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.terminate();
        self.wait(Duration::from_secs(30))
    }

    /// SIGTERM, unless it has exited already (its pid may be someone else's by now).
    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            super::signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        }
    }

    /// SIGKILL, as a crash or a pulled plug would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the agent") {
                return status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the agent did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agent {
    /// SIGTERM first, so the agent removes its work directory; SIGKILL if it lingers.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on for as long as this lives: a TCP socket is bound to it
/// without listening, so a connection is refused and nothing else can take the port meanwhile
/// (as it could one bound and released).
pub struct DeadPort {
    _socket: std::os::fd::OwnedFd,
    pub port: u16,
}

pub fn dead_port() -> DeadPort {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};
    let socket = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("a socket");
    bind(std::os::fd::AsRawFd::as_raw_fd(&socket), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind port 0");
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&socket)).expect("its address");
    DeadPort { _socket: socket, port: bound.port() }
}

/// A loopback port nothing listens on now (bound, then released), for an agent a test starts
/// on it later.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Whether some live process's command line contains all of `needles`.
pub fn process_running(needles: &[&str]) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z'));
        !zombie && !cmdline.is_empty() && needles.iter().all(|needle| cmdline.contains(needle))
    })
}

/// A task the agent can load from the script shipped with it: group `g`, task `t`, `true`.
pub fn trivial_task_spec() -> sloth_runner::rpc::task_spec::TaskSpec {
    shell_task_spec("true")
}

/// A task the agent can load from the script shipped with it: group `g`, task `t`, running the
/// shell `command`.
pub fn shell_task_spec(command: &str) -> sloth_runner::rpc::task_spec::TaskSpec {
    sloth_runner::rpc::task_spec::TaskSpec {
        group: "g".into(),
        task: "t".into(),
        pipeline: "tasks.lua".into(),
        scripts: vec![(
            "tasks.lua".into(),
            format!("TaskDefinitions = {{ g = {{ tasks = {{ {{ name = 't', command = [==[{command}]==] }} }} }} }}")
                .into_bytes(),
        )],
        ..Default::default()
    }
}

/// Sends the trivial task as a hostile master would: `entries` (crafted wire entries) as its
/// workspace's manifest and `blobs` as the archive of contents, whatever the agent asks for.
/// The status the agent refuses it with (the task running is a test failure).
pub fn send_raw(agent: &Agent, entries: Vec<sloth_runner::rpc::proto::FileEntry>, blobs: Vec<u8>) -> tonic::Status {
    use sloth_runner::rpc::proto::agent_client::AgentClient as RawClient;
    use sloth_runner::rpc::proto::execute_request::Item;
    use sloth_runner::rpc::proto::execute_response::Event;
    use sloth_runner::rpc::proto::{ExecuteRequest, ManifestChunk, ManifestEnd, ScriptFile, TaskRequest, WorkspaceEnd};
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let mut client = RawClient::connect(format!("http://{}", agent.address)).await.expect("connect");
        let spec = trivial_task_spec();
        let (script_path, script) = spec.scripts[0].clone();
        let count = entries.len() as u64;
        let size = blobs.len() as u64;
        let messages = vec![
            Item::Task(TaskRequest {
                group: spec.group,
                task: spec.task,
                pipeline: spec.pipeline,
                scripts: 1,
                incremental: true,
                ..Default::default()
            }),
            Item::Script(ScriptFile { path: script_path, content: script }),
            Item::ManifestChunk(ManifestChunk { entries }),
            Item::ManifestEnd(ManifestEnd { entries: count }),
            Item::WorkspaceChunk(blobs.into()),
            Item::WorkspaceEnd(WorkspaceEnd { size }),
        ];
        let outbound = tokio_stream::iter(messages.into_iter().map(|item| ExecuteRequest { item: Some(item) }));
        let call = async {
            let mut inbound = client.execute(outbound).await?.into_inner();
            while let Some(message) = inbound.message().await? {
                if let Some(Event::Result(result)) = message.event {
                    return Ok::<_, tonic::Status>(format!("the task ran: {result:?}"));
                }
            }
            Ok("the call ended".to_owned())
        };
        match tokio::time::timeout(Duration::from_secs(30), call).await.expect("the agent answered in time") {
            Ok(outcome) => panic!("a hostile workspace was accepted: {outcome}"),
            Err(status) => status,
        }
    })
}
