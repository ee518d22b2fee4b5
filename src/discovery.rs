//! The members of an agent pool, found through DNS: `dns+srv://NAME` (every SRV record of the
//! name: a host and a port per instance) or `dns://NAME:PORT` (every A and AAAA record of the
//! name, on that port), asked of the system's resolvers (/etc/resolv.conf) or of one
//! nameserver — or through a master's registry: `sloth://HOST:PORT` (every agent registered
//! with `sloth-runner master` there, at the address it advertised; asked as `agent list` asks,
//! with the `SLOTH_MASTER_TOKEN` and `SLOTH_MASTER_TLS_*` variables). Every query has a timeout.
//! No mlua: `modules/agent.rs` is the Lua façade.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// What a discovery URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `dns+srv://NAME`: the SRV records of NAME.
    Srv { name: String },
    /// `dns://NAME:PORT`: the A and AAAA records of NAME, each on PORT.
    Address { name: String, port: u16 },
    /// `sloth://HOST:PORT`: the agents registered with the master there.
    Registry { master: String },
}

impl Query {
    /// Reads `dns+srv://NAME` or `dns://NAME:PORT`.
    pub fn parse(url: &str) -> Result<Self, DiscoveryError> {
        let invalid = |reason: &str| DiscoveryError::Invalid { url: url.to_owned(), reason: reason.to_owned() };
        let checked_name = |name: &str| -> Result<String, DiscoveryError> {
            let name = name.trim_end_matches('.');
            if name.is_empty() || name.contains(['/', ':', '@', '?', '#', ' ']) {
                return Err(invalid("expected a DNS name"));
            }
            Ok(name.to_owned())
        };
        if let Some(rest) = url.strip_prefix("dns+srv://") {
            return Ok(Query::Srv { name: checked_name(rest)? });
        }
        if let Some(rest) = url.strip_prefix("dns://") {
            let (name, port) = rest.rsplit_once(':').ok_or_else(|| invalid("dns:// needs a port: dns://NAME:PORT"))?;
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
            return Ok(Query::Address { name: checked_name(name)?, port });
        }
        if let Some(rest) = url.strip_prefix("sloth://") {
            let (host, port) =
                rest.rsplit_once(':').ok_or_else(|| invalid("sloth:// needs a port: sloth://HOST:PORT"))?;
            if port.parse::<u16>().ok().filter(|port| *port > 0).is_none() {
                return Err(invalid("the port is not a number from 1 to 65535"));
            }
            if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
                return Err(invalid("expected a master's HOST:PORT"));
            }
            return Ok(Query::Registry { master: rest.to_owned() });
        }
        Err(invalid(
            "expected dns+srv://NAME (SRV records), dns://NAME:PORT (A/AAAA records) or sloth://HOST:PORT (a master's \
             registry)",
        ))
    }
}

/// One instance the records name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// What tells the member apart: the SRV record's target, or the address of an A/AAAA record.
    pub host: String,
    pub port: u16,
    /// Where to connect.
    pub ip: IpAddr,
    /// The name its certificate is expected to carry: the SRV target, or the `dns://` name.
    pub server_name: String,
}

impl Member {
    /// `ip:port` (`[ip]:port` for IPv6).
    pub fn address(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }
}

/// Where to ask, and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// One nameserver instead of the system's.
    pub nameserver: Option<SocketAddr>,
    /// Each query's limit.
    pub timeout: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid discovery URL '{url}': {reason}")]
    Invalid { url: String, reason: String },
    /// NXDOMAIN, or a name without records of the type asked.
    #[error("{url}: no {what} records for {name}")]
    NoRecords { url: String, what: &'static str, name: String },
    #[error("{url}: no answer for {name} from {server} within {timeout:?}")]
    Timeout { url: String, name: String, server: String, timeout: Duration },
    #[error("{url}: asking {server} for {name}: {message}")]
    Failed { url: String, name: String, server: String, message: String },
}

