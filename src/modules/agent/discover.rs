//! `agent.discover(url[, opts])`: the members of an agent pool, found through DNS or a
//! master's registry (`crate::discovery`), as Lua tables; concurrent calls for the same URL share
//! one lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, Result as LuaResult, Table, Value};

use crate::discovery::{self, DiscoveryError};
use crate::error_kind::ErrorKind;
use crate::modules::error_value::ErrorValue;
use crate::modules::lua_args;

/// How long each DNS query of `agent.discover` may take.
const DEFAULT_DISCOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// One discovery's outcome, shared by the calls that asked for it while it was under way.
type Discovery = Rc<tokio::sync::OnceCell<Result<Vec<discovery::Member>, DiscoveryError>>>;

/// The discoveries under way in this VM, by URL and nameserver: tasks that need a pool at
/// the same moment make one set of queries.
#[derive(Default)]
struct Discoveries(RefCell<HashMap<(String, Option<SocketAddr>), Discovery>>);

/// `agent.discover(url[, { nameserver, timeout }]) -> { { host, port, address, server_name } }`:
/// the members `dns+srv://NAME` or `dns://NAME:PORT` names, asked of `nameserver` ("ip:port",
/// "ip", or "host:port") or the system's resolvers, each query within `timeout` (default 5s).
pub(super) async fn discover(
    lua: Lua,
    (url, options): (String, Option<Table>),
) -> LuaResult<Result<Table, ErrorValue>> {
    if let Some(options) = &options {
        lua_args::known_keys(options, "agent.discover", "option", &["nameserver", "timeout"])?;
    }
    let (nameserver, timeout) = match &options {
        Some(options) => (
            options.get::<Option<String>>("nameserver")?,
            match options.get::<Value>("timeout")? {
                Value::Nil => DEFAULT_DISCOVER_TIMEOUT,
                value => lua_args::duration(&value, "agent.discover", "timeout")?,
            },
        ),
        None => (None, DEFAULT_DISCOVER_TIMEOUT),
    };
    let nameserver = match nameserver {
        Some(written) => Some(nameserver_address(&written).await?),
        None => None,
    };
    let key = (url.clone(), nameserver);
    let shared = lua.app_data_ref::<Discoveries>().and_then(|under_way| under_way.0.borrow().get(&key).cloned());
    let cell = match shared {
        Some(cell) => cell,
        None => {
            if lua.app_data_ref::<Discoveries>().is_none() {
                lua.set_app_data(Discoveries::default());
            }
            let cell = Discovery::default();
            if let Some(under_way) = lua.app_data_ref::<Discoveries>() {
                under_way.0.borrow_mut().insert(key.clone(), Rc::clone(&cell));
            }
            cell
        }
    };
    let options = discovery::Options { nameserver, timeout };
    let outcome = cell.get_or_init(|| discovery::discover(&url, &options)).await.clone();
    // Done: a later call (a failover) asks again.
    if let Some(under_way) = lua.app_data_ref::<Discoveries>() {
        let mut under_way = under_way.0.borrow_mut();
        if under_way.get(&key).is_some_and(|current| Rc::ptr_eq(current, &cell)) {
            under_way.remove(&key);
        }
    }
    let members = match outcome {
        Ok(members) => members,
        Err(error) => {
            let kind = match &error {
                DiscoveryError::Invalid { .. } => ErrorKind::Invalid,
                DiscoveryError::NoRecords { .. } | DiscoveryError::Failed { .. } => ErrorKind::Unreachable,
                DiscoveryError::Timeout { .. } => ErrorKind::Timeout,
            };
            return Ok(Err(ErrorValue::new(kind, error.to_string())
                .raised_by("agent.discover")
                .with("url", Some(url))));
        }
    };
    let list = lua.create_table()?;
    for member in members {
        let entry = lua.create_table()?;
        entry.set("host", member.host.as_str())?;
        entry.set("port", member.port)?;
        entry.set("address", member.address())?;
        entry.set("server_name", member.server_name.as_str())?;
        list.push(entry)?;
    }
    Ok(Ok(list))
}

/// The `nameserver` option: `ip:port`, `[v6]:port`, `ip` (port 53), or `host:port` (looked up
/// with the system's resolver).
async fn nameserver_address(written: &str) -> LuaResult<SocketAddr> {
    if let Ok(address) = written.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = written.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let invalid = |reason: String| {
        mlua::Error::runtime(format!("agent.discover: invalid value for option 'nameserver' - {reason}"))
    };
    if !written.contains(':') {
        return Err(invalid(format!("expected host:port, got '{written}'")));
    }
    match tokio::net::lookup_host(written).await {
        Ok(mut found) => found.next().ok_or_else(|| invalid(format!("'{written}' has no address"))),
        Err(error) => Err(invalid(format!("'{written}': {error}"))),
    }
}
