-- A pipeline written as the Go sloth-runner's were: a Go template rendered with -e NAME, -p and
-- --shards LIST before Lua reads it (without those flags the file is read as it is, and this
-- one is not Lua until rendered). Run it with:
--   sloth-runner run examples/go_template.lua -e Production --shards 1,2
local shards = { {{ range .Shards }}{{ . }}, {{ end }} }

TaskDefinitions = {
  deploy = {
    description = "Deploy to {{ .Env }}",
    tasks = {
      { name = "plan", command = function()
{{ if eq .Env "Production" }}
          log.info("production, " .. #shards .. " shard(s); -p given: {{ .IsProduction }}")
{{ else }}
          log.info("{{ .Env }}, " .. #shards .. " shard(s)")
{{ end }}
          return true, "planned {{ .Shards }}", { shards = shards }
        end },
      { name = "rollout", depends_on = "plan", command = function(_, deps)
          -- parallel's second argument reaches each task's function as its second argument.
          local tasks = {}
          for _, shard in ipairs(deps.plan.shards) do
            tasks[#tasks + 1] = { name = "shard_" .. shard, command = function(_, input)
                return true, string.format("shard %d of %d on {{ .Env }}", shard, #input.shards)
              end }
          end
          local results, err = parallel(tasks, { shards = deps.plan.shards })
          if err then
            return false, err
          end
          for _, result in ipairs(results) do
            log.info(result.message, { status = result.status })
          end
          return true, #results .. " shard(s) rolled out"
        end },
    },
  },
}
