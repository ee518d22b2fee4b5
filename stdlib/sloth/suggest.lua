--- "Did you mean …?": the known name closest to a mistyped one, when one is close enough to be
--- what was meant (a typo, a missing or doubled letter, `_` for `-`), and nothing otherwise.
local tables = require("sloth.tables")

local M = {}

--- Edit distance (insertions, deletions, substitutions, swaps of neighbours) between `a` and
--- `b`, giving up past `limit`.
local function distance(a, b, limit)
  local la, lb = #a, #b
  if math.abs(la - lb) > limit then
    return limit + 1
  end
  local before, previous, current = {}, {}, {}
  for j = 0, lb do
    previous[j] = j
  end
  for i = 1, la do
    current[0] = i
    local best = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local d = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        d = math.min(d, before[j - 2] + 1)
      end
      current[j] = d
      if d < best then
        best = d
      end
    end
    if best > limit then
      return limit + 1
    end
    before, previous, current = previous, current, before
  end
  return previous[lb]
end

--- The candidate closest to `name` (a list of strings, or the keys of a table), if it is
--- within a third of the name's length (one edit for names of three to five letters; none
--- but case for shorter ones, where one edit makes any name another); nil otherwise.
function M.closest(name, candidates)
  if type(name) ~= "string" then
    return nil
  end
  local list = candidates
  if #candidates == 0 and next(candidates) ~= nil then
    list = tables.sorted_keys(candidates)
  end
  local limit = #name < 3 and 0 or math.max(1, #name // 3)
  local lowered = name:lower()
  local best, best_distance = nil, limit + 1
  for _, candidate in ipairs(list) do
    if type(candidate) == "string" and candidate ~= name then
      local d = distance(lowered, candidate:lower(), limit)
      if d < best_distance then
        best, best_distance = candidate, d
      end
    end
  end
  return best
end

--- `" (did you mean 'x'?)"` when a candidate is close to `name`, else `""`.
function M.hint(name, candidates)
  local found = M.closest(name, candidates)
  return found and string.format(" (did you mean '%s'?)", found) or ""
end

return M
