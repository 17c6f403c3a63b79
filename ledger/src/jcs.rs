//! A one-pass check that bytes are already in RFC 8785 (JCS) canonical form.
//!
//! Proposals carry each transaction's exact signed bytes, so no node
//! re-canonicalises a body on the hot path; every node instead checks, in
//! one pass and without building a JSON tree, that the bytes are what
//! [`crate::signing::canonical_json`] would produce for them. The check and
//! the canonicaliser agree by construction on every output of the
//! canonicaliser, and a property test holds them together on arbitrary JSON.
//!
//! Canonical form (RFC 8785 §3.2): no whitespace; object members sorted by
//! the UTF-16 code units of their names, no duplicates; strings escape
//! exactly `"`, `\` and U+0000–U+001F (`\b \t \n \f \r` in short form, the
//! rest as `\u00xx` in lowercase hex); numbers in ECMAScript's
//! shortest round-trip form of their IEEE 754 double.

/// Nesting deeper than this is not accepted (serde_json's own limit).
pub const DEPTH_MAX: usize = 128;

/// Whether `bytes` is one JSON object in canonical form.
pub fn is_canonical_object(bytes: &[u8]) -> bool {
    if bytes.first() != Some(&b'{') || std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut c = Cursor { b: bytes, i: 0 };
    c.value(0) && c.i == bytes.len()
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth >= DEPTH_MAX {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            let Some(name) = self.string() else {
                return false;
            };
            if let Some(p) = previous {
                if !utf16_less(p, name) {
                    return false;
                }
            }
            previous = Some(name);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A canonical string; returns its raw contents (between the quotes).
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(&self.b[start..self.i - 1]),
                0x00..=0x1f => return None,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            // Only U+0000–U+001F without a short form is written as \u00xx.
                            let lower = |h: u8| h.is_ascii_digit() || (b'a'..=b'f').contains(&h);
                            if hex[0] != b'0'
                                || hex[1] != b'0'
                                || !hex[2..].iter().all(|h| lower(*h))
                            {
                                return None;
                            }
                            let v = u8::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16)
                                .ok()?;
                            if v > 0x1f || matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                _ => {}
            }
        }
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        let digits = |c: &mut Self| {
            let s = c.i;
            while matches!(c.peek(), Some(b'0'..=b'9')) {
                c.i += 1;
            }
            c.i > s
        };
        if !digits(self) {
            return false;
        }
        if self.eat(b'.') && !digits(self) {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return false;
            }
        }
        let Ok(text) = std::str::from_utf8(&self.b[start..self.i]) else {
            return false;
        };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => ryu_js::Buffer::new().format_finite(v) == text,
            _ => false,
        }
    }
}

/// `a < b` comparing the decoded names by UTF-16 code units (RFC 8785
/// §3.2.3). Names here are raw canonical string contents: their escapes are
/// only for U+0000–U+001F, which sort as themselves.
fn utf16_less(a: &[u8], b: &[u8]) -> bool {
    if !a.contains(&b'\\') && !b.contains(&b'\\') && a.is_ascii() && b.is_ascii() {
        return a < b;
    }
    let (Some(a), Some(b)) = (unescape(a), unescape(b)) else {
        return false;
    };
    a.encode_utf16().lt(b.encode_utf16())
}

