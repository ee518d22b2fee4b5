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
        let registered: BTreeSet<String> =
            table.pairs::<String, mlua::Value>().map(|pair| pair.expect("string keys").0).collect();
        assert_eq!(registered, documented_functions(name), "lua/{name}.lua differs from the registered module");
    }
}

#[test]
fn every_supported_field_is_documented() {
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM builds");
    let text = std::fs::read_to_string(repo_root().join("lua/taskdefinitions.lua")).expect("lua/taskdefinitions.lua");
    let taskdefs: mlua::Table = runtime.lua().load("return require('sloth.taskdefs')").eval().expect("taskdefs");
    for (class, fields) in [("sloth.Task", "TASK_FIELDS"), ("sloth.Group", "GROUP_FIELDS")] {
        let section: String = text
            .split("---@class ")
            .find(|section| section.starts_with(class) && section[class.len()..].starts_with(['\n', ':']))
            .unwrap_or_else(|| panic!("no ---@class {class}"))
            .to_owned();
        let table: mlua::Table = taskdefs.get(fields).expect("field table");
        for pair in table.pairs::<String, bool>() {
            let (field, supported) = pair.expect("field entry");
            let documented =
                section.contains(&format!("---@field {field} ")) || section.contains(&format!("---@field {field}? "));
            assert_eq!(documented, supported, "{class}.{field}: supported = {supported}, documented = {documented}");
        }
    }
}
