//! Lua values to and from JSON documents, for what crosses a VM or process boundary.
//!
//! On the wire (`lua_to_bytes`, `bytes_to_lua`) a Lua value arrives as it left, whatever JSON
//! alone could carry: a string that is not UTF-8 — a command's raw output — travels as
//! `{ "\u0000sloth:bytes": "<hex>" }`; a table that is neither a sequence (keys 1..n) nor keyed
//! by strings only — `table.pack(...)` with its `n`, a sparse array, `{ [8080] = "web" }`, a
//! boolean key — as `{ "\u0000sloth:table": [[key, value], ...] }`; a number JSON has no form
//! for (NaN, ±infinity) as `{ "\u0000sloth:number": "nan" | "-nan" | "inf" | "-inf" }`; `data.null` as
//! null; and a table key that is not UTF-8 (a file name) as `"\u0000sloth:key:<hex>"`. So a
//! remote task's params, outputs and exports reach the other side exactly as a local task's
//! would (only metatables stay behind). A key that already starts with `"\u0000sloth:"` travels
//! encoded too, so nothing a task returns is mistaken for a tag.

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};

use crate::hex::{decode as unhex, encode as hex};

/// What every tag starts with.
const TAG_PREFIX: &[u8] = b"\0sloth:";
/// The key of the one-entry object that carries a string that is not UTF-8.
const BYTES_TAG: &str = "\u{0}sloth:bytes";
/// The key of the one-entry object that carries a table as its list of `[key, value]` pairs.
const TABLE_TAG: &str = "\u{0}sloth:table";
/// The key of the one-entry object that carries a number JSON cannot write.
const NUMBER_TAG: &str = "\u{0}sloth:number";
/// The prefix of an encoded table key.
const KEY_TAG: &str = "\u{0}sloth:key:";

/// Plain Lua tables: `null` becomes nil and arrays carry no special metatable.
pub fn to_lua(lua: &Lua, value: &serde_json::Value) -> LuaResult<Value> {
    let options =
        SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false).set_array_metatable(false);
    lua.to_value_with(value, options)
}

/// A JSON value for `value`; functions, threads and userdata are refused with `what` named.
pub fn from_lua(lua: &Lua, value: Value, what: &str) -> LuaResult<serde_json::Value> {
    lua.from_value_with(value, DeserializeOptions::new().deny_recursive_tables(true))
        .map_err(|e| mlua::Error::runtime(format!("{what} cannot be sent as JSON: {e}")))
}

/// The Lua value of what `lua_to_bytes` wrote; empty bytes read as an empty table.
pub fn bytes_to_lua(lua: &Lua, bytes: &[u8], what: &str) -> LuaResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Table(lua.create_table()?));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| mlua::Error::runtime(format!("{what}: invalid JSON: {e}")))?;
    // Null is `data.null`: only a `data.null` sent makes one.
    let options =
        SerializeOptions::new().serialize_none_to_null(true).serialize_unit_to_null(true).set_array_metatable(false);
    let value = lua.to_value_with(&value, options)?;
    // The tags' JSON spelling: only a document that has one needs the walk.
    if bytes.windows(12).any(|window| window == b"\\u0000sloth:") {
        return untag(lua, value, 0);
    }
    Ok(value)
}

/// JSON bytes for a Lua value.
pub fn lua_to_bytes(lua: &Lua, value: Value, what: &str) -> LuaResult<Vec<u8>> {
    let mut walk = Walk { ancestors: Vec::new(), left: MAX_VALUES };
    if let Err(why) = walk.check(&value, &mut String::new(), 0) {
        return Err(mlua::Error::runtime(format!("{what} cannot be sent: {why}")));
    }
    let value = if needs_tags(&value, 0) { tag(lua, value, 0)? } else { value };
    let json = from_lua(lua, value, what)?;
    serde_json::to_vec(&json).map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))
}

/// The most values (a table counted once for each place it appears) a value may hold to be
/// sent: tables shared in many places expand on the wire, and one that shares itself down a
/// few dozen levels would take for ever.
const MAX_VALUES: usize = 4_000_000;

