---@meta data
--- JSON and YAML. Available as the global `data` and through `require("data")`. Each function
--- returns `value, err` instead of raising. A table whose keys are exactly 1..n is an array,
--- any other an object, keys sorted (the same value always gives the same text); an empty
--- table is an object. JSON's null is `data.null`, in what is parsed and in what is written,
--- so nulls survive a round trip. What cannot be JSON (a function, a cycle, a string that is
--- not UTF-8, NaN, two keys that are the same text) is an error naming where it is
--- (`$.build.steps[2]`).
data = {}

--- JSON's null.
---@type lightuserdata
data.null = nil

---@param value any
---@param opts? { pretty?: boolean }
---@return string? text
---@return string? err
function data.to_json(value, opts) end

---@param text string
---@return any value
---@return string? err
function data.parse_json(text) end

---@param value any
---@return string? text
---@return string? err
function data.to_yaml(value) end

---@param text string
---@return any value
---@return string? err
function data.parse_yaml(text) end

return data
