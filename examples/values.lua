-- Values from a YAML file, used by shell and Lua tasks.
--   sloth-runner run examples/values.lua -v examples/values.yaml
TaskDefinitions = {
  deploy = {
    description = "Plan a deployment from values.yaml",
    tasks = {
      {
        name = "check",
        command = function()
          if type(values.environment) ~= "string" then
            return false, "values.environment is missing (run with -v examples/values.yaml)"
          end
          return true, "deploying to " .. values.environment
        end,
      },
      {
        name = "plan",
        depends_on = "check",
        env = { REPLICAS = values.replicas or 1 },
        command = "echo \"would start $REPLICAS replicas\"",
      },
      {
        name = "regions",
        depends_on = "check",
        command = function()
          for i, region in ipairs(values.regions or {}) do
            log.info("region " .. i, { name = region })
          end
          return true, #(values.regions or {}) .. " region(s)"
        end,
      },
    },
  },
}
