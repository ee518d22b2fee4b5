-- A small build in a scratch directory: tasks create, read and clean files relative to the
-- directory sloth-runner was started in; a failure handler shows the skip rules.
--   sloth-runner run examples/build.lua
TaskDefinitions = {
  build = {
    description = "Generate, compile and package (simulated)",
    tasks = {
      { name = "prepare", command = "mkdir -p .sloth-example/out && echo 'int main(){}' > .sloth-example/main.c" },
      {
        name = "compile",
        depends_on = "prepare",
        command = function()
          local source = assert(io.open(".sloth-example/main.c")):read("a")
          local object = assert(io.open(".sloth-example/out/main.o", "w"))
          object:write("compiled:", source)
          object:close()
          return true, "compiled " .. #source .. " bytes", { object = ".sloth-example/out/main.o" }
        end,
      },
      {
        name = "package",
        depends_on = "compile",
        command = "tar -cf .sloth-example/out.tar -C .sloth-example out && ls -l .sloth-example/out.tar",
      },
      { name = "clean", depends_on = "package", command = "rm -rf .sloth-example" },
    },
  },
}
