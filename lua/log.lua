---@meta log
--- Logging for pipelines. Lines show on the console as `<group>/<task>  LEVEL  message k=v`
--- while a task runs. Available as the global `log` and through `require("log")`.
log = {}

--- Logs at debug level (shown with `--verbose`).
---@param message any converted with tostring
---@param fields? table<string, any> extra key=value pairs
function log.debug(message, fields) end

--- Logs at info level.
---@param message any converted with tostring
---@param fields? table<string, any> extra key=value pairs
function log.info(message, fields) end

--- Logs at warn level.
---@param message any converted with tostring
---@param fields? table<string, any> extra key=value pairs
function log.warn(message, fields) end

--- Logs at error level.
---@param message any converted with tostring
---@param fields? table<string, any> extra key=value pairs
function log.error(message, fields) end

--- Logs at info level, marked as a success by a `status=success` field (which replaces a
--- `status` of `fields`): `group/task  INFO  deployed status=success`. The Go sloth-runner's
--- pipelines call it.
---@param message any converted with tostring
---@param fields? table<string, any> extra key=value pairs
function log.success(message, fields) end

return log
