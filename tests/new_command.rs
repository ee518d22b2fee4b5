//! `sloth-runner new` and `sloth-runner template list`: every template makes a pipeline that
//! validates and lists, the default one runs, and a file is only overwritten when asked.

use crate::support::Test;

#[test]
fn every_template_validates_and_lists_and_the_basic_one_runs() {
    let test = Test::new();
    let listed = test.run(&["template", "list"]).expect_code(0).stdout;
    let names: Vec<&str> = listed.lines().filter_map(|line| line.split_whitespace().next()).collect();
    for name in ["basic", "remote", "parallel", "values"] {
        assert!(names.contains(&name), "template list lacks {name}:\n{listed}");
    }
    for name in names {
        let file = format!("{name}.lua");
        test.run(&["new", "my app", "-t", name, "-o", &file]).expect_code(0);
        assert!(test.read(&file).contains("[\"my-app\"]"), "{name}: the group is not my-app");
        test.run(&["validate", &file]).expect_code(0).stdout_has(&format!("{file}: ok (1 group(s)"));
        test.run(&["list", &file]).expect_code(0).stdout_has("my-app");
    }
    test.run(&["run", "basic.lua"])
        .expect_code(0)
        .stderr_has("hello from my-app")
        .stderr_has("2 task(s): 2 succeeded, 0 failed");
}

#[test]
fn new_prints_without_a_file_and_overwrites_only_with_force() {
    let test = Test::new().write("pipeline.lua", "-- mine\n");
    test.run(&["new", "ci"]).expect_code(0).stdout_has("[\"ci\"] = {").stdout_has("depends_on = \"hello\"");
    test.run(&["new", "ci", "-o", "pipeline.lua"])
        .expect_code(2)
        .stderr_has("error: pipeline.lua exists; --force overwrites it");
    assert_eq!(test.read("pipeline.lua"), "-- mine\n");
    test.run(&["new", "ci", "-t", "simple", "-o", "pipeline.lua", "--force"]).expect_code(0);
    assert!(test.read("pipeline.lua").contains("[\"ci\"]"));
    test.run(&["new", "ci", "-t", "nope"])
        .expect_code(2)
        .stderr_has("unknown template 'nope' (templates: basic, remote, parallel, values;");
    test.run(&["new", "a\"b"]).expect_code(2).stderr_has("group name 'a\"b'");
}
