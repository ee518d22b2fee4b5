//! A DNS server on 127.0.0.1 (UDP, port 0) for tests of agent pools: it answers SRV queries
//! (with the targets' A records as additional records), A queries, and AAAA queries with no
//! records, from a zone the test sets — or from a sequence of zones, the next one after each SRV
//! query — and NXDOMAIN for any other name. It counts the queries it answered.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// What the server knows: SRV records (name → targets and ports) and A records.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    srv: BTreeMap<String, Vec<(String, u16)>>,
    a: BTreeMap<String, Vec<Ipv4Addr>>,
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    /// An SRV record of `name` naming `target:port` (priority 10, weight 10).
    pub fn srv(mut self, name: &str, target: &str, port: u16) -> Self {
        self.srv.entry(key(name)).or_default().push((key(target), port));
        self
    }

    /// An A record.
    pub fn a(mut self, name: &str, ip: Ipv4Addr) -> Self {
        self.a.entry(key(name)).or_default().push(ip);
        self
    }

    fn knows(&self, name: &str) -> bool {
        self.srv.contains_key(name) || self.a.contains_key(name)
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub struct DnsServer {
    /// `127.0.0.1:PORT`, for a pool's `nameserver`.
    pub address: String,
    zones: Arc<Mutex<Zones>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    pub fn start(zone: Zone) -> Self {
        Self::start_changing(vec![zone])
    }

    /// Answers the first SRV query (and what follows it) from `zones[0]`, the next from
    /// `zones[1]`, …, the last zone ever after.
    pub fn start_changing(zones: Vec<Zone>) -> Self {
        assert!(!zones.is_empty(), "a zone");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        // How often the loop looks at `stop` while no query comes.
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
        let address = socket.local_addr().expect("its address").to_string();
        let zones = Arc::new(Mutex::new(Zones { list: zones, srv_answered: 0 }));
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zones, queries, stop) = (Arc::clone(&zones), Arc::clone(&queries), Arc::clone(&stop));
            std::thread::spawn(move || serve(&socket, &zones, &queries, &stop))
        };
        Self { address, zones, queries, stop, thread: Some(thread) }
    }

    /// Queries answered so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The zones a server answers from, in turn.
struct Zones {
    list: Vec<Zone>,
    srv_answered: usize,
}

fn serve(socket: &UdpSocket, zones: &Mutex<Zones>, queries: &AtomicUsize, stop: &AtomicBool) {
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((size, from)) = socket.recv_from(&mut buffer) else { continue };
        let Ok(query) = Message::from_vec(&buffer[..size]) else { continue };
        let zone = {
            let mut zones = zones.lock().expect("zones");
            let zone = zones.list[zones.srv_answered.min(zones.list.len() - 1)].clone();
            if query.queries.first().is_some_and(|question| question.query_type() == RecordType::SRV) {
                zones.srv_answered += 1;
            }
            zone
        };
        let Some(reply) = answer(&query, &zone) else { continue };
        if let Ok(bytes) = reply.to_vec() {
            queries.fetch_add(1, Ordering::SeqCst);
            let _ = socket.send_to(&bytes, from);
        }
    }
}

fn answer(query: &Message, zone: &Zone) -> Option<Message> {
    let question = query.queries.first()?;
    let name = key(&question.name().to_utf8());
    let mut reply = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(question.clone());
    if !zone.knows(&name) {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return Some(reply);
    }
    let owner = question.name().clone();
    match question.query_type() {
        RecordType::SRV => {
            for (target, port) in zone.srv.get(&name).into_iter().flatten() {
                let target_name = Name::from_str(&format!("{target}.")).ok()?;
                reply.add_answer(Record::from_rdata(
                    owner.clone(),
                    0,
                    RData::SRV(SRV::new(10, 10, *port, target_name.clone())),
                ));
                for ip in zone.a.get(target).into_iter().flatten() {
                    reply.add_additional(Record::from_rdata(target_name.clone(), 0, RData::A(A(*ip))));
                }
            }
        }
        RecordType::A => {
            for ip in zone.a.get(&name).into_iter().flatten() {
                reply.add_answer(Record::from_rdata(owner.clone(), 0, RData::A(A(*ip))));
            }
        }
        // No other records: an empty answer.
        _ => {}
    }
    Some(reply)
}
