//! Strict JSON input (RFC 7493 I-JSON, as RFC 8785 requires of what it
//! canonicalises): a duplicate member name anywhere is refused, because two
//! readers of the same bytes would disagree on its value (serde keeps the
//! last, many ERP and audit parsers the first). Unpaired surrogates and
//! invalid UTF-8 are refused by the parser itself.
//!
//! A leaf module next to `refusal`: every reader of outside JSON
//! (transactions, batches, evidence bundles, genesis) goes through it.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why bytes are not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// An object names a member twice; the name is given.
    DuplicateKey(String),
    /// Not JSON at all (syntax, UTF-8, surrogates, depth).
    Syntax(String),
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictJsonError::DuplicateKey(k) => write!(f, "member `{k}` appears twice"),
            StrictJsonError::Syntax(e) => write!(f, "not valid JSON: {e}"),
        }
    }
}

/// Name length shown in a duplicate-key error, in characters.
const NAME_SHOWN_CHARS_MAX: usize = 40;

/// A JSON value whose objects had no duplicate names.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                let shown: String = key.chars().take(NAME_SHOWN_CHARS_MAX).collect();
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARK}{shown}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Marks the duplicate-key error inside serde_json's error text, so it can be
/// told from a syntax error without a second parse.
const DUPLICATE_MARK: &str = "\u{0}zsl-duplicate-key:";

/// Parses `bytes` as one JSON value, refusing duplicate member names at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| {
            let text = e.to_string();
            match text.split_once(DUPLICATE_MARK) {
                Some((_, rest)) => {
                    // serde_json appends " at line L column C".
                    let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
                    StrictJsonError::DuplicateKey(name.to_owned())
                }
                None => StrictJsonError::Syntax(text),
            }
        })
}

/// Parses `bytes` strictly, then into `T` (whose own serde rules, such as
/// `deny_unknown_fields`, apply as usual).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StrictJsonError> {
    let v = parse(bytes)?;
    serde_json::from_value(v).map_err(|e| StrictJsonError::Syntax(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        for (text, name) in [
            (r#"{"quantity":1,"quantity":1000}"#, "quantity"),
            (r#"{"a":{"b":1,"c":2,"b":3}}"#, "b"),
            (r#"[1,{"x":[{"y":1,"y":1}]}]"#, "y"),
            (r#"{"sig":"aa","body":{},"sig":"bb"}"#, "sig"),
            // The same name, once escaped: still the same member.
            (r#"{"a":1,"\u0061":2}"#, "a"),
        ] {
            assert_eq!(
                parse(text.as_bytes()),
                Err(StrictJsonError::DuplicateKey(name.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        for text in [
            "{",
            r#"{"a":1,}"#,
            r#""\ud800""#,
            "\"\u{0}\"",
            "{\"a\":1} x",
        ] {
            assert!(
                matches!(parse(text.as_bytes()), Err(StrictJsonError::Syntax(_))),
                "{text:?}"
            );
        }
        assert!(matches!(parse(b"\xff"), Err(StrictJsonError::Syntax(_))));
    }

    #[test]
    fn a_key_that_looks_like_the_marker_is_just_a_key() {
        let v = parse(br#"{"zsl-duplicate-key:a":1}"#).expect("one member");
        assert_eq!(v, json!({"zsl-duplicate-key:a": 1}));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\u{4e00}-\u{4e10}]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever serde_json writes (it never repeats a name) parses to the same value.
        #[test]
        fn strict_parse_agrees_with_serde_json_on_valid_input(v in arb_json(), pretty in any::<bool>()) {
            let bytes = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.expect("serialises");
            prop_assert_eq!(parse(&bytes), Ok(v));
        }
    }
}
