//! `sloth-runner agent`: serve tasks to masters over gRPC.
//!
//! The first line on stdout is `listening on ADDR` (with the real port for `-p 0`); with
//! `--metrics-addr`, the next is `metrics on ADDR`. Without a
//! token the agent only listens on loopback, unless `--insecure` says otherwise. SIGTERM or
//! Ctrl-C: stop accepting, give running tasks a grace period, cancel the rest, remove the
//! temporary directories, exit 0.
//!
//! With `--master ADDR` the agent registers with that master (`sloth-runner master`) and sends
//! it heartbeats; a master that is down is tried again with backoff, never a reason to exit;
//! `agent stop NAME` reaches the agent in the answer to a heartbeat and stops it as SIGTERM
//! does. `agent list|run|stop` (see `registry.rs`) are the operator's side.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tonic::transport::Server;

use super::USAGE_ERROR;
use super::registry::{MasterConnection, RegistryCommand};
use super::serving::{ServingArgs, refuse_unauthenticated};
use crate::rpc::auth::{RequireToken, Token};
use crate::rpc::proto::agent_server::AgentServer;
use crate::rpc::registry::client::announce;
use crate::rpc::registry_proto::AgentRecord;
use crate::rpc::server::{AgentIdentity, AgentService};
use crate::rpc::work_dir::WorkRoot;
use crate::runtime::RuntimeOptions;
use crate::runtime::agent_host::LuaTaskHandler;

const AGENT_HELP: &str = "\
Without a subcommand, `agent` is the daemon: `sloth-runner agent -p 50051 [--master ADDR]`.
The subcommands ask a master (`sloth-runner master`) about the agents registered with it:
  sloth-runner agent list --master 127.0.0.1:50053
  sloth-runner agent run web-1 -- uptime
  sloth-runner agent stop web-1
