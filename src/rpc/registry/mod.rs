//! The master's registry of agents (`sloth.registry.v1.Registry`): agents register and send
//! heartbeats, operators list them and ask one to stop. In memory only: a restarted master
//! learns its agents again from their next heartbeats (answered NOT_FOUND, they register anew).

pub mod client;
mod hint;
pub mod master_tls;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::registry_proto::registry_server::Registry;
use super::registry_proto::{
    AgentRecord, HeartbeatRequest, HeartbeatResponse, LeaveRequest, LeaveResponse, ListRequest, ListResponse,
    RegisterRequest, RegisterResponse, RegisteredAgent, StopRequest, StopResponse,
};

/// Heartbeats an agent may miss before the master drops it.
pub const MISSED_HEARTBEATS: u32 = 3;

/// The shortest heartbeat interval the master believes (a zero would drop agents at once).
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct Entry {
    record: AgentRecord,
    in_flight: u32,
    last_seen: Instant,
    stopping: bool,
}

impl Entry {
    fn window(&self) -> Duration {
        Duration::from_millis(self.record.heartbeat_ms).max(MIN_HEARTBEAT) * MISSED_HEARTBEATS
    }
}

/// The `sloth.registry.v1.Registry` service.
#[derive(Debug, Default, Clone)]
pub struct RegistryService {
    agents: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl RegistryService {
    /// The registry, without the agents that missed their heartbeats (they go).
    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        agents.retain(|name, entry| {
            let alive = now.duration_since(entry.last_seen) <= entry.window();
            if !alive {
                tracing::info!(agent = %name, address = %entry.record.address, "dropped: missed {MISSED_HEARTBEATS} heartbeats");
            }
            alive
        });
        agents
    }

    fn not_registered(agents: &BTreeMap<String, Entry>, name: &str) -> Status {
        let known = if agents.is_empty() {
            "no agent is registered".to_owned()
        } else {
            format!("agents: {}", agents.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        Status::not_found(format!("no agent named '{name}' is registered ({known})"))
    }
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        let record = request.into_inner().agent.ok_or_else(|| Status::invalid_argument("no agent in the request"))?;
        if record.name.is_empty() {
            return Err(Status::invalid_argument("an agent registers with a name"));
        }
        if record.address.is_empty() {
            return Err(Status::invalid_argument(format!("agent '{}' registers without an address", record.name)));
        }
        let mut agents = self.live();
        // A name is one agent: a second one under it (another address) would take over the
        // first's heartbeats and its place in the list. The same agent registering again (it
        // restarted, or this master did) takes its place back.
        if let Some(holder) = agents.get(&record.name).filter(|holder| holder.record.address != record.address) {
            return Err(Status::already_exists(format!(
                "the name '{}' is the agent's at {} (seen {} ms ago): start this agent with another --name, or stop \
                 that one (it leaves the registry after {MISSED_HEARTBEATS} missed heartbeats)",
                record.name,
                holder.record.address,
                holder.last_seen.elapsed().as_millis()
            )));
        }
        tracing::info!(agent = %record.name, address = %record.address, version = %record.version, "registered");
        let entry = Entry { record, in_flight: 0, last_seen: Instant::now(), stopping: false };
        agents.insert(entry.record.name.clone(), entry);
        Ok(Response::new(RegisterResponse {}))
    }

    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let beat = request.into_inner();
        let mut agents = self.live();
        let Some(entry) = agents.get_mut(&beat.name) else {
            return Err(Self::not_registered(&agents, &beat.name));
        };
        if entry.stopping {
            // Told once: the agent stops, and leaves the registry now.
            tracing::info!(agent = %beat.name, "told to stop");
            agents.remove(&beat.name);
            return Ok(Response::new(HeartbeatResponse { stop: true }));
        }
        entry.last_seen = Instant::now();
        entry.in_flight = beat.tasks_in_flight;
        Ok(Response::new(HeartbeatResponse { stop: false }))
    }

    async fn list(&self, _request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let now = Instant::now();
        let agents = self
            .live()
            .values()
            .map(|entry| RegisteredAgent {
                agent: Some(entry.record.clone()),
                tasks_in_flight: entry.in_flight,
                last_seen_ms: u64::try_from(now.duration_since(entry.last_seen).as_millis()).unwrap_or(u64::MAX),
                stopping: entry.stopping,
            })
            .collect();
        Ok(Response::new(ListResponse { agents }))
    }

    async fn stop(&self, request: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        let name = request.into_inner().name;
        let mut agents = self.live();
        let Some(entry) = agents.get_mut(&name) else {
            return Err(Self::not_registered(&agents, &name));
        };
        tracing::info!(agent = %name, "stop asked: the agent hears it on its next heartbeat");
        entry.stopping = true;
        Ok(Response::new(StopResponse {}))
    }

    async fn leave(&self, request: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let LeaveRequest { name, address } = request.into_inner();
        let mut agents = self.live();
        if agents.get(&name).is_some_and(|entry| entry.record.address == address) {
            tracing::info!(agent = %name, %address, "left");
            agents.remove(&name);
        }
        Ok(Response::new(LeaveResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, heartbeat_ms: u64) -> AgentRecord {
        AgentRecord { name: name.into(), address: "127.0.0.1:1".into(), heartbeat_ms, ..Default::default() }
    }

    fn names(registry: &RegistryService) -> Vec<String> {
        registry.live().keys().cloned().collect()
    }

    #[tokio::test]
    async fn agents_are_listed_until_they_miss_three_heartbeats_or_hear_stop() {
        let registry = RegistryService::default();
        for (name, ms) in [("a", 60_000), ("b", 10)] {
            registry.register(Request::new(RegisterRequest { agent: Some(record(name, ms)) })).await.expect("register");
        }
        assert_eq!(names(&registry), ["a", "b"]);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(names(&registry), ["a"], "b missed three 10 ms heartbeats");
        let gone = registry.heartbeat(Request::new(HeartbeatRequest { name: "b".into(), tasks_in_flight: 0 })).await;
        assert_eq!(gone.expect_err("unknown").code(), tonic::Code::NotFound);

        registry.stop(Request::new(StopRequest { name: "a".into() })).await.expect("stop");
        let told = registry.heartbeat(Request::new(HeartbeatRequest { name: "a".into(), tasks_in_flight: 0 })).await;
        assert!(told.expect("heartbeat").into_inner().stop);
        assert!(names(&registry).is_empty());
        let missing = registry.stop(Request::new(StopRequest { name: "a".into() })).await.expect_err("unknown");
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn a_name_belongs_to_one_agent_while_it_lives() {
        let registry = RegistryService::default();
        let register = |record: AgentRecord| registry.register(Request::new(RegisterRequest { agent: Some(record) }));
        register(record("a", 60_000)).await.expect("first");
        // The same agent again (a restart): its place back.
        register(record("a", 60_000)).await.expect("the same address");
        let other = AgentRecord { address: "127.0.0.1:2".into(), ..record("a", 60_000) };
        let refused = register(other.clone()).await.expect_err("another agent under the name");
        assert_eq!(refused.code(), tonic::Code::AlreadyExists);
        assert!(refused.message().contains("127.0.0.1:1") && refused.message().contains("--name"), "{refused:?}");
        // Once the first has gone (missed its heartbeats), the name is free.
        register(record("b", 10)).await.expect("b");
        std::thread::sleep(Duration::from_millis(40));
        let moved = AgentRecord { address: "127.0.0.1:3".into(), ..record("b", 10) };
        register(moved).await.expect("b's name, free again");
    }
}
