-- How the REPL prints values: as Lua would read them back where it can.
local repl = require("sloth.repl")
local show = repl.show

assert(show({ 1, 2, 3 }) == "{ 1, 2, 3 }", show({ 1, 2, 3 }))
-- The sequence first, then the other keys sorted; keywords and odd keys bracketed.
local mixed = show({ 1, 2, x = 3, ["end"] = 4, [10] = 5, ["a b"] = 6 })
assert(mixed == '{ 1, 2, [10] = 5, ["a b"] = 6, ["end"] = 4, x = 3 }', mixed)
assert(show({}) == "{}")
assert(show("a\nb") == '"a\\nb"', show("a\nb"))
-- A table met again on the way down is marked, not followed.
local t = { a = 1 }
t.self = t
assert(show(t) == "{ a = 1, self = <cycle> }", show(t))
-- The same table twice side by side is no cycle.
local shared = { 1 }
assert(show({ shared, shared }) == "{ { 1 }, { 1 } }", show({ shared, shared }))
-- Deep tables stop at the depth.
assert(show({ a = { b = { c = { d = 1 } } } }) == "{ a = { b = { c = {...} } } }")
-- Long tables: the first MAX_ENTRIES entries, then how many more; short entries share lines.
local big = {}
for i = 1, repl.MAX_ENTRIES + 10 do
  big[i] = i
end
local text = show(big)
assert(text:find("… 10 more", 1, true), text)
assert(not text:find(tostring(repl.MAX_ENTRIES + 1) .. ",", 1, true), text)
assert(select(2, text:gsub("\n", "")) <= 6, text)
-- Nested multi-line tables are indented; keyed entries a line each.
local nested = show({ name = "sloth", items = { string.rep("x", 40), string.rep("y", 40) } })
assert(nested == '{\n  items = {\n    "' .. string.rep("x", 40) .. '",\n    "' .. string.rep("y", 40)
  .. '"\n  },\n  name = "sloth"\n}', nested)
-- No metamethod runs: __index, __pairs and __len are not called; __tostring is how such a
-- table asks to be shown.
local calls = 0
local sneaky = setmetatable({ 1 }, {
  __index = function() calls = calls + 1 end,
  __pairs = function() calls = calls + 1 return next, {} end,
  __len = function() calls = calls + 1 return 99 end,
})
assert(show(sneaky) == "{ 1 }", show(sneaky))
assert(calls == 0)
assert(show(setmetatable({}, { __tostring = function() return "<thing>" end })) == "<thing>")
-- At the prompt, a string is printed as it is.
assert(repl.result("raw\ttext") == "raw\ttext")
assert(repl.result(42) == "42")
-- A table whose `#` border lies far out is shown by its entries, not counted to it.
local sparse = { true, true, true, true }
sparse[1 << 40] = true
local shown = show(sparse)
assert(shown:find("[1099511627776] = true", 1, true), shown)
-- Keys are sorted without calling their __tostring (a key is shown by it, once).
local calls = 0
local odd_key = setmetatable({}, { __tostring = function() calls = calls + 1 return "odd" end })
local keyed = show({ [odd_key] = 1, [{}] = 2, [{}] = 3 })
assert(keyed:find("[odd] = 1", 1, true), keyed)
assert(calls == 1, calls)
-- Strings keep the terminal safe: C1 controls and bytes that are not UTF-8 are escaped.
assert(show("a\194\155b") == '"a\\194\\155b"', show("a\194\155b"))
assert(show("\255x") == '"\\255x"', show("\255x"))
assert(show("héllo") == '"héllo"', show("héllo"))