(--master defaults to SLOTH_MASTER, its token to SLOTH_MASTER_TOKEN, and --master-tls-ca,
--master-tls-cert, --master-tls-key to SLOTH_MASTER_TLS_CA, _CERT, _KEY.)";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = AGENT_HELP)]
pub struct AgentArgs {
    /// Ask a master about its registered agents (without one: run the agent).
    #[command(subcommand)]
    command: Option<RegistryCommand>,
    /// Port to listen on (0 picks a free one).
    #[arg(short, long, default_value_t = 50051)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The agent's name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Labels as k=v,k2=v2, for masters that pick agents by label.
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Tasks run at once; more wait their turn.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    max_tasks: u32,
    /// Where per-task temporary directories go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Shared secret every master must present.
    #[arg(long, env = "SLOTH_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    serving: ServingArgs,
    /// Most memory one task's Lua VM may hold, e.g. "256M"; a task past it fails with "Lua
    /// memory limit (…) exceeded" and the agent goes on.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    lua_memory_limit: u64,
    /// Run in a user namespace of the agent's own (mapping only its user and group), so that
    /// an agent that is not root can honour `workspace.same_path`. Tasks then see files of
    /// other users as owned by nobody, and setuid programs (sudo) do not raise privileges.
    #[arg(long)]
    user_namespace: bool,
    /// Most bytes of file contents the agent keeps between tasks (incremental sync), e.g.
    /// "512M" or "4G"; the oldest go first. The kept trees (--warm-trees) are held to as much
    /// again: at rest the agent's disk holds at most twice this.
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    cache_max: u64,
    /// Keep the content cache here, across restarts (default: inside the work directory,
    /// removed when the agent stops).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Trees kept between tasks, so that the next task of the same workspace writes only what
    /// differs (0: a fresh tree for every task). Together they hold at most --cache-max.
    #[arg(long, default_value_t = 8)]
    warm_trees: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks a free
    /// one, printed as `metrics on ADDR`). They tell no secrets, but say what the agent does:
    /// expose them only to your monitoring.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// How long running tasks may go on after SIGTERM before they are cancelled.
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    grace: Duration,
    /// Register with the master at ADDR (`--master`), with its token (`--master-token`, not
    /// the agent's own --token) and TLS settings.
    #[command(flatten)]
    master: MasterConnection,
    /// The address the master hands out for this agent (default: the address it listens on,
    /// or HOST_NAME:PORT when it listens on every interface; https://… when it serves TLS).
    #[arg(long, value_name = "HOST:PORT", requires = "master")]
    advertise: Option<String>,
    /// How often the agent tells the master it is there; the master drops it after three
    /// missed heartbeats.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = crate::duration::parse)]
    heartbeat: Duration,
    /// Stop, as on SIGTERM, when standard input reaches its end: an agent a master started
    /// (`run --spawn-agents`) ends with that master, however it ends (`kill -9` too).
    #[arg(long, hide = true)]
    until_stdin_closes: bool,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("label '{text}' is not key=value"))?;
    if key.is_empty() {
        return Err(format!("label '{text}' has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("invalid size '{text}': expected e.g. 512M or 4G"))?;
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("invalid size '{text}': unknown unit '{unit}'")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("invalid size '{text}': too large"))
}

/// Takes `SLOTH_AGENT_TOKEN` (and `SLOTH_MASTER_TOKEN`, for `--master`) out of this process's
/// environment once it is read: the tasks the agent runs (shell commands and Lua code alike)
/// must not find the token that lets masters in — which, when masters use one token for every
/// agent, would open the other agents too — nor the one that can stop any agent of a master.
#[allow(unsafe_code)]
fn forget_token_variable() {
    // SAFETY: called while the agent has a single thread (before its runtime, its task
    // threads and its companion exist): nothing reads the environment concurrently.
    unsafe {
        std::env::remove_var("SLOTH_AGENT_TOKEN");
        std::env::remove_var("SLOTH_MASTER_TOKEN");
    }
}

pub fn execute(args: AgentArgs) -> ExitCode {
    if let Some(command) = &args.command {
        return super::registry::execute(command);
    }
    let token = args.token.clone().and_then(Token::new);
    forget_token_variable();
    // Server TLS alone proves who the agent is, not who the master is: it takes a token or
    // client certificates to know who is sending.
    let authenticated = args.serving.authenticated(token.is_some());
    if let Err(code) = refuse_unauthenticated(
        args.bind,
        authenticated,
        args.serving.insecure,
        ("SLOTH_AGENT_TOKEN", "run commands here"),
    ) {
        return code;
    }
    // Before any thread starts: a process with threads cannot enter a user namespace.
    if args.user_namespace
        && let Err(error) = crate::task_view::enter_user_namespace()
    {
        eprintln!("error: --user-namespace: {error}");
        return ExitCode::FAILURE;
    }
    // Whatever happens to this process, its tasks' processes do not outlive it.
    if let Err(error) = crate::reaper::start() {
        eprintln!("warning: cannot start the companion that stops tasks' processes if this agent dies: {error}");
    }
    crate::memory::limit_arenas();
    // A blocking thread (the walks and builds of trees) gives back its heap's freed memory as
    // it ends after a while idle, a worker when an idle pass asks: nothing else reaches a
    // thread's heap (see `crate::memory`).
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_stop(crate::memory::collect_this_thread)
        .on_thread_park(crate::memory::collect_if_asked)
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let name = args.name.clone().unwrap_or_else(host_name);
    let memory_limit = usize::try_from(args.lua_memory_limit).ok();
    let handler = LuaTaskHandler::new(name.clone(), RuntimeOptions::from_env().stdlib, memory_limit);
    let (code, work_root) = tokio.block_on(serve(args, name, token, handler.clone()));
    // Tasks still running after the grace period are dropped with the runtime, which cancels
    // them; wait (bounded) for their threads to kill their processes, then remove their
    // directories.
    tokio.shutdown_timeout(Duration::from_secs(2));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handler.live_threads() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(work_root);
    code
}

/// Serves until stopped; returns the exit code and the work directory to remove last.
async fn serve(
    args: AgentArgs,
    name: String,
    token: Option<Token>,
    handler: LuaTaskHandler,
) -> (ExitCode, Option<WorkRoot>) {
    crate::rpc::incoming::raise_descriptor_limit();
    let listener = match tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}:{}: {error}", args.bind, args.port);
            return (ExitCode::FAILURE, None);
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("error: {error}");
            return (ExitCode::FAILURE, None);
        }
    };
    let work_parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    // Like any daemon's state directory, the work directory is made if it is not there yet;
    // what agents that died there left behind goes.
    let work_root = match WorkRoot::create(&work_parent) {
        Ok((root, removed)) => {
            for dead in removed {
                tracing::info!(dir = %dead.display(), "removed the work directory of an agent that died");
            }
            root
        }
        Err(error) => {
            eprintln!("error: cannot create the agent's work directory in {}: {error}", work_parent.display());
            return (ExitCode::FAILURE, None);
        }
    };
    // What a task made anew is told from what it wrote into by the file's birth where an
    // inode number is given again at once (see `workspace::pack`): said once, here.
    if std::fs::metadata(work_root.path()).and_then(|meta| meta.created()).is_err() {
        tracing::warn!(
            dir = %work_root.path().display(),
            "the work directory's filesystem keeps no birth times: a file a task removes and makes again may be \
             taken for one it wrote into, and keep its owner on the master"
        );
    }
    let identity = AgentIdentity {
        name: name.clone(),
        labels: args.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        max_tasks: args.max_tasks,
        work_dir: work_root.path().to_path_buf(),
        cache: match crate::workspace::BlobCache::new(
            args.cache_dir.clone().unwrap_or_else(|| work_root.path().join("cache")),
            args.cache_max,
        ) {
            Ok(cache) => cache,
            Err(error) => {
                eprintln!("error: cannot create the agent's cache: {error}");
                return (ExitCode::FAILURE, Some(work_root));
            }
        },
        limits: crate::workspace::Limits::default(),
        trees: if args.warm_trees == 0 {
            None
        } else {
            match crate::workspace::trees::TreePool::new(
                work_root.path().join("trees"),
                args.warm_trees,
                args.cache_max,
            ) {
                Ok(pool) => Some(Arc::new(pool)),
                Err(error) => {
                    eprintln!("error: cannot create the agent's tree pool: {error}");
                    return (ExitCode::FAILURE, Some(work_root));
                }
            }
        },
        principal: token.as_ref().map(|token| token.fingerprint().to_hex().to_string()),
    };
    let service = AgentService::new(identity, Arc::new(handler));
    let shutdown = service.shutdown_handle();
    let in_flight = Arc::clone(&service.stats().in_flight);
    let metrics = match args.metrics_addr {
        None => None,
        Some(metrics_addr) => match tokio::net::TcpListener::bind(metrics_addr).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("error: cannot listen on {metrics_addr} for --metrics-addr: {error}");
                return (ExitCode::FAILURE, Some(work_root));
            }
        },
    };
    let metrics_address = metrics.as_ref().and_then(|listener| listener.local_addr().ok());
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = metrics {
        let registry = crate::rpc::metrics::registry(service.stats());
        tokio::spawn(crate::rpc::metrics::serve(listener, registry, async {
            let _ = metrics_stopped.await;
        }));
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<AgentServer<AgentService>>().await;

    // A master that stops answering (stopped, cut off) is noticed within ~8 s, and its tasks
    // are cancelled with their processes: a ping every 3 s, 5 s to answer it.
    let builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(3)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)));
    let mut builder = match args.serving.with_tls(builder) {
        Ok(builder) => builder,
        Err(code) => return (code, None),
    };

    let stop_signal = match shutdown_signal(args.until_stdin_closes) {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("error: cannot handle signals: {error}");
            return (ExitCode::FAILURE, Some(work_root));
        }
    };

    // With --master: registered, heartbeats sent, until the master says stop (then `told`).
    let (told_to_stop, told) = tokio::sync::oneshot::channel::<()>();
    let announcer = match args.master.client() {
        None => None,
        Some(Err(error)) => {
            eprintln!("error: --master: {error}");
            return (ExitCode::from(USAGE_ERROR), Some(work_root));
        }
        Some(Ok(master)) => {
            let record = AgentRecord {
                name: name.clone(),
                address: advertised(&args, address),
                labels: args.labels.iter().cloned().collect(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                max_tasks: args.max_tasks,
                heartbeat_ms: u64::try_from(args.heartbeat.as_millis()).unwrap_or(u64::MAX).max(1),
            };
            let leaving = (master.clone(), record.name.clone(), record.address.clone());
            let task = tokio::spawn(async move {
                announce(master, record, in_flight).await;
                let _ = told_to_stop.send(());
            });
            Some((task, leaving))
        }
    };
    let stop_signal = async move {
        tokio::select! {
            () = stop_signal => {}
            // (An agent without a master is never told.)
            Ok(()) = told => {}
        }
    };

    // The readiness line: tests and `--spawn-agents` wait for it.
    println!("listening on {address}");
    if let Some(metrics_address) = metrics_address {
        println!("metrics on {metrics_address}");
    }
    let _ = std::io::stdout().flush();
    tracing::info!(agent = %name, %address, max_tasks = args.max_tasks, token = token.is_some(), tls = args.serving.tls_cert.is_some(), "agent ready");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let incoming = crate::rpc::incoming::incoming(listener, args.serving.tls_cert.is_some());
    let server = builder
        .add_service(health_service)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            AgentServer::new(service)
                .max_decoding_message_size(crate::rpc::MAX_MESSAGE)
                .max_encoding_message_size(crate::rpc::MAX_MESSAGE),
            RequireToken::new(token.as_ref()),
        ))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    // Scraped until the agent stops (its last counts included).
    let _metrics_stop = metrics_stop;
    tokio::select! {
        result = &mut server => {
            if let Err(error) = result {
                eprintln!("error: the agent stopped: {error}");
                return (ExitCode::FAILURE, Some(work_root));
            }
        }
        () = stop_signal => {
            tracing::info!(agent = %name, grace = ?args.grace, "stopping: no new tasks");
            if let Some((announcer, (mut master, name, address))) = announcer {
                announcer.abort();
                // Out of the master's list now rather than after three missed heartbeats; a
                // master that does not answer within a second is left to find out.
                let left = tokio::time::timeout(Duration::from_secs(1), master.leave(&name, &address)).await;
                if !matches!(left, Ok(Ok(()))) {
                    tracing::debug!(agent = %name, "could not tell the master this agent leaves");
                }
            }
            let _ = stop_tx.send(());
            if tokio::time::timeout(args.grace, &mut server).await.is_err() {
                tracing::warn!(agent = %name, "grace period over: cancelling running tasks");
                // Each master is told why its task ended, then the calls close.
                shutdown.cancel_running();
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut server).await;
            }
        }
    }
    (ExitCode::SUCCESS, Some(work_root))
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal right after the readiness line is not missed.
pub(super) fn shutdown_signal(until_stdin_closes: bool) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let stdin_closed = async {
            if until_stdin_closes {
                stdin_end().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
            () = stdin_closed => {
                tracing::info!("standard input closed: the master that started this agent is gone");
            }
        }
    })
}

/// Standard input's end (or its failure): read, and what comes dropped, on a thread of its own.
async fn stdin_end() {
    let (ended, end) = tokio::sync::oneshot::channel::<()>();
    let reading = std::thread::Builder::new().name("stdin".to_owned()).spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 256];
        while let Ok(1..) = std::io::stdin().lock().read(&mut buffer) {}
        let _ = ended.send(());
    });
    if reading.is_ok() {
        let _ = end.await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// The address the master hands out for this agent: `--advertise`, else the one it listens
/// on — the host's name in place of an unspecified address (0.0.0.0, ::) — with https:// when
/// it serves TLS.
fn advertised(args: &AgentArgs, bound: SocketAddr) -> String {
    if let Some(address) = &args.advertise {
        return address.clone();
    }
    let host_port =
        if bound.ip().is_unspecified() { format!("{}:{}", host_name(), bound.port()) } else { bound.to_string() };
    if args.serving.tls_cert.is_some() { format!("https://{host_port}") } else { host_port }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}
