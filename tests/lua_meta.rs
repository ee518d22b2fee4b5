//! The LuaLS definitions in `lua/` stay in step with what the host registers and what the
//! engine accepts.

use std::collections::BTreeSet;

use sloth_runner::modules::MODULES;
use sloth_runner::runtime::{Runtime, RuntimeOptions};

use crate::support::repo_root;

fn documented_functions(module: &str) -> BTreeSet<String> {
    let path = repo_root().join("lua").join(format!("{module}.lua"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let prefix = format!("function {module}.");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('(').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_native_module_function_is_documented_and_nothing_more() {
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    for (name, _) in MODULES {
        let table: mlua::Table = runtime.lua().globals().get(*name).expect("module is a global");
        let registered = functions_of(&table);
        assert_eq!(registered, documented_functions(name), "lua/{name}.lua differs from the registered module");
    }
}

/// The names of the functions a module table holds.
fn functions_of(table: &mlua::Table) -> BTreeSet<String> {
    table
        .pairs::<String, mlua::Value>()
        .map(|pair| pair.expect("string keys"))
        .filter(|(_, value)| value.is_function())
        .map(|(name, _)| name)
        .collect()
}

/// The functions a stdlib module table holds, those of its tables too (`s3.sync` for
/// `aws.s3.sync`), as the stub writes them: `function aws.s3.sync(…)`.
fn nested_functions_of(table: &mlua::Table, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for pair in table.pairs::<String, mlua::Value>() {
        let (name, value) = pair.expect("string keys");
        match value {
            mlua::Value::Function(_) => {
                found.insert(format!("{prefix}{name}"));
            }
            mlua::Value::Table(inner) => found.extend(nested_functions_of(&inner, &format!("{prefix}{name}."))),
            _ => {}
        }
    }
    found
}

/// Stdlib modules pipelines use as globals (over `exec`): documented like the native ones.
const STDLIB_MODULES: &[&str] = &["aws", "docker", "gcp", "git", "pulumi", "python", "salt", "terraform"];

#[test]
fn every_stdlib_module_function_is_documented_and_nothing_more() {
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    for name in STDLIB_MODULES {
        let table: mlua::Table = runtime.lua().globals().get(*name).expect("module is a global");
        let required: mlua::Table = runtime.lua().load(format!("return require('{name}')")).eval().expect("require");
        assert_eq!(table, required, "the global {name} is what require('{name}') returns");
        let registered = nested_functions_of(&table, "");
        assert_eq!(registered, documented_functions(name), "lua/{name}.lua differs from stdlib/{name}.lua");
    }
}

#[test]
fn every_supported_field_is_documented() {
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    let text = std::fs::read_to_string(repo_root().join("lua/taskdefinitions.lua")).expect("lua/taskdefinitions.lua");
    let taskdefs: mlua::Table = runtime.lua().load("return require('sloth.taskdefs')").eval().expect("taskdefs");
    let agent_fields: mlua::Table =
        runtime.lua().load("return require('sloth.agent_fields')").eval().expect("agent_fields");
    for (class, fields, module) in [
        ("sloth.Task", "TASK_FIELDS", &taskdefs),
        ("sloth.Group", "GROUP_FIELDS", &taskdefs),
        ("sloth.Workspace", "WORKSPACE_FIELDS", &taskdefs),
        ("sloth.Agent", "AGENT_FIELDS", &agent_fields),
    ] {
        let section: String = text
            .split("---@class ")
            .find(|section| section.starts_with(class) && section[class.len()..].starts_with(['\n', ':']))
            .unwrap_or_else(|| panic!("no ---@class {class}"))
            .to_owned();
        let table: mlua::Table = module.get(fields).expect("field table");
        for pair in table.pairs::<String, bool>() {
            let (field, supported) = pair.expect("field entry");
            let documented =
                section.contains(&format!("---@field {field} ")) || section.contains(&format!("---@field {field}? "));
            assert_eq!(documented, supported, "{class}.{field}: supported = {supported}, documented = {documented}");
        }
    }
    // An agent's `tls` table, written inline: `{ ca?: string, cert?: string, ... }`.
    let tls_line = text.lines().find(|line| line.starts_with("---@field tls? {")).expect("sloth.Agent's tls");
    let inline =
        tls_line.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(inside, _)| inside).unwrap_or("");
    let documented: BTreeSet<String> = inline
        .split(',')
        .filter_map(|field| field.split(':').next())
        .map(|name| name.trim().trim_end_matches('?').to_owned())
        .collect();
    let tls: mlua::Table = agent_fields.get("TLS_FIELDS").expect("TLS_FIELDS");
    let supported: BTreeSet<String> = tls.pairs::<String, bool>().map(|pair| pair.expect("tls field").0).collect();
    assert_eq!(documented, supported, "sloth.Agent's tls fields");
}

/// `function module.name(…)` / `function Class:name(…)` in `lua/<module>.lua`, with the
/// `---@param` names (`?` kept) and the number of `---@return` lines of the comment above it.
fn stub_signatures(module: &str) -> Vec<(String, Vec<String>, usize)> {
    let path = repo_root().join("lua").join(format!("{module}.lua"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = Vec::new();
    let (mut params, mut returns) = (Vec::new(), 0);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("---@param ") {
            params.push(rest.split_whitespace().next().unwrap_or_default().to_owned());
        } else if line.starts_with("---@return") {
            returns += 1;
        } else if let Some(rest) = line.strip_prefix("function ") {
            let name = rest.split('(').next().unwrap_or_default();
            let name = name.strip_prefix(&format!("{module}.")).unwrap_or(name).to_owned();
            let declared: Vec<String> = rest
                .split_once('(')
                .and_then(|(_, args)| args.split_once(')'))
                .map(|(args, _)| {
                    args.split(',').map(|arg| arg.trim().to_owned()).filter(|arg| !arg.is_empty()).collect()
                })
                .unwrap_or_default();
            let bare: Vec<String> = params.iter().map(|param| param.trim_end_matches('?').to_owned()).collect();
            assert_eq!(bare, declared, "lua/{module}.lua: {name}: ---@param names differ from the function's");
            found.push((name, std::mem::take(&mut params), returns));
            returns = 0;
        } else if !line.starts_with("---") {
            params.clear();
            returns = 0;
        }
    }
    found
}

#[test]
fn every_native_function_is_documented_with_its_parameters_and_results() {
    use sloth_runner::modules::signatures::SIGNATURES;
    for (module, signatures) in SIGNATURES {
        let stubs = stub_signatures(module);
        for signature in *signatures {
            let (_, params, returns) = stubs
                .iter()
                .find(|(name, _, _)| name == signature.name)
                .unwrap_or_else(|| panic!("lua/{module}.lua does not define {}", signature.name));
            assert_eq!(params, signature.params, "lua/{module}.lua: {}: parameters", signature.name);
            assert_eq!(*returns, signature.returns, "lua/{module}.lua: {}: number of results", signature.name);
        }
        for (name, _, _) in &stubs {
            assert!(
                signatures.iter().any(|signature| signature.name == name),
                "lua/{module}.lua defines {name}, which the host does not register"
            );
        }
    }
    // And every module the host registers has its signatures.
    let listed: BTreeSet<&str> = SIGNATURES.iter().map(|(module, _)| *module).collect();
    let registered: BTreeSet<&str> = MODULES.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, registered);
}

#[test]
fn the_globals_pipelines_have_are_documented() {
    // What the prelude defines, against lua/globals.lua.
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    let text = std::fs::read_to_string(repo_root().join("lua/globals.lua")).expect("lua/globals.lua");
    for global in ["import", "export", "parallel"] {
        let value: mlua::Value = runtime.lua().globals().get(global).expect("global");
        assert!(value.is_function(), "{global} is a function");
        assert!(text.contains(&format!("function {global}(")), "lua/globals.lua documents {global}");
    }
    // The native modules (`fs`, `data`, ...) are defined once, in their own files.
    for (module, _) in MODULES {
        assert!(!text.contains(&format!("function {module}.")), "lua/globals.lua defines {module} again");
    }
    // The editor configuration points at these definitions.
    let luarc = std::fs::read_to_string(repo_root().join(".luarc.json")).expect(".luarc.json");
    let luarc: serde_json::Value = serde_json::from_str(&luarc).expect(".luarc.json is JSON");
    assert_eq!(luarc["workspace.library"], serde_json::json!(["lua"]));
}

#[test]
fn the_error_kinds_and_causes_are_documented_as_the_host_has_them() {
    use sloth_runner::error_kind::ErrorKind;
    use sloth_runner::rpc::client::Cause;
    let text = std::fs::read_to_string(repo_root().join("lua/globals.lua")).expect("lua/globals.lua");
    let kinds: BTreeSet<String> = ErrorKind::ALL.iter().map(|kind| kind.as_str().to_owned()).collect();
    assert_eq!(alias_values(&text, "sloth.ErrorKind"), kinds, "lua/globals.lua: sloth.ErrorKind");
    let causes: BTreeSet<String> = Cause::ALL.iter().map(|cause| cause.as_str().to_owned()).collect();
    assert_eq!(alias_values(&text, "sloth.ErrorCause"), causes, "lua/globals.lua: sloth.ErrorCause");
}

/// The quoted values of `---@alias name`, one `---| "value" # …` line each.
fn alias_values(text: &str, name: &str) -> BTreeSet<String> {
    let header = format!("---@alias {name}");
    text.lines()
        .skip_while(|line| line.trim_end() != header)
        .skip(1)
        .map_while(|line| line.strip_prefix("---| \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The `---@field` names of `---@class class` in lua/taskdefinitions.lua: (all, required).
fn class_fields(class: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(repo_root().join("lua/taskdefinitions.lua")).expect("lua/taskdefinitions.lua");
    let section = text
        .split("---@class ")
        .find(|section| section.starts_with(class) && section[class.len()..].starts_with(['\n', ':']))
        .unwrap_or_else(|| panic!("no ---@class {class}"));
    let (mut all, mut required) = (BTreeSet::new(), BTreeSet::new());
    for line in section.lines().filter_map(|line| line.strip_prefix("---@field ")) {
        let name = line.split_whitespace().next().unwrap_or_default();
        all.insert(name.trim_end_matches('?').to_owned());
        if !name.ends_with('?') {
            required.insert(name.to_owned());
        }
    }
    (all, required)
}

#[test]
fn a_dispatch_policy_gets_the_ctx_the_definitions_describe() {
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    // A function policy sees the ctx; latency is known for the first candidate only.
    let keys: mlua::Table = runtime
        .lua()
        .load(
            r#"
            local dispatch = require("sloth.dispatch")
            local pool = require("sloth.agent_pool")
            local seen
            local candidates = {
              { name = "a", address = "127.0.0.1:1", labels = {} },
              { name = "b", address = "127.0.0.1:2", labels = {} },
            }
            pool.state(candidates[1]).latency = 0.01
            local task = { name = "t", group = "g", params = {}, remote = { candidates = candidates,
              policy = assert(dispatch.resolve(function(ctx) seen = ctx return "a" end)) } }
            assert(dispatch.choose(task, { number = 1, failures = {} }).name == "a")
            local function keys(t) local out = {} for k in pairs(t) do out[#out + 1] = k end return out end
            return { ctx = keys(seen), candidate = keys(seen.candidates[1]) }
            "#,
        )
        .eval()
        .expect("dispatch runs");
    for (part, class) in [("ctx", "sloth.DispatchContext"), ("candidate", "sloth.Candidate")] {
        let present: BTreeSet<String> = keys.get::<Vec<String>>(part).expect("keys").into_iter().collect();
        let (documented, required) = class_fields(class);
        assert!(present.is_subset(&documented), "{class}: the engine gives {present:?}, documented {documented:?}");
        assert!(required.is_subset(&present), "{class}: documented as always there {required:?}, given {present:?}");
    }
}