/// A look through a value before it is sent: what cannot travel, named where it is.
struct Walk {
    /// The tables from the value down to the one looked at (a table among them again is a cycle).
    ancestors: Vec<*const std::ffi::c_void>,
    /// Values that may still be looked at.
    left: usize,
}

impl Walk {
    /// Why `value` (at `path`, `a.b[2]` from the top) cannot travel: something that is not data
    /// (a function, a coroutine, a userdata other than `data.null`, as a value or a key), a table
    /// that holds itself, or too many values.
    fn check(&mut self, value: &Value, path: &mut String, depth: usize) -> Result<(), String> {
        let named = |path: &str| if path.is_empty() { "the value".to_owned() } else { format!("'{path}'") };
        self.left = self.left.checked_sub(1).ok_or_else(|| {
            format!("it holds more than {MAX_VALUES} values (a table shared in many places counts in each)")
        })?;
        match value {
            Value::Table(table) if depth < MAX_DEPTH => {
                let address = table.to_pointer();
                if self.ancestors.contains(&address) {
                    return Err(format!(
                        "{} holds itself (a table that contains itself has no form on the wire)",
                        named(path)
                    ));
                }
                self.ancestors.push(address);
                for pair in table.pairs::<Value, Value>() {
                    let (key, value) = pair.map_err(|e| e.to_string())?;
                    let at = path.len();
                    match &key {
                        Value::String(text) if path.is_empty() => path.push_str(&text.to_string_lossy()),
                        Value::String(text) => {
                            path.push('.');
                            path.push_str(&text.to_string_lossy());
                        }
                        other => path.push_str(&format!("[{}]", other.to_string().unwrap_or_default())),
                    }
                    if let Some(kind) = not_data(&key) {
                        return Err(format!("a key in {} is a {kind}", named(&path[..at])));
                    }
                    self.check(&value, path, depth + 1)?;
                    path.truncate(at);
                }
                self.ancestors.pop();
                Ok(())
            }
            other => match not_data(other) {
                Some(kind) => Err(format!(
                    "{} is a {kind} (only data travels: strings, numbers, booleans, tables, data.null)",
                    named(path)
                )),
                None => Ok(()),
            },
        }
    }
}

/// The type of a value that is not data, if it is not.
fn not_data(value: &Value) -> Option<&'static str> {
    match value {
        Value::Function(_) | Value::Thread(_) | Value::UserData(_) | Value::Error(_) | Value::Other(..) => {
            Some(value.type_name())
        }
        Value::LightUserData(data) if !data.0.is_null() => Some(value.type_name()),
        _ => None,
    }
}

/// Deeper than this, tables are left to the JSON conversion (which refuses cycles).
const MAX_DEPTH: usize = 128;

fn not_utf8(text: &mlua::LuaString) -> bool {
    std::str::from_utf8(&text.as_bytes()).is_err()
}

/// A key that cannot travel as it is: not UTF-8, or looking like a tag.
fn key_needs_encoding(key: &Value) -> bool {
    matches!(key, Value::String(text) if not_utf8(text) || text.as_bytes().starts_with(TAG_PREFIX))
}

/// Whether JSON writes `table` as it is: a sequence (keys exactly 1..n) or keys that are all
/// strings (the empty table is both).
fn plain_shape(table: &Table) -> bool {
    let (mut indices, mut highest, mut strings) = (0i64, 0i64, 0usize);
    for pair in table.pairs::<Value, Value>() {
        match pair {
            Ok((Value::Integer(index), _)) if index >= 1 => {
                indices += 1;
                highest = highest.max(index);
            }
            Ok((Value::String(_), _)) => strings += 1,
            _ => return false,
        }
    }
    indices == 0 || (strings == 0 && highest == indices)
}

fn needs_tags(value: &Value, depth: usize) -> bool {
    match value {
        Value::String(text) => not_utf8(text),
        Value::Number(number) => !number.is_finite(),
        Value::Table(table) if depth < MAX_DEPTH => {
            !plain_shape(table)
                || table
                    .pairs::<Value, Value>()
                    .flatten()
                    .any(|(key, value)| key_needs_encoding(&key) || needs_tags(&value, depth + 1))
        }
        _ => false,
    }
}

