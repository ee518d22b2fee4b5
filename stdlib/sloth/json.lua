--- JSON for pipelines (`data.to_json`, `data.parse_json`) and `--return`. Objects are written
--- with sorted keys, so the same value always gives the same text. A table with keys 1..n and
--- nothing else is an array; an empty table is an object.
local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then
      return false
    end
    n = n + 1
  end
  return n > 0 and n == #t
end

local function encode(value, path, seen, out)
  local kind = type(value)
  if value == nil then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = tostring(value)
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      error(string.format("cannot encode %s at %s as JSON", tostring(value), path), 0)
    end
    out[#out + 1] = math.type(value) == "integer" and tostring(value) or string.format("%.17g", value)
  elseif kind == "string" then
    out[#out + 1] = encode_string(value)
  elseif kind == "table" then
    if seen[value] then
      error("cannot encode a table that contains itself, at " .. path, 0)
    end
    seen[value] = true
    if is_array(value) then
      out[#out + 1] = "["
      for i, item in ipairs(value) do
        if i > 1 then
          out[#out + 1] = ","
        end
        encode(item, path .. "[" .. i .. "]", seen, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(value) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error(string.format("cannot encode a %s key at %s as JSON", type(k), path), 0)
        end
        keys[#keys + 1] = k
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then
          out[#out + 1] = ","
        end
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ":"
        encode(value[k], path .. "." .. tostring(k), seen, out)
      end
      out[#out + 1] = "}"
    end
    seen[value] = nil
  else
    error(string.format("cannot encode a %s at %s as JSON", kind, path), 0)
  end
end

--- JSON text for `value`; raises naming the path of anything that has no JSON form.
---@param value any
---@return string
function M.encode(value)
  local out = {}
  encode(value, "$", {}, out)
  return table.concat(out)
end

local Parser = {}
Parser.__index = Parser

function Parser:fail(what)
  error(string.format("invalid JSON at offset %d: %s", self.pos, what), 0)
end

function Parser:skip()
  self.pos = self.text:find("[^ \t\r\n]", self.pos) or #self.text + 1
end

function Parser:value()
  self:skip()
  local c = self.text:sub(self.pos, self.pos)
  if c == "{" then
    return self:object()
  elseif c == "[" then
    return self:array()
  elseif c == '"' then
    return self:string()
  elseif self.text:find("^true", self.pos) then
    self.pos = self.pos + 4
    return true
  elseif self.text:find("^false", self.pos) then
    self.pos = self.pos + 5
    return false
  elseif self.text:find("^null", self.pos) then
    self.pos = self.pos + 4
    return nil
  end
  local number = self.text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", self.pos)
  if number and #number > 0 then
    self.pos = self.pos + #number
    return math.tointeger(tonumber(number)) or tonumber(number) or self:fail("bad number")
  end
  self:fail("unexpected " .. (c == "" and "end of text" or "'" .. c .. "'"))
end

function Parser:string()
  local out = {}
  self.pos = self.pos + 1
  while true do
    local c = self.text:sub(self.pos, self.pos)
    if c == "" then
      self:fail("unterminated string")
    elseif c == '"' then
      self.pos = self.pos + 1
      return table.concat(out)
    elseif c == "\\" then
      local e = self.text:sub(self.pos + 1, self.pos + 1)
      local simple = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
      if simple[e] then
        out[#out + 1] = simple[e]
        self.pos = self.pos + 2
      elseif e == "u" then
        local hex = self.text:sub(self.pos + 2, self.pos + 5)
        local code = tonumber(hex, 16) or self:fail("bad \\u escape")
        out[#out + 1] = utf8.char(code)
        self.pos = self.pos + 6
      else
        self:fail("bad escape")
      end
    else
      out[#out + 1] = c
      self.pos = self.pos + 1
    end
  end
end

function Parser:array()
  local list = {}
  self.pos = self.pos + 1
  self:skip()
  if self.text:sub(self.pos, self.pos) == "]" then
    self.pos = self.pos + 1
    return list
  end
  while true do
    list[#list + 1] = self:value()
    self:skip()
    local c = self.text:sub(self.pos, self.pos)
    self.pos = self.pos + 1
    if c == "]" then
      return list
    elseif c ~= "," then
      self:fail("expected ',' or ']'")
    end
  end
end

function Parser:object()
  local object = {}
  self.pos = self.pos + 1
  self:skip()
  if self.text:sub(self.pos, self.pos) == "}" then
    self.pos = self.pos + 1
    return object
  end
  while true do
    self:skip()
    if self.text:sub(self.pos, self.pos) ~= '"' then
      self:fail("expected a string key")
    end
    local key = self:string()
    self:skip()
    if self.text:sub(self.pos, self.pos) ~= ":" then
      self:fail("expected ':'")
    end
    self.pos = self.pos + 1
    object[key] = self:value()
    self:skip()
    local c = self.text:sub(self.pos, self.pos)
    self.pos = self.pos + 1
    if c == "}" then
      return object
    elseif c ~= "," then
      self:fail("expected ',' or '}'")
    end
  end
end

--- The value of JSON `text`; raises with the offset of the first problem.
---@param text string
function M.decode(text)
  if type(text) ~= "string" then
    error("json.decode: expected string for 'text', got " .. type(text), 2)
  end
  local parser = setmetatable({ text = text, pos = 1 }, Parser)
  local value = parser:value()
  parser:skip()
  if parser.pos <= #text then
    parser:fail("trailing characters")
  end
  return value
end

return M
