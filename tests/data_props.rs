//! `data`'s JSON and YAML against serde's own: any JSON document parsed into Lua and written
//! back is the same document (empty arrays aside: an empty table is an object).

use proptest::prelude::*;
use serde_json::Value as Json;
use sloth_runner::runtime::{Runtime, RuntimeOptions};

fn documents() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite() && f.fract() != 0.0).prop_map(Json::from),
        "[\\PC]{0,12}".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(Json::Array),
            prop::collection::btree_map("[a-z0-9 _\\-é]{0,8}", inner, 0..6)
                .prop_map(|entries| Json::Object(entries.into_iter().collect())),
        ]
    })
}

fn round_trip(runtime: &Runtime, text: &str, parse: &str, write: &str) -> String {
    let function: mlua::Function = runtime
        .lua()
        .load(format!(
            "return function(text) local value, err = data.{parse}(text); assert(err == nil, err); return assert(data.{write}(value)) end"
        ))
        .eval()
        .expect("round trip function");
    function.call::<String>(text).expect("round trip")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn json_read_into_lua_and_written_back_is_the_same_document(document in documents()) {
        let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM");
        let text = serde_json::to_string(&document).expect("serde writes it");
        let back = round_trip(&runtime, &text, "parse_json", "to_json");
        // serde writes sorted keys too: the same text.
        prop_assert_eq!(&back, &text);
    }

    #[test]
    fn yaml_read_into_lua_and_written_back_is_the_same_document(document in documents()) {
        let runtime = Runtime::new(&RuntimeOptions::default()).expect("VM");
        let text = serde_yaml_ng::to_string(&document).expect("serde writes it");
        let back = round_trip(&runtime, &text, "parse_yaml", "to_yaml");
        let reread: Json = serde_yaml_ng::from_str(&back).expect("what data writes is YAML");
        prop_assert_eq!(reread, document);
    }
}
