--- Agent pools found through DNS: a group's `agents` entry `{ discover = "dns+srv://NAME" }`
--- or `{ discover = "dns://NAME:PORT" }` stands for every instance the records name. Its
--- members are agents like declared ones — named `POOL/host:port`, with the pool's `labels`,
--- `token` and `tls` (whose `domain` defaults to the member's DNS name) — so `agent = "*"`,
--- label selection, policies and plugins see them as agents.
---
--- A pool is resolved when a task first needs it (a pipeline that never dispatches to it asks
--- no DNS server), once per run, and again when every member known so far has failed.
local agent = require("agent")
local errors = require("sloth.errors")
local log = require("log")
local state = require("sloth.agent_pool")

local M = {}

-- What each pool (a group's `agents` entry, as validated) resolved to, by the entry itself:
-- a run's pipeline is read anew, so a REPL's next run asks again.
local known = setmetatable({}, { __mode = "k" })
-- Pools already reported as resolving to nothing while other candidates remained.
local warned = setmetatable({}, { __mode = "k" })

---@param candidate table a group's `agents` entry
---@return boolean
function M.is_pool(candidate)
  return candidate.discover ~= nil
end

--- Why `err` (from `agent.discover`) left the pool without members, without the URL the
--- pool's description names already.
local function reason(pool, err)
  local text = errors.clean(err)
  local prefix = pool.discover .. ": "
  if text:sub(1, #prefix) == prefix then
    text = text:sub(#prefix + 1)
  end
  return text
end

--- "agent pool 'NAME' (URL): resolves to no agents: why".
---@return string
function M.problem(pool, err)
  return string.format("agent pool '%s' (%s): resolves to no agents: %s", pool.name, pool.discover, reason(pool, err))
end

local function member(pool, found)
  local tls = nil
  if pool.tls then
    tls = {}
    for key, value in pairs(pool.tls) do
      tls[key] = value
    end
    -- The certificate names the host, not the address connected to.
    tls.domain = tls.domain or found.server_name
  end
  return {
    name = string.format("%s/%s:%d", pool.name, found.host, found.port),
    address = found.address,
    labels = pool.labels,
    token = pool.token,
    tls = tls,
    pool = pool.name,
  }
end

--- Asks DNS for `pool`'s members now.
---@return table[]? members, any err
function M.resolve(pool)
  local ok, found = pcall(agent.discover, pool.discover, { nameserver = pool.nameserver })
  if not ok then
    return nil, found
  end
  local members = {}
  for i, entry in ipairs(found) do
    members[i] = member(pool, entry)
  end
  return members
end

local function all_failed(members)
  for _, m in ipairs(members) do
    if state.state(m).healthy then
      return false
    end
  end
  return true
end

--- `pool`'s members: resolved on first need, and again when every known member has failed
--- (the answer then replaces them; a failed lookup keeps them).
---@return table[]? members, string? problem
function M.members(pool)
  local entry = known[pool]
  if entry and not all_failed(entry.members) then
    return entry.members
  end
  local members, err = M.resolve(pool)
  if members then
    if entry then
      log.debug(string.format("agent pool '%s': every known member failed; %s now names %d", pool.name,
        pool.discover, #members))
    end
    known[pool] = { members = members }
    return members
  end
  if entry then
    log.warn(M.problem(pool, err) .. "; keeping the members known before")
    return entry.members
  end
  return nil, M.problem(pool, err)
end

--- `candidates` with each pool replaced by its members; nil and the pools' problems when
--- nothing is left.
---@param candidates table[]
---@return table[]? agents, string? problem
function M.expand(candidates)
  local has_pool = false
  for _, candidate in ipairs(candidates) do
    if candidate.discover then
      has_pool = true
    end
  end
  if not has_pool then
    return candidates
  end
  local list, seen, problems = {}, {}, {}
  for _, candidate in ipairs(candidates) do
    local members, problem = { candidate }, nil
    if candidate.discover then
      members, problem = M.members(candidate)
    end
    if problem then
      problems[#problems + 1] = { pool = candidate, text = problem }
    end
    for _, m in ipairs(members or {}) do
      if not seen[m.name] then
        seen[m.name] = true
        list[#list + 1] = m
      end
    end
  end
  if #list == 0 then
    local texts = {}
    for i, problem in ipairs(problems) do
      texts[i] = problem.text
    end
    return nil, table.concat(texts, "; ")
  end
  -- The other candidates do: said once.
  for _, problem in ipairs(problems) do
    if not warned[problem.pool] then
      warned[problem.pool] = true
      log.warn(problem.text)
    end
  end
  return list
end

return M
