--- A min-heap of integers (declaration indexes): the scheduler's "earliest declared first"
--- in O(log n) per operation instead of a scan of everything pending.
local M = {}
M.__index = M

function M.new()
  return setmetatable({ n = 0 }, M)
end

function M:push(value)
  local n = self.n + 1
  self.n = n
  self[n] = value
  while n > 1 do
    local parent = n // 2
    if self[parent] <= self[n] then
      break
    end
    self[parent], self[n] = self[n], self[parent]
    n = parent
  end
end

--- The smallest value, or nil when empty.
function M:peek()
  return self[1]
end

function M:pop()
  local top = self[1]
  if top == nil then
    return nil
  end
  local n = self.n
  self[1] = self[n]
  self[n] = nil
  n = n - 1
  self.n = n
  local i = 1
  while true do
    local left, right, smallest = 2 * i, 2 * i + 1, i
    if left <= n and self[left] < self[smallest] then
      smallest = left
    end
    if right <= n and self[right] < self[smallest] then
      smallest = right
    end
    if smallest == i then
      break
    end
    self[i], self[smallest] = self[smallest], self[i]
    i = smallest
  end
  return top
end

return M
