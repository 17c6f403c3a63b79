//! docs/records.md, generated: each record type's fields from its served
//! schema ([`super::schema::body_schema`]), who may sign it, and the refusal
//! codes its rule can give, found by walking the rule's calls in the state
//! machine's source. The test fails when the file differs from what the code
//! gives; `ZSL_WRITE_DOCS=1 cargo test -p ledger records_md` rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::schema::{body_schema, signed_by};
use super::{COMMON_FIELDS, RECORD_TYPES};
use crate::refusal::RefusalCode;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Source files whose functions a record's rule may call.
fn rule_sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("src/machine/rules"))
        .expect("rules directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(crate_dir().join("src/validate.rs"));
    files.sort();
    files
}

/// Identifier characters.
fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether a word starts at byte `i` (no identifier character before it).
fn word_starts(text: &str, i: usize) -> bool {
    !text[..i].chars().last().is_some_and(ident)
}

/// The identifier at byte `i`.
fn word_at(text: &str, i: usize) -> String {
    text[i..].chars().take_while(|&c| ident(c)).collect()
}

/// Each function's body text (from its `fn` to the next), by name.
fn functions(text: &str) -> Vec<(String, String)> {
    let starts: Vec<(usize, String)> = text
        .match_indices("fn ")
        .filter(|(i, _)| word_starts(text, *i))
        .filter_map(|(i, _)| {
            let name = word_at(text, i + 3);
            (!name.is_empty()).then_some((i, name))
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, (i, name))| {
            let end = starts.get(k + 1).map_or(text.len(), |(j, _)| *j);
            (name.clone(), text[*i..end].to_string())
        })
        .collect()
}

/// Refusal codes named in a text (`C::X` or `RefusalCode::X`).
fn codes_in(text: &str) -> BTreeSet<RefusalCode> {
    let by_name: BTreeMap<String, RefusalCode> = RefusalCode::ALL
        .iter()
        .map(|c| (format!("{c:?}"), *c))
        .collect();
    let mut out = BTreeSet::new();
    for prefix in ["C::", "RefusalCode::"] {
        for (i, _) in text.match_indices(prefix) {
            if let Some(c) = by_name.get(&word_at(text, i + prefix.len())) {
                out.insert(*c);
            }
        }
    }
    out
}

/// Names called in a text (`name(`), among `known`.
fn calls_in<'a>(text: &str, known: &'a BTreeMap<String, String>) -> BTreeSet<&'a str> {
    known
        .keys()
        .filter(|name| {
            text.match_indices(&format!("{name}("))
                .any(|(i, _)| word_starts(text, i))
        })
        .map(String::as_str)
        .collect()
}

/// The codes a piece of rule text can give: its own and those of every
/// function it calls, transitively.
fn reachable_codes(text: &str, bodies: &BTreeMap<String, String>) -> BTreeSet<RefusalCode> {
    let mut codes = codes_in(text);
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = calls_in(text, bodies).into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        let body = &bodies[name];
        codes.extend(codes_in(body));
        todo.extend(calls_in(body, bodies));
    }
    codes
}

/// Refusal codes by record type, from the dispatch in `rules/mod.rs`.
fn codes_by_type() -> BTreeMap<&'static str, BTreeSet<RefusalCode>> {
    let mut bodies = BTreeMap::new();
    for file in rule_sources() {
        let text = std::fs::read_to_string(&file).expect("rule source");
        for (name, body) in functions(&text) {
            // `record` is the dispatcher itself.
            if name != "record" {
                bodies
                    .entry(name)
                    .and_modify(|b: &mut String| b.push_str(&body))
                    .or_insert(body);
            }
        }
    }
    let dispatch = std::fs::read_to_string(crate_dir().join("src/machine/rules/mod.rs"))
        .expect("rules/mod.rs");
    let start = dispatch.find("fn record(").expect("the dispatcher");
    let arms = &dispatch[start..];
    let mut out = BTreeMap::new();
    for kind in RECORD_TYPES {
        let variant = variant_of(kind);
        let at = arms
            .find(&format!("Record::{variant}(r) =>"))
            .unwrap_or_else(|| panic!("no dispatch arm for {kind}"));
        let arm = &arms[at..];
        let end = arm[1..].find("Record::").map_or(arm.len(), |e| e + 1);
        out.insert(kind, reachable_codes(&arm[..end], &bodies));
    }
    out
}

/// The `Record` variant of each type, as the dispatcher names it.
fn variant_of(kind: &str) -> &'static str {
    VARIANTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no variant for {kind}"))
}

