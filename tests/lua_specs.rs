//! The Lua spec harness: every `tests/lua/*.lua` file (but `_helpers`-style files) is one named
//! test, run in a real VM with the bundled stdlib and the native modules. Specs use `assert`.

use std::time::Duration;

use sloth_runner::runtime::{Runtime, RuntimeOptions, error};

use crate::support::repo_root;

const SPEC_TIMEOUT: Duration = Duration::from_secs(60);

macro_rules! specs {
    ($($name:ident),* $(,)?) => {
        const LISTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_spec(stringify!($name));
            }
        )*
    };
}

specs!(
    adhoc_targets,
    agent_discovery,
    artifacts,
    aws,
    concurrency,
    conditions,
    core_jobs,
    data_json,
    deadline_queue,
    dispatch,
    docker,
    engine_failure,
    engine_order,
    error_values,
    exec_command,
    exec_run,
    fs_ops,
    gcp,
    git,
    graph,
    helpers_fs_data,
    hooks,
    log,
    next_if_fail,
    options,
    paths_in_tasks,
    pulumi,
    python,
    retries,
    repl_complete,
    repl_show,
    reuse,
    salt,
    scheduler,
    secrets,
    suggest,
    taskdefs,
    terraform,
    timeout,
    workdirs,
);

fn run_spec(name: &str) {
    let relative = format!("tests/lua/{name}.lua");
    let source = std::fs::read_to_string(repo_root().join(&relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&tokio, async {
        let runtime = Runtime::new(&RuntimeOptions::default()).map_err(|e| error::describe(&e))?;
        let lua = runtime.lua();
        let helpers = repo_root().join("tests/lua/?.lua");
        lua.load(format!("package.path = {:?} .. ';' .. package.path", helpers.display().to_string()))
            .exec()
            .map_err(|e| error::describe(&e))?;
        let chunk = lua.load(source).set_name(format!("@{relative}"));
        match tokio::time::timeout(SPEC_TIMEOUT, chunk.call_async::<()>(())).await {
            Ok(result) => result.map_err(|e| error::describe(&e)),
            Err(_) => Err(format!("did not finish within {SPEC_TIMEOUT:?}")),
        }
    });
    if let Err(message) = outcome {
        panic!("{relative} failed:\n{message}");
    }
}

#[test]
fn every_spec_file_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("tests/lua"))
        .expect("tests/lua exists")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".lua")?;
            (!stem.starts_with('_')).then(|| stem.to_owned())
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/lua/*.lua and the specs! list in tests/lua_specs.rs differ");
}
