---@meta terraform
--- The Go sloth-runner's terraform module, over the real `terraform` (global `terraform`, or
--- `require("terraform")`). Each call runs `terraform` (no shell) in `params.workdir` —
--- required, as in the Go module, relative to the task's workdir — with the task's `env`,
--- stopping with the task (timeout, cancellation). A missing `terraform` gives the error
--- "`terraform` is not installed (needed by terraform.init)".
---
--- `init`, `plan`, `apply` and `destroy` return the result `{ success, stdout, stderr,
--- exit_code }` the Go module returned, and beside it an error value (nil on success) naming
--- the command and keeping its stdout and stderr. `output` returns the parsed value or
--- `nil, err` (the Go module's `nil, stderr`; the error concatenates as its text). A missing
--- or wrong argument is `nil, err` with `kind` "invalid" and `field` naming it (the Go
--- module's `nil, msg`); nothing raises. Not in the Go module: `json = true` on plan, apply
--- and destroy (`-json`, its lines parsed as `result.events`).
terraform = {}

--- What a terraform command did.
---@class terraform.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field exit_code integer 0 on success; -1 when terraform did not exit by itself (not started, killed, timed out)
---@field command string the command, as `terraform plan -input=false -no-color`
---@field error? terraform.Error when it failed
---@field events? table[] with `json = true`: each JSON line terraform printed, parsed

--- How a call failed: `kind` "exit", "signal", "timeout", "io" (terraform not installed, or
--- the workdir is not a directory) or "invalid" (an argument, or output that is not JSON);
--- it prints as `terraform.plan: terraform plan … exited with code 1: <stderr>`.
---@class terraform.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field field? string the argument at fault ("invalid")
---@field not_found? boolean `terraform` is not installed

--- `terraform init -input=false -no-color` in `workdir`.
---@param params { workdir: string }
---@return terraform.Result? result nil only when an argument is wrong
---@return terraform.Error? err
function terraform.init(params) end

--- `terraform plan [-json] -input=false -no-color [-out=OUT]` in `workdir`.
---@param params { workdir: string, out?: string, json?: boolean }
---@return terraform.Result? result
---@return terraform.Error? err
function terraform.plan(params) end

--- `terraform apply [-json] -input=false -no-color [-auto-approve] [PLAN]` in `workdir`.
---@param params { workdir: string, plan?: string, auto_approve?: boolean, json?: boolean }
---@return terraform.Result? result
---@return terraform.Error? err
function terraform.apply(params) end

--- `terraform destroy [-json] -input=false -no-color [-auto-approve]` in `workdir`.
---@param params { workdir: string, auto_approve?: boolean, json?: boolean }
---@return terraform.Result? result
---@return terraform.Error? err
function terraform.destroy(params) end

--- `terraform output -json [NAME]` in `workdir`, parsed: the named output's value, or every
--- output as `{ name = { value, type, sensitive } }`. JSON's null is `data.null`.
---@param params { workdir: string, name?: string }
---@return any? value nil on failure
---@return terraform.Error? err
function terraform.output(params) end

return terraform
