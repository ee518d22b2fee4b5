---@meta docker
--- The Go sloth-runner's docker module, over the real `docker` CLI (global `docker`, or
--- `require("docker")`). Each call runs `docker` (no shell) in the task's workdir — a relative
--- build context resolves against it — with the task's `env`, stopping with the task
--- (timeout, cancellation). A missing `docker` gives the error
--- "`docker` is not installed (needed by docker.build)".
---
--- Every call returns the result `{ success, stdout, stderr, exit_code }` the Go module
--- returned, and beside it an error value (nil on success) naming the command and keeping its
--- stdout and stderr. A missing or wrong argument is `nil, err` with `kind` "invalid" and
--- `field` naming it (the Go module's `nil, msg`); nothing raises. `build_args` and `env` go
--- on the command line sorted by name (the Go module's order was random).
docker = {}

--- What a docker command did.
---@class docker.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field exit_code integer 0 on success; -1 when docker did not exit by itself (not started, killed, timed out)
---@field command string the command, as `docker push registry/app:1.0`
---@field json? any stdout parsed, when it is a JSON array or object (`docker inspect`)
---@field error? docker.Error when it failed

--- How a call failed: `kind` "exit", "signal", "timeout", "io" (docker not installed) or
--- "invalid" (an argument); it prints as `docker.push: docker push … exited with code 1: <stderr>`.
---@class docker.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field field? string the argument at fault ("invalid")
---@field not_found? boolean `docker` is not installed

--- `docker args...`, as given.
---@param args string[]
---@return docker.Result? result nil only when an argument is wrong
---@return docker.Error? err
function docker.exec(args) end

--- `docker build -t TAG [-f DOCKERFILE] [--build-arg NAME=VALUE]... PATH`.
---@param params { tag: string, path: string, dockerfile?: string, build_args?: table<string, string> }
---@return docker.Result? result
---@return docker.Error? err
function docker.build(params) end

--- `docker push TAG`.
---@param params { tag: string }
---@return docker.Result? result
---@return docker.Error? err
function docker.push(params) end

--- `docker run [-d] [--name NAME] [-p PORT]... [-e NAME=VALUE]... IMAGE`.
---@param params { image: string, name?: string, detach?: boolean, ports?: string[], env?: table<string, string> }
---@return docker.Result? result
---@return docker.Error? err
function docker.run(params) end

return docker