const VARIANTS: [(&str, &str); 21] = [
    ("account.register", "AccountRegister"),
    ("subject.register", "SubjectRegister"),
    ("subject.update", "SubjectUpdate"),
    ("key.bind", "KeyBind"),
    ("key.revoke", "KeyRevoke"),
    ("product.register", "ProductRegister"),
    ("batch.code", "BatchCode"),
    ("shipment.create", "ShipmentCreate"),
    ("shipment.receive", "ShipmentReceive"),
    ("shipment.reject", "ShipmentReject"),
    ("certificate.issue", "CertificateIssue"),
    ("rapid_test.record", "RapidTestRecord"),
    ("finding.record", "FindingRecord"),
    ("finding.rectify", "FindingRectify"),
    ("recall.issue", "RecallIssue"),
    ("adjustment.record", "AdjustmentRecord"),
    ("document.notarize", "DocumentNotarize"),
    ("catalogue.key_subjects", "KeySubjectsUpdate"),
    ("catalogue.key_varieties", "KeyVarietiesUpdate"),
    ("validator.add", "ValidatorAdd"),
    ("validator.remove", "ValidatorRemove"),
];

/// The non-null forms of an `anyOf` (an `Option` adds a `null` one).
fn alternatives(s: &Value) -> Option<Vec<&Value>> {
    let alts = s.get("anyOf")?.as_array()?;
    Some(alts.iter().filter(|a| a["type"] != "null").collect())
}