/// The members `url` names, in a stable order (SRV priority, then host and port; addresses in
/// order). A SRV target is reached at its lowest address.
pub async fn discover(url: &str, options: &Options) -> Result<Vec<Member>, DiscoveryError> {
    let query = Query::parse(url)?;
    let resolver = resolver(options).map_err(|error| DiscoveryError::Failed {
        url: url.to_owned(),
        name: String::new(),
        server: server(options),
        message: format!("reading the system's DNS configuration: {error}"),
    })?;
    let asking = Asking { url, options, resolver: &resolver };
    match query {
        Query::Address { name, port } => {
            let ips = asking.addresses(&name).await?;
            Ok(ips.into_iter().map(|ip| Member { host: ip.to_string(), port, ip, server_name: name.clone() }).collect())
        }
        Query::Srv { name } => asking.srv(&name).await,
        Query::Registry { master } => registered(url, &master, options).await,
    }
}

/// The agents registered with the master at `master`, asked with the token in
/// `SLOTH_MASTER_TOKEN` and over TLS as the `SLOTH_MASTER_TLS_*` variables say (as `agent list`
/// asks), each at the address it advertised — a host name looked up — and named by its
/// registered name.
async fn registered(url: &str, master: &str, options: &Options) -> Result<Vec<Member>, DiscoveryError> {
    use crate::rpc::registry::client::MasterClient;
    let failed = |message: String| DiscoveryError::Failed {
        url: url.to_owned(),
        name: "its agents".to_owned(),
        server: format!("the master at {master}"),
        message,
    };
    let token = std::env::var("SLOTH_MASTER_TOKEN").ok().and_then(crate::rpc::auth::Token::new);
    let tls = crate::rpc::registry::master_tls::from_env().map_err(failed)?;
    let mut client = MasterClient::new(master, token.as_ref(), tls.as_ref(), options.timeout)
        .map_err(|error| failed(error.to_string()))?;
    let listed = client.list().await.map_err(|error| failed(error.to_string()))?;
    let mut members = Vec::new();
    for agent in listed.into_iter().filter(|agent| !agent.stopping).filter_map(|agent| agent.agent) {
        // (An agent serving TLS advertises https://: the pool's `tls` settings say how to trust it.)
        let written = agent.address.trim_start_matches("http://").trim_start_matches("https://");
        let Some((host, port)) = written.rsplit_once(':') else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        let host = host.trim_matches(['[', ']']);
        let lookup = tokio::time::timeout(options.timeout, tokio::net::lookup_host((host, port)));
        let Ok(Ok(mut addresses)) = lookup.await else {
            tracing::warn!(agent = %agent.name, address = %agent.address, "a registered agent's address does not resolve: left out");
            continue;
        };
        let Some(found) = addresses.next() else { continue };
        members.push(Member { host: agent.name, port, ip: found.ip(), server_name: host.to_owned() });
    }
    if members.is_empty() {
        return Err(failed("no agent is registered with it".to_owned()));
    }
    members.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    Ok(members)
}

fn server(options: &Options) -> String {
    options.nameserver.map_or_else(|| "the system's resolvers".to_owned(), |server| server.to_string())
}

