-- JSON and YAML through the native `data` module: the cases the hand-written encoder got wrong.
local function json(value, opts)
  local text, err = data.to_json(value, opts)
  assert(text, err)
  return text
end

-- null keeps its place in an array, and survives the round trip.
local list = data.parse_json("[1,null,3]")
assert(#list == 3 and list[2] == data.null and list[3] == 3)
assert(json(list) == "[1,null,3]")
local object = data.parse_json('{"a":null}')
assert(object.a == data.null and json(object) == '{"a":null}')
-- Escaped surrogate pairs decode to the character, as UTF-8.
assert(data.parse_json('"\\ud83d\\ude00"') == "😀")
-- Floats are written as short as they read back exactly.
assert(json(0.1) == "0.1", json(0.1))
assert(json({ 1.5, 2, -0.25 }) == "[1.5,2,-0.25]")
-- Two keys with the same text are an error, not one silently lost.
local none, err = data.to_json({ [1] = "a", ["1"] = "b" })
assert(none == nil and err:find('both "1"', 1, true), err)
-- Leading zeros are not JSON.
local bad, parse_err = data.parse_json("01")
assert(bad == nil and parse_err:find("invalid JSON", 1, true), parse_err)
-- A string that is not UTF-8 is refused, naming where.
local raw, raw_err = data.to_json({ out = { "\255" } })
assert(raw == nil and raw_err:find("not UTF-8 at $.out[1]", 1, true), raw_err)
-- NaN and a cycle have no JSON form.
assert(select(2, data.to_json({ x = 0 / 0 })):find("$.x", 1, true))
local loop = {}
loop.self = loop
assert(select(2, data.to_json(loop)):find("cycle", 1, true))
-- Sorted keys, pretty when asked.
assert(json({ b = 1, a = { c = true } }) == '{"a":{"c":true},"b":1}')
assert(json({ a = 1 }, { pretty = true }) == '{\n  "a": 1\n}')
assert(not pcall(data.to_json, {}, { prety = true }))

-- YAML, both ways.
local doc = data.parse_yaml("name: sloth\nsteps:\n  - build\n  - test\nretries: 3\nmissing: ~\n")
assert(doc.name == "sloth" and doc.steps[2] == "test" and doc.retries == 3 and doc.missing == data.null)
local yaml = assert(data.to_yaml({ name = "sloth", steps = { "build" } }))
assert(yaml == "name: sloth\nsteps:\n- build\n", yaml)
assert(data.parse_yaml(yaml).steps[1] == "build")
local nope, yaml_err = data.parse_yaml("a: [1, 2")
assert(nope == nil and yaml_err:find("invalid YAML", 1, true), yaml_err)