fn one_entry(lua: &Lua, tag: &str, value: impl mlua::IntoLua) -> LuaResult<Value> {
    let tagged = lua.create_table()?;
    tagged.raw_set(tag, value)?;
    Ok(Value::Table(tagged))
}

/// A copy of `value` in which everything JSON cannot carry as it is has its tagged form.
fn tag(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    match value {
        Value::String(text) if not_utf8(&text) => one_entry(lua, BYTES_TAG, hex(&text.as_bytes())),
        Value::Number(number) if !number.is_finite() => {
            // (A NaN keeps its sign: Lua prints `0/0` as `-nan`.)
            let name = match (number.is_nan(), number.is_sign_negative()) {
                (true, false) => "nan",
                (true, true) => "-nan",
                (false, false) => "inf",
                (false, true) => "-inf",
            };
            one_entry(lua, NUMBER_TAG, name)
        }
        Value::Table(table) if depth < MAX_DEPTH && !plain_shape(&table) => {
            let pairs = lua.create_table()?;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                pairs.raw_push(lua.create_sequence_from([tag(lua, key, depth + 1)?, tag(lua, value, depth + 1)?])?)?;
            }
            one_entry(lua, TABLE_TAG, pairs)
        }
        Value::Table(table) if depth < MAX_DEPTH => {
            let copy = lua.create_table()?;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                let key = match key {
                    Value::String(text) if key_needs_encoding(&Value::String(text.clone())) => {
                        Value::String(lua.create_string(format!("{KEY_TAG}{}", hex(&text.as_bytes())))?)
                    }
                    other => other,
                };
                copy.raw_set(key, tag(lua, value, depth + 1)?)?;
            }
            copy.set_metatable(table.metatable())?;
            Ok(Value::Table(copy))
        }
        other => Ok(other),
    }
}

/// `value` with every tagged form turned back into what it stands for.
fn untag(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    let Value::Table(table) = value else { return Ok(value) };
    if let Some(bytes) = tagged(&table, BYTES_TAG)?.and_then(|hex| unhex(&hex)) {
        return Ok(Value::String(lua.create_string(bytes)?));
    }
    if let Some(name) = tagged(&table, NUMBER_TAG)? {
        let number = match &name[..] {
            b"nan" => f64::NAN,
            b"-nan" => -f64::NAN,
            b"inf" => f64::INFINITY,
            b"-inf" => f64::NEG_INFINITY,
            _ => return Ok(Value::Table(table)),
        };
        return Ok(Value::Number(number));
    }
    if depth >= MAX_DEPTH {
        return Ok(Value::Table(table));
    }
    if let Some(Value::Table(pairs)) = tagged_value(&table, TABLE_TAG)? {
        let rebuilt = lua.create_table()?;
        for pair in pairs.sequence_values::<Table>() {
            let pair = pair?;
            let key = untag(lua, pair.raw_get(1)?, depth + 1)?;
            let value = untag(lua, pair.raw_get(2)?, depth + 1)?;
            rebuilt.raw_set(key, value)?;
        }
        return Ok(Value::Table(rebuilt));
    }
    let pairs: Vec<(Value, Value)> = table.pairs::<Value, Value>().collect::<LuaResult<_>>()?;
    for (key, value) in pairs {
        let decoded = match &key {
            Value::String(text) => {
                text.as_bytes().strip_prefix(KEY_TAG.as_bytes()).and_then(unhex).map(|bytes| lua.create_string(bytes))
            }
            _ => None,
        };
        let value = if matches!(value, Value::Table(_)) { untag(lua, value, depth + 1)? } else { value };
        match decoded {
            Some(new_key) => {
                table.raw_set(key, Value::Nil)?;
                table.raw_set(new_key?, value)?;
            }
            None => table.raw_set(key, value)?,
        }
    }
    Ok(Value::Table(table))
}

/// The one value of a one-entry table keyed `tag`, if `table` is one.
fn tagged_value(table: &Table, tag: &str) -> LuaResult<Option<Value>> {
    let value = table.raw_get::<Value>(tag)?;
    if value.is_nil() || table.pairs::<Value, Value>().count() != 1 {
        return Ok(None);
    }
    Ok(Some(value))
}

