//! `sloth-runner test -w WORKFLOW -f TESTFILE`: the test file runs against the loaded pipeline
//! (stdlib `sloth.test_runner`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::{USAGE_ERROR, session};
use crate::runtime::{RuntimeOptions, values};

#[derive(Debug, Args)]
#[command(after_long_help = TEST_HELP)]
pub struct TestArgs {
    /// The pipeline whose tasks the test file runs.
    #[arg(short, long, value_name = "WORKFLOW")]
    workflow: PathBuf,
    /// The Lua test file.
    #[arg(short, long, value_name = "TESTFILE")]
    file: PathBuf,
    /// A YAML file whose mapping becomes the `values` global, as with `run`.
    #[arg(short = 'v', long = "values", value_name = "FILE")]
    values: Option<PathBuf>,
}

const TEST_HELP: &str = "\
The test file runs in the VM that loaded WORKFLOW, with two globals that exist only under
`sloth-runner test`:

  test.describe(name, fn)         a group of cases; mocks made in it end with it
  test.it([name,] fn)             a case; an error in it fails the case, the file goes on
  test.run_task(name)             runs a task (`group.task`, or a unique task name) and what it
                                  depends on: { success, message, duration, output, error }
  test.mock(\"module.fn\", { returns = { ... } })
                                  replaces a module function (exec.run, aws.exec, git.clone, ...)
  assert.is_true(v, msg)  assert.is_false  assert.is_nil  assert.not_nil
  assert.equals(actual, expected, msg)   (compared as text)
  assert.contains(string_or_list, value, msg)

A line per case, then a summary; exit 0 when every case passed, 1 otherwise, 2 when the
workflow or the test file cannot be loaded.";

pub fn execute(args: &TestArgs) -> ExitCode {
    let mut runtime_options = RuntimeOptions::from_env();
    if let Some(path) = &args.values {
        match values::read(path) {
            Ok(values) => runtime_options.values = Some(values),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(USAGE_ERROR);
            }
        }
    }
    let options = json!({
        "workflow": args.workflow.to_string_lossy(),
        "file": args.file.to_string_lossy(),
    });
    session::run_entry("test", &options, &runtime_options)
}
