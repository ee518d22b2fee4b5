-- Several agents and a dispatch plugin: each task may run on any agent of the group ("*"), and
-- plugins/prefer_label.lua picks one from the task's `params.prefer` labels.
--   sloth-runner run --spawn-agents examples/dispatch.lua
TaskDefinitions = {
  fleet = {
    description = "Spread work over two local agents",
    dispatch = "prefer_label",
    agents = {
      cpu_box = { address = "127.0.0.1:50061", labels = { tier = "cpu" } },
      gpu_box = { address = "127.0.0.1:50062", labels = { tier = "gpu" } },
    },
    tasks = {
      {
        name = "preprocess",
        agent = "*",
        params = { prefer = { tier = "cpu" } },
        command = function() log.info("preprocessing"); return true, "preprocessed" end,
      },
      {
        name = "train",
        agent = "*",
        depends_on = "preprocess",
        params = { prefer = { tier = "gpu" } },
        command = function() log.info("training"); return true, "trained" end,
      },
      {
        name = "report",
        agent = { labels = { tier = "cpu" } },
        depends_on = "train",
        command = "echo \"report from $(hostname)\"",
      },
    },
  },
}
