//! Checks of EPCIS 2.0 exports: GS1's JSON Schema (vendored in tests/epcis/
//! with its licence, from github.com/gs1/EPCIS at 2b888be) and the custody a
//! document reads back as, against the node's own trace view.

use std::path::PathBuf;

use serde_json::Value;

fn vendored(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("epcis")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("vendored JSON")
}

/// GS1's EPCIS 2.0 JSON Schema, formats checked.
pub fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&vendored("EPCIS-JSON-Schema.json"))
        .expect("the GS1 schema compiles")
}

/// GS1's own example document (EPCIS 2.0 §9.6.1).
pub fn gs1_example() -> Value {
    vendored("Example_9.6.1-ObjectEvent.jsonld")
}

pub fn assert_valid(v: &jsonschema::Validator, doc: &Value) {
    if let Err(e) = v.validate(doc) {
        panic!("not valid EPCIS 2.0: {e} at {}\n{doc:#}", e.instance_path());
    }
}

/// Whether `doc` reads back as the custody of `trace` (the `trace` member of
/// `GET /v1/trace/{code}`), in any order; the number of steps if so.
pub fn custody_matches(doc: &Value, trace: &Value) -> Result<usize, String> {
    let mut read = ledger::epcis::read_custody(doc)?;
    let mut want: Vec<ledger::epcis::CustodyStep> = trace["custody"]
        .as_array()
        .ok_or("the trace has no custody")?
        .iter()
        .map(|c| ledger::epcis::CustodyStep {
            event: c["event"].as_str().unwrap_or("").into(),
            from: c["from"].as_str().map(Into::into),
            to: c["to"].as_str().map(Into::into),
            quantity: c["quantity"].as_u64().unwrap_or(0),
            tx: c["tx"].as_str().unwrap_or("").into(),
        })
        .collect();
    let key = |s: &ledger::epcis::CustodyStep| (s.tx.clone(), s.event.clone());
    read.sort_by_key(key);
    want.sort_by_key(key);
    if read == want {
        Ok(read.len())
    } else {
        Err(format!("read back {read:?}\nthe ledger has {want:?}"))
    }
}
