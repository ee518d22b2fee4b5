//! No size a user can hit by accident: what works locally works remotely — 20 MB of output,
//! 20 MB of a dependency's outputs (past any one message: they travel in parts both ways, as
//! outputs and as deps), a 5 MB pipeline file — and captured output is bounded
//! (the tail kept, and the truncation said) while every line still streams live.

use crate::support::Test;
use crate::support::agent::Agent;

#[test]
fn twenty_megabytes_of_remote_output_stream_and_the_captured_tail_is_bounded() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "loud", agent = "box", command = "head -c 19999980 /dev/zero | tr '\\0' x | fold -w 99; echo; echo last line" }},
  {{ name = "after", depends_on = "loud", command = function(_, deps)
      local out = deps.loud.stdout
      log.info(string.format("captured %d bytes, ends with the last line: %s, says what was dropped: %s",
        #out, tostring(out:sub(-10) == "last line\n"), tostring(out:find("bytes of output before these were not kept", 1, true) ~= nil)))
      return true
    end }},
}} }} }}"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "{}", &run.stderr[run.stderr.len().saturating_sub(2000)..]);
    let lines = run.stderr.lines().filter(|line| line.starts_with("box/loud | x")).count();
    assert_eq!(lines, 202_020, "every line streamed live (20 MB in lines of 99)");
    assert!(run.stderr.contains("box/loud | last line"));
    assert!(
        run.stderr.contains("captured 8388")
            && run.stderr.contains("ends with the last line: true, says what was dropped: true"),
        "{}",
        run.stderr.lines().filter(|line| line.contains("captured")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn twenty_megabytes_of_outputs_and_a_five_megabyte_pipeline_run_remotely() {
    let agent = Agent::start(&[]);
    let padding = "-- ".to_owned() + &"p".repeat(5 * 1024 * 1024) + "\n";
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"{padding}TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "big", agent = "box", command = function() return true, "made", {{ big = string.rep("y", 20 * 1024 * 1024) }} end }},
  {{ name = "reads", agent = "box", depends_on = "big", command = function(_, deps)
      log.info("got " .. #deps.big.big .. " bytes")
      return true
    end }},
}} }} }}"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("got {} bytes", 20 * 1024 * 1024)), "{}", run.stderr);
}