fn unescape(raw: &[u8]) -> Option<String> {
    let quoted = [b"\"", raw, b"\""].concat();
    serde_json::from_slice(&quoted).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::canonical_json;
    use serde_json::{json, Value};

    fn canon(v: &Value) -> Vec<u8> {
        canonical_json(v).unwrap()
    }

    #[test]
    fn canonical_outputs_pass_and_near_misses_fail() {
        let v = json!({"b": [1, 2.5, -3, 1e30, 0.000001, 1e-7, true, null], "a": "x\u{1}\n\"\\/é€😀", "c": {"z": {}, "y": []}});
        let c = canon(&v);
        assert!(is_canonical_object(&c), "{}", String::from_utf8_lossy(&c));
        let bad: &[&str] = &[
            r#"{"a":1 }"#,
            r#"{ "a":1}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a":1.0}"#,
            r#"{"a":01}"#,
            r#"{"a":-0}"#,
            r#"{"a":1E30}"#,
            r#"{"a":1e30}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u000A"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":tru}"#,
            r#"{"a":1}x"#,
            r#"[1]"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1e400}"#,
            r#"{"a":"x"#,
        ];
        for b in bad {
            assert!(!is_canonical_object(b.as_bytes()), "{b} accepted");
        }
        assert!(is_canonical_object(br#"{"a":1e+30}"#));
        assert!(is_canonical_object(br#"{"a":"\u001f\n"}"#));
        // Control characters raw inside a string are never canonical.
        assert!(!is_canonical_object(b"{\"a\":\"\x01\"}"));
    }

    #[test]
    fn names_sort_by_utf16_code_units() {
        // U+FB33 sorts after U+1F600 in UTF-16 (surrogates 0xD83D…), though not in UTF-8.
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2, "\r": 3, "1": 4});
        let c = canon(&v);
        assert!(is_canonical_object(&c));
        let swapped = r#"{"\r":3,"1":4,"דּ":1,"😀":2}"#;
        assert!(!is_canonical_object(swapped.as_bytes()));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{{\"a\":{}0{}}}",
            "[".repeat(DEPTH_MAX),
            "]".repeat(DEPTH_MAX)
        );
        assert!(!is_canonical_object(deep.as_bytes()));
        let ok = format!("{{\"a\":{}0{}}}", "[".repeat(20), "]".repeat(20));
        assert!(is_canonical_object(ok.as_bytes()));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!(f)),
                "[a-z0-9 \u{0}-\u{1f}\"\\\\/\u{7f}\u{e9}\u{4e00}\u{2028}\u{1f600}]{0,10}"
                    .prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        "[a-zA-Z_\u{e9}\u{fb33}\u{1f600}\u{1}]{1,4}",
                        inner,
                        0..5
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            /// Whatever the canonicaliser writes passes.
            #[test]
            fn canonical_output_passes(m in prop::collection::btree_map("[a-z\u{fb33}\u{1f600}]{1,5}", arb_json(), 0..6)) {
                let v = Value::Object(m.into_iter().collect());
                let c = canon(&v);
                prop_assert!(is_canonical_object(&c), "{}", String::from_utf8_lossy(&c));
            }

            /// Any other serialisation of a value passes exactly when it equals the canonical one.
            #[test]
            fn other_forms_pass_only_if_identical(m in prop::collection::btree_map("[a-z]{1,4}", arb_json(), 1..6), pretty in any::<bool>()) {
                let v = Value::Object(m.into_iter().collect());
                let text = if pretty { serde_json::to_vec_pretty(&v).unwrap() } else { serde_json::to_vec(&v).unwrap() };
                prop_assert_eq!(is_canonical_object(&text), text == canon(&v));
            }

            /// Single-byte mutations of canonical bytes pass only if they are canonical again.
            #[test]
            fn mutations_pass_only_if_canonical(m in prop::collection::btree_map("[a-z]{1,4}", arb_json(), 1..5), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let v = Value::Object(m.into_iter().collect());
                let mut c = canon(&v);
                let i = at.index(c.len());
                c[i] = byte;
                let expected = match serde_json::from_slice::<Value>(&c) {
                    Ok(parsed) if parsed.is_object() => canonical_json(&parsed).map(|cc| cc == c).unwrap_or(false),
                    _ => false,
                };
                // serde_json keeps the last of duplicate names; canonical form has none.
                prop_assert_eq!(is_canonical_object(&c), expected, "{}", String::from_utf8_lossy(&c));
            }
        }
    }
}