/// A one-line description of a schema's type.
fn shape(s: &Value) -> String {
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let v: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect();
        return format!("one of {}", v.join(", "));
    }
    if let Some(non_null) = alternatives(s) {
        return match non_null.as_slice() {
            [one] => shape(one),
            many => format!("one of {} forms (below)", many.len()),
        };
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    match types.as_slice() {
        ["array"] => format!("array of {}", shape(&s["items"])),
        ["integer"] => match s.get("minimum") {
            Some(m) => format!("integer ≥ {m}"),
            None => "integer".into(),
        },
        ["string"] => match s.get("format").and_then(Value::as_str) {
            Some(f) => format!("string ({f})"),
            None => "string".into(),
        },
        [t] => (*t).to_string(),
        _ => "any".into(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The objects nested in a field (an object, an array of objects, or the
/// forms of a choice), with the path prefix their fields get.
fn nested<'a>(path: &str, s: &'a Value) -> Vec<(String, &'a Value)> {
    if s.get("properties").is_some() {
        return vec![(path.to_string(), s)];
    }
    if let Some(non_null) = alternatives(s) {
        if let [one] = non_null.as_slice() {
            return nested(path, one);
        }
        return non_null
            .iter()
            .enumerate()
            .flat_map(|(i, a)| nested(&format!("{path} (form {})", i + 1), a))
            .collect();
    }
    if s["type"] == "array" {
        return nested(&format!("{path}[]"), &s["items"]);
    }
    Vec::new()
}

fn field_rows(out: &mut String, prefix: &str, object: &Value, skip: &[&str]) {
    let required: BTreeSet<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = object["properties"].as_object() else {
        return;
    };
    for (name, s) in props {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let req = if required.contains(name.as_str()) {
            "yes"
        } else {
            "no"
        };
        let mut description = one_line(s["description"].as_str().unwrap_or(""));
        if let Some(alts) = alternatives(s) {
            for (i, a) in alts.iter().enumerate() {
                if let Some(d) = a["description"].as_str() {
                    let _ = write!(description, " Form {}: {}", i + 1, one_line(d));
                }
            }
        }
        let _ = writeln!(
            out,
            "| `{path}` | {} | {req} | {} |",
            shape(s),
            description.trim()
        );
        for (p, o) in nested(&path, s) {
            field_rows(out, &p, o, &[]);
        }
    }
}

fn code_list(codes: &BTreeSet<RefusalCode>) -> String {
    let v: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
    v.join(", ")
}

/// Codes the envelope, the signature, the signer's key and the block's limits
/// can give any record: the "Envelope and signing" group that opens
/// [`RefusalCode::ALL`], and three more.
fn envelope() -> BTreeSet<RefusalCode> {
    let signing = RefusalCode::ALL
        .iter()
        .position(|c| *c == RefusalCode::Replayed)
        .expect("replayed closes the envelope group");
    RefusalCode::ALL[..=signing]
        .iter()
        .copied()
        .chain([
            RefusalCode::UnknownAccount,
            RefusalCode::KeyNotActive,
            RefusalCode::LimitExceeded,
        ])
        .collect()
}

fn markdown() -> String {
    let codes = codes_by_type();
    let mut out = String::new();
    out.push_str(
        "# Record reference\n\n\
         <!-- Generated from the code by ledger/src/record/reference.rs; do not edit. \
         `ZSL_WRITE_DOCS=1 cargo test -p ledger records_md` rewrites it, and the test fails \
         when it differs. -->\n\n\
         Every transaction body is a JSON object: the common fields below, then the fields of \
         its `type`. It is signed as docs/signing.md describes and submitted to `POST /v1/tx`. \
         A node serves each type's JSON Schema (2020-12) at `GET /v1/schemas/{type}` (the list at \
         `GET /v1/schemas`; the same schemas are the `Record.{type}` components of \
         `/openapi.json`). The schemas are derived from the types the state machine parses, so \
         they give exactly the accepted shape: unknown fields are refused (`unknown_field`), \
         optional fields may be left out or `null`. The rules a schema cannot say (id syntax, \
         USCC check characters, limits, references to what is on the ledger) are in each \
         field's description; a body that breaks one is refused with the code named.\n\n",
    );
    out.push_str("## Every record\n\n| field | shape | required | description |\n| --- | --- | --- | --- |\n");
    let any = body_schema("batch.code").expect("schema");
    let mut common = any.clone();
    if let Some(p) = common["properties"].as_object_mut() {
        p.retain(|k, _| COMMON_FIELDS.contains(&k.as_str()));
        p.insert("type".into(), serde_json::json!({"type": "string", "description": "The record type, one of the headings below."}));
    }
    field_rows(&mut out, "", &common, &[]);
    let envelope = envelope();
    let _ = writeln!(
        out,
        "\nAny record may be refused with {} (the envelope, the signature, the signer's key, \
         the block's limits; docs/api.md says what each means).\n",
        code_list(&envelope)
    );
    for kind in RECORD_TYPES {
        let s = body_schema(kind).expect("schema");
        let _ = writeln!(out, "## `{kind}`\n");
        if let Some(d) = s["description"].as_str() {
            let _ = writeln!(out, "{}\n", one_line(d));
        }
        let _ = writeln!(
            out,
            "Signed by {}. Schema: `GET /v1/schemas/{kind}`.\n",
            signed_by(kind).expect("a signer rule")
        );
        out.push_str("| field | shape | required | description |\n| --- | --- | --- | --- |\n");
        field_rows(&mut out, "", &s, &COMMON_FIELDS);
        let own: BTreeSet<RefusalCode> = codes[kind].difference(&envelope).copied().collect();
        if own.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(
                out,
                "\nRefusals besides the common ones: {}.\n",
                code_list(&own)
            );
        }
    }
    out
}

fn doc_path() -> PathBuf {
    crate_dir().join("../docs/records.md")
}

fn write_or_compare(path: &Path, want: &str) {
    if std::env::var_os("ZSL_WRITE_DOCS").is_some() {
        std::fs::write(path, want).expect("write docs/records.md");
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/records.md is not what the code gives; run `ZSL_WRITE_DOCS=1 cargo test -p ledger records_md`"
    );
}

#[test]
fn records_md_is_generated_from_the_code() {
    write_or_compare(&doc_path(), &markdown());
}

#[test]
fn records_md_lists_the_codes_a_rule_gives() {
    let codes = codes_by_type();
    // Direct, one call down and two calls down (shipment.create → self.batch → UnknownBatch).
    assert!(codes["shipment.create"].contains(&RefusalCode::SelfShipment));
    assert!(codes["shipment.create"].contains(&RefusalCode::InsufficientHolding));
    assert!(codes["shipment.create"].contains(&RefusalCode::UnknownBatch));
    assert!(codes["subject.register"].contains(&RefusalCode::InvalidUscc));
    assert!(codes["key.revoke"].contains(&RefusalCode::LastKey));
    assert!(codes["finding.rectify"].contains(&RefusalCode::NotRectifiable));
    assert!(!codes["document.notarize"].contains(&RefusalCode::SelfShipment));
    // Every code but the envelope's is given by some rule.
    let all: BTreeSet<RefusalCode> = codes.values().flatten().copied().collect();
    for c in RefusalCode::ALL {
        assert!(
            all.contains(&c) || envelope().contains(&c),
            "no rule gives {c:?}"
        );
    }
}
