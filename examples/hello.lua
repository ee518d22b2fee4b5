-- A local pipeline: shell and Lua tasks, dependencies, outputs passed along, logging.
--   sloth-runner run examples/hello.lua
TaskDefinitions = {
  hello = {
    description = "Say hello, locally",
    tasks = {
      {
        name = "whoami",
        description = "Ask the shell who we are",
        command = "echo \"$(id -un 2>/dev/null || echo someone) on $(uname -s)\"",
      },
      {
        name = "greet",
        description = "Build a greeting from whoami's output",
        depends_on = "whoami",
        params = { greeting = "hello" },
        command = function(params, deps)
          local who = deps.whoami.stdout:gsub("%s+$", "")
          local message = params.greeting .. ", " .. who
          log.info(message, { task = params.task_name })
          return true, message, { message = message }
        end,
      },
      {
        name = "shout",
        description = "Use exec from Lua",
        depends_on = { "greet" },
        command = function(_, deps)
          local out, _, err = exec.run({ "tr", "a-z", "A-Z" }, { stdin = deps.greet.message })
          if err then
            return false, "tr failed: " .. tostring(err)
          end
          log.info(out)
          return true, out
        end,
      },
    },
  },
}
