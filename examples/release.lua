-- The whole task language in one pipeline: a base task reused with `uses`, retries with
-- backoff, a timeout, conditions, hooks, a failure handler, async work, `parallel`,
-- artifacts handed from one task to another, and exports for `--return`.
--   sloth-runner run examples/release.lua --return
local base = {
  description = "a step of the release",
  params = { channel = "stable", verbose = false },
  command = function(params)
    log.info("step " .. params.task_name .. " on " .. params.channel)
    return true, params.task_name .. " done"
  end,
}

TaskDefinitions = {
  release = {
    description = "Build, check and package a release in a temporary directory",
    create_workdir_before_run = true,
    clean_workdir_after_run = function(result)
      return result.success -- keep the directory for a look when something failed
    end,
    tasks = {
      { name = "prepare", uses = base, params = { channel = "beta" } },
      {
        name = "build",
        depends_on = "prepare",
        retries = 2,
        retry_delay = "10ms",
        timeout = "30s",
        artifacts = { "dist/*.txt" },
        pre_exec = function(params) return params.channel == "stable", "builds only run on stable" end,
        params = { channel = "stable" },
        command = "mkdir -p dist && echo 'app 1.0' > dist/app.txt && echo 'notes' > dist/notes.txt",
        post_exec = function(_, outputs) return outputs.exit_code == 0, "the build left no exit code" end,
      },
      { name = "index", async = true, command = "sleep 0.1; echo indexed" },
      {
        name = "checks",
        depends_on = "build",
        command = function()
          local results, err = parallel({
            { name = "size", command = "test -s dist/app.txt" },
            { name = "notes", command = function() return fs.exists("dist/notes.txt"), "notes present" end },
          })
          return err == nil, #results .. " checks", { checks = #results }
        end,
      },
      { name = "docs_only", run_if = "test -e DOCS_ONLY", command = "echo never in this example" },
      {
        name = "package",
        depends_on = { "checks", "index" },
        consumes = { "dist/app.txt" },
        next_if_fail = "rollback",
        command = function(_, deps)
          local content = fs.read("dist/app.txt")
          export({ version = "1.0", checks = deps.checks.checks })
          return content ~= nil, "packaged " .. (content or ""):gsub("%s+$", ""), { package = "app-1.0.tar" }
        end,
      },
      { name = "rollback", command = function(_, deps) log.warn("rolling back: " .. deps.package.message); return true end },
    },
  },
}
