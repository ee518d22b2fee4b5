---@meta aws
--- The Go sloth-runner's aws module, over the real `aws` CLI (global `aws`, or
--- `require("aws")`), in the forms its code had (`aws.client{ profile }`, `client:s3():sync`,
--- `client:get_secret`) and those its documentation shows (`aws.exec`, `aws.s3.sync`,
--- `aws.secretsmanager.get_secret`). With a `profile` (not ""), a command runs as
--- `aws-vault exec PROFILE -- aws ...`, as the Go code did. Commands run without a shell in
--- the task's workdir (relative local paths resolve against it), with the task's `env`,
--- stopping with the task (timeout, cancellation). A missing CLI gives the error
--- "`aws` is not installed (needed by aws.exec)" (or "`aws-vault` …" with a profile).
---
--- Every call returns `value, err`: `err` an error value naming the command and keeping its
--- stdout and stderr, which concatenates as its text (`"failed: " .. err`, as the docs write).
--- A missing or wrong argument is `nil, err` with `kind` "invalid" and `field` naming it.
--- Where the Go code raised (`:sync`, `:get_secret`), these return the error instead; a method
--- chained on a failed `:sync` raises, so a chain stops at its first failure as it did.
--- Where code and docs differ: `aws.exec`'s result also has `success` and the code's other
--- fields; `aws.s3.sync` returns the result (truthy) rather than `true`, and `nil, err` on
--- failure; both syncs take `source`/`destination` and `from`/`to`.
aws = {}

--- What an aws command did.
---@class aws.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field exit_code integer 0 on success; -1 when aws did not exit by itself (not started, killed, timed out)
---@field command string the command, as `aws-vault exec prod -- aws s3 sync ./build s3://bucket`
---@field json? any stdout parsed, when it is a JSON array or object
---@field error? aws.Error when it failed

--- How a call failed: `kind` "exit", "signal", "timeout", "io" (the CLI not installed) or
--- "invalid" (an argument, or output that is not what was asked); it prints as
--- `aws.exec: aws sts get-caller-identity exited with code 255: <stderr>`.
---@class aws.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field field? string the argument at fault ("invalid")
---@field not_found? boolean the CLI is not installed

--- A client whose commands use its profile.
---@class aws.Client
---@field profile? string
local Client = {}

--- A client's S3, with the last sync's `success`, `stdout`, `stderr`.
---@class aws.S3
---@field success boolean
---@field stdout string
---@field stderr string
local S3 = {}

--- `aws args...` as given (through aws-vault with `opts.profile`).
---@param args string[]
---@param opts? { profile?: string }
---@return aws.Result? result nil only when an argument is wrong
---@return aws.Error? err
function aws.exec(args, opts) end

--- A client (the Go code's form).
---@param opts? { profile?: string }
---@return aws.Client? client
---@return aws.Error? err
function aws.client(opts) end

aws.s3 = {}

--- `aws s3 sync SOURCE DESTINATION [--delete]` (the docs' form).
---@param params { source: string, destination: string, profile?: string, delete?: boolean }
---@return aws.Result? result the result on success, nil on failure
---@return aws.Error? err
function aws.s3.sync(params) end

aws.secretsmanager = {}

--- `aws secretsmanager get-secret-value --secret-id ID --output json`'s SecretString (the
--- docs' form); a secret without one (binary) is an "invalid" error.
---@param params { secret_id: string, profile?: string }
---@return string? secret
---@return aws.Error? err
function aws.secretsmanager.get_secret(params) end

--- The client's S3.
---@return aws.S3
function Client:s3() end

--- `aws secretsmanager get-secret-value --secret-id ID --output json`'s SecretString.
---@param secret_id string
---@return string? secret
---@return aws.Error? err
function Client:get_secret(secret_id) end

--- `aws s3 sync FROM TO [--delete]`: the S3 object on success (so calls chain, as in the Go
--- code), else the failed result.
---@param params { from: string, to: string, delete?: boolean }
---@return aws.S3|aws.Result? s3
---@return aws.Error? err
function S3:sync(params) end

return aws