/// The string a one-entry table keyed `tag` carries.
fn tagged(table: &Table, tag: &str) -> LuaResult<Option<Vec<u8>>> {
    Ok(match tagged_value(table, tag)? {
        Some(Value::String(text)) => Some(text.as_bytes().to_vec()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_are_not_utf8_cross_the_wire_as_the_same_bytes() {
        let lua = Lua::new();
        let value: Value = lua
            .load(r#"return { stdout = "a\255b\n", nested = { "ok", "\254" }, plain = "text", n = 3 }"#)
            .eval()
            .expect("a table");
        let bytes = lua_to_bytes(&lua, value, "outputs").expect("encodes");
        let back = bytes_to_lua(&lua, &bytes, "outputs").expect("decodes");
        let Value::Table(back) = back else { panic!("a table") };
        assert_eq!(back.get::<mlua::LuaString>("stdout").expect("stdout").as_bytes().to_vec(), b"a\xffb\n");
        let nested: Table = back.get("nested").expect("nested");
        assert_eq!(nested.get::<mlua::LuaString>(2).expect("second").as_bytes().to_vec(), b"\xfe");
        assert_eq!(back.get::<String>("plain").expect("plain"), "text");
        assert_eq!(back.get::<i64>("n").expect("n"), 3);
    }

    /// Whether two Lua values are the same data: equal scalars (NaN equal to NaN) and tables
    /// with the same keys holding the same data.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_nan() && y.is_nan() => true,
            (Value::Integer(x), Value::Integer(y)) => x == y,
            (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
            (Value::Table(x), Value::Table(y)) => {
                let pairs = |t: &Table| t.pairs::<Value, Value>().collect::<LuaResult<Vec<_>>>().expect("pairs");
                let (xs, ys) = (pairs(x), pairs(y));
                xs.len() == ys.len()
                    && xs.iter().all(|(key, value)| {
                        let other = y.raw_get::<Value>(key.clone()).expect("raw_get");
                        same(value, &other)
                    })
            }
            (x, y) => x == y,
        }
    }

    fn round_trip(lua: &Lua, value: Value) -> Value {
        let bytes = lua_to_bytes(lua, value, "outputs").expect("encodes");
        bytes_to_lua(lua, &bytes, "outputs").expect("decodes")
    }

    #[test]
    fn tables_json_has_no_shape_for_arrive_whole() {
        let lua = Lua::new();
        lua.globals().set("null", Value::NULL).expect("null");
        let cases = [
            "table.pack('a', 'b')",
            "{ 'x', 'y', kind = 'list' }",
            "{ [1] = 'a', [3] = 'c' }",
            "{ [8080] = 'web', [0] = 'zero', [-1] = 'minus' }",
            "{ [true] = 'yes', [false] = 'no' }",
            "{ [1.5] = 'half', [math.huge] = 'far' }",
            "{ ratio = 0/0, far = math.huge, near = -math.huge, f = 1.0, i = 1 }",
            "{ 1, null, 3, { nested = null } }",
            r"{ deep = { table.pack(), { [2] = { ['\255'] = '\254' } } } }",
            r"{ ['\0sloth:table'] = { { 1, 2 } }, ['\0sloth:number'] = 'nan' }",
            r"{ '\0sloth:bytes', { ['\0sloth:number'] = 'inf' } }",
            "{}",
        ];
        for case in cases {
            let value: Value = lua.load(format!("return {case}")).eval().expect(case);
            let back = round_trip(&lua, value.clone());
            assert!(same(&value, &back), "{case} came back as {back:?}");
        }
        let nan = round_trip(&lua, Value::Number(f64::NAN));
        assert!(matches!(nan, Value::Number(n) if n.is_nan()), "{nan:?}");
    }

    #[test]
    fn what_is_not_data_is_named_where_it_is() {
        let lua = Lua::new();
        let value: Value =
            lua.load("return { f = { cb = print }, [2] = { coroutine.create(print) } }").eval().expect("a table");
        let error = lua_to_bytes(&lua, value, "the task's outputs").expect_err("a function cannot travel").to_string();
        assert!(error.contains("'f.cb' is a function") || error.contains("'[2][1]' is a thread"), "{error}");
        let key: Value = lua.load("return { nested = { [print] = 1 } }").eval().expect("a table");
        let error = lua_to_bytes(&lua, key, "the task's outputs").expect_err("a function key").to_string();
        assert!(error.contains("a key in 'nested' is a function"), "{error}");
    }

    /// A table that holds itself, or that shares a table down many levels (2^60 places), is
    /// refused at once, saying why — not walked for ever.
    #[test]
    fn a_table_that_holds_itself_or_expands_without_end_is_refused_at_once() {
        let lua = Lua::new();
        let cycle: Value = lua.load("local t = {}; t.a = { b = t }; return t").eval().expect("a table");
        let error = lua_to_bytes(&lua, cycle, "the task's outputs").expect_err("a cycle").to_string();
        assert!(error.contains("'a.b' holds itself"), "{error}");
        let shared: Value = lua
            .load("local t = { 1 }; for _ = 1, 60 do t = { a = t, b = t, [0] = t } end; return t")
            .eval()
            .expect("a table");
        let started = std::time::Instant::now();
        let error = lua_to_bytes(&lua, shared, "the task's outputs").expect_err("too many").to_string();
        assert!(error.contains("more than"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "refused at once");
    }

    /// A Lua data value, as a pipeline's outputs may hold.
    #[derive(Debug, Clone)]
    enum Data {
        Null,
        Bool(bool),
        Integer(i64),
        Float(f64),
        Bytes(Vec<u8>),
        Table(Vec<(Data, Data)>),
    }

    fn scalar() -> impl proptest::strategy::Strategy<Value = Data> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Data::Null),
            any::<bool>().prop_map(Data::Bool),
            prop_oneof![-3i64..12, any::<i64>()].prop_map(Data::Integer),
            prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0)].prop_map(Data::Float),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..6),
                Just(b"\0sloth:bytes".to_vec()),
                Just(b"\0sloth:table".to_vec()),
            ]
            .prop_map(Data::Bytes),
        ]
    }

    fn data() -> impl proptest::strategy::Strategy<Value = Data> {
        use proptest::prelude::*;
        scalar()
            .prop_recursive(4, 48, 6, |inner| proptest::collection::vec((scalar(), inner), 0..6).prop_map(Data::Table))
    }

    fn to_value(lua: &Lua, data: &Data) -> Value {
        match data {
            Data::Null => Value::NULL,
            Data::Bool(b) => Value::Boolean(*b),
            Data::Integer(i) => Value::Integer(*i),
            Data::Float(f) => Value::Number(*f),
            Data::Bytes(bytes) => Value::String(lua.create_string(bytes).expect("string")),
            Data::Table(pairs) => {
                let table = lua.create_table().expect("table");
                for (key, value) in pairs {
                    // (Keys Lua refuses — NaN, nil — are not keys.)
                    let key = to_value(lua, key);
                    if matches!(key, Value::Number(n) if n.is_nan()) || key == Value::NULL {
                        continue;
                    }
                    table.raw_set(key, to_value(lua, value)).expect("raw_set");
                }
                Value::Table(table)
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_lua_data_crosses_the_wire_as_it_was(data in data()) {
            let lua = Lua::new();
            let value = to_value(&lua, &data);
            let back = round_trip(&lua, value.clone());
            proptest::prop_assert!(same(&value, &back), "{:?} came back as {:?}", value, back);
        }
    }

    #[test]
    fn keys_that_are_not_utf8_or_look_like_tags_arrive_as_they_were() {
        let lua = Lua::new();
        let value: Value = lua
            .load(r#"return { ["k\255"] = "v", ["\0sloth:bytes"] = "6869", ["\0sloth:key:6869"] = 1 }"#)
            .eval()
            .expect("a table");
        let bytes = lua_to_bytes(&lua, value, "outputs").expect("encodes");
        let Value::Table(back) = bytes_to_lua(&lua, &bytes, "outputs").expect("decodes") else { panic!("a table") };
        assert_eq!(back.raw_get::<String>(lua.create_string(b"k\xff").expect("key")).expect("k"), "v");
        assert_eq!(back.raw_get::<String>("\0sloth:bytes").expect("a plain key"), "6869");
        assert_eq!(back.raw_get::<i64>("\0sloth:key:6869").expect("a plain key"), 1);
        assert_eq!(back.pairs::<Value, Value>().count(), 3);
    }
}
