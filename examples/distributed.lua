-- Distributed execution on one machine: a real agent process, real gRPC, the workspace shipped
-- to the agent and the changes brought back.
--   sloth-runner run --spawn-agents examples/distributed.lua
-- (--spawn-agents starts an agent on 127.0.0.1:50051 if none answers there, and stops it after;
-- without it, start one yourself: sloth-runner agent -p 50051)
TaskDefinitions = {
  my_distributed_group = {
    description = "A group with distributed tasks.",
    agents = {
      my_remote_agent = { address = "127.0.0.1:50051" },
    },
    tasks = {
      {
        name = "remote_hello",
        description = "Runs a Lua function on the agent, in a private copy of the workspace.",
        agent = "my_remote_agent",
        params = { greeting = "hello from the agent" },
        command = function(params)
          log.info(params.greeting)
          os.execute("mkdir -p .sloth-demo") -- runs in the task's workdir, like exec.run
          local file = assert(io.open(".sloth-demo/greeting.txt", "w"))
          file:write(params.greeting, "\n")
          file:close()
          return true, "wrote .sloth-demo/greeting.txt", { agent_workdir = params.workdir }
        end,
      },
      {
        name = "remote_shell",
        description = "Runs a shell command on the agent; its output streams here.",
        agent = "my_remote_agent",
        depends_on = "remote_hello",
        command = "echo \"uname: $(uname -sm)\" | tee .sloth-demo/uname.txt",
      },
      {
        name = "local_task",
        description = "Runs here and reads what the agent wrote.",
        depends_on = { "remote_hello", "remote_shell" },
        command = function(_, deps)
          local greeting = assert(io.open(".sloth-demo/greeting.txt")):read("l")
          log.info("the agent worked in " .. deps.remote_hello.agent_workdir .. " and wrote: " .. greeting)
          local _, _, err = exec.run({ "rm", "-r", ".sloth-demo" })
          return err == nil, "read the agent's files and cleaned up"
        end,
      },
    },
  },
}