/// A resolver without a cache of its own worth keeping: one per discovery, so that asking
/// again (on failover) asks the server again.
fn resolver(options: &Options) -> Result<TokioResolver, NetError> {
    let mut builder = match options.nameserver {
        Some(server) => {
            let mut nameserver = NameServerConfig::udp_and_tcp(server.ip());
            for connection in &mut nameserver.connections {
                connection.port = server.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![nameserver]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()?,
    };
    let opts = builder.options_mut();
    opts.timeout = options.timeout;
    opts.attempts = 1;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.cache_size = 0;
    if options.nameserver.is_some() {
        // That server's answers, not /etc/hosts'.
        opts.use_hosts_file = ResolveHosts::Never;
    }
    builder.build()
}

struct Asking<'a> {
    url: &'a str,
    options: &'a Options,
    resolver: &'a TokioResolver,
}

impl Asking<'_> {
    /// Bounds `lookup` by the timeout (the resolver's own covers one exchange; this covers
    /// the whole, search domains included) and names what failed.
    async fn bounded<T>(
        &self,
        name: &str,
        what: &'static str,
        lookup: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, DiscoveryError> {
        let timed_out = || DiscoveryError::Timeout {
            url: self.url.to_owned(),
            name: name.to_owned(),
            server: server(self.options),
            timeout: self.options.timeout,
        };
        // Room for the search domains of resolv.conf, each a query of its own.
        let limit = self.options.timeout.saturating_mul(4);
        match tokio::time::timeout(limit, lookup).await {
            Err(_) => Err(timed_out()),
            Ok(Ok(found)) => Ok(found),
            Ok(Err(error)) if error.is_nx_domain() || error.is_no_records_found() => {
                Err(DiscoveryError::NoRecords { url: self.url.to_owned(), what, name: name.to_owned() })
            }
            Ok(Err(NetError::Timeout)) => Err(timed_out()),
            Ok(Err(error)) => Err(DiscoveryError::Failed {
                url: self.url.to_owned(),
                name: name.to_owned(),
                server: server(self.options),
                message: error.to_string(),
            }),
        }
    }

    /// Every A and AAAA record of `name`, sorted, without repeats.
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DiscoveryError> {
        let found = self.bounded(name, "A or AAAA", self.resolver.lookup_ip(name)).await?;
        let mut ips: Vec<IpAddr> = found.iter().collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            return Err(DiscoveryError::NoRecords {
                url: self.url.to_owned(),
                what: "A or AAAA",
                name: name.to_owned(),
            });
        }
        Ok(ips)
    }

    /// Every SRV record of `name`, each target's address taken from the answer's additional
    /// records when it has them, else asked.
    async fn srv(&self, name: &str) -> Result<Vec<Member>, DiscoveryError> {
        let found = self.bounded(name, "SRV", self.resolver.srv_lookup(name)).await?;
        let mut records: Vec<(u16, String, u16)> = found
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => {
                    Some((srv.priority, srv.target.to_utf8().trim_end_matches('.').to_owned(), srv.port))
                }
                _ => None,
            })
            // Target "." says the service is not there.
            .filter(|(_, target, port)| !target.is_empty() && *port > 0)
            .collect();
        records.sort();
        records.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
        if records.is_empty() {
            return Err(DiscoveryError::NoRecords { url: self.url.to_owned(), what: "SRV", name: name.to_owned() });
        }
        let mut members = Vec::with_capacity(records.len());
        for (_, target, port) in records {
            let mut given: Vec<IpAddr> = found
                .additionals()
                .iter()
                .filter(|record| record.name.to_utf8().trim_end_matches('.').eq_ignore_ascii_case(&target))
                .filter_map(|record| record.data.ip_addr())
                .collect();
            given.sort();
            let ip = match given.first() {
                Some(ip) => *ip,
                None => match target.parse::<IpAddr>() {
                    Ok(ip) => ip,
                    Err(_) => self.addresses(&target).await?[0],
                },
            };
            members.push(Member { host: target.clone(), port, ip, server_name: target });
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_what_to_ask() {
        assert_eq!(
            Query::parse("dns+srv://_sloth._tcp.builders.ci.svc.cluster.local").ok(),
            Some(Query::Srv { name: "_sloth._tcp.builders.ci.svc.cluster.local".into() })
        );
        assert_eq!(
            Query::parse("dns://builders.internal:50051").ok(),
            Some(Query::Address { name: "builders.internal".into(), port: 50051 })
        );
        assert_eq!(
            Query::parse("sloth://registry.internal:50053").ok(),
            Some(Query::Registry { master: "registry.internal:50053".into() })
        );
        for bad in [
            "dns://builders.internal",
            "dns://builders:0",
            "dns://:50051",
            "http://x:1",
            "dns+srv://",
            "dns+srv://a/b",
            "sloth://x",
            "sloth://:0",
            "sloth://a/b:1",
        ] {
            assert!(matches!(Query::parse(bad), Err(DiscoveryError::Invalid { .. })), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let options =
            Options { nameserver: Some(silent.local_addr().expect("addr")), timeout: Duration::from_millis(200) };
        let started = std::time::Instant::now();
        let error = discover("dns://quiet.test:1", &options).await.expect_err("no answer");
        assert!(matches!(error, DiscoveryError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_member_s_address_brackets_ipv6() {
        let member = Member { host: "h".into(), port: 7, ip: "::1".parse().expect("ip"), server_name: "h".into() };
        assert_eq!(member.address(), "[::1]:7");
    }
}
