//! Signed credit reports (信用报告): an enterprise's portrait over a period,
//! as a node served it, signed by that node's validator key so a buyer the
//! enterprise shares it with can check it offline with the genesis file.
//!
//! Signed bytes = [`REPORT_DOMAIN`] ‖ JCS of the document without its
//! `signature` member. The report names the checkpoint (height, block hash)
//! it was read at, which the buyer may also hold against a sealed one.
//! The issue time is an input: this module reads no clock.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{json, Value};

use crate::evidence::Report;
use crate::spec::ChainSpec;

/// The document's `format`.
pub const REPORT_FORMAT: &str = "zsl-credit-report/v1";
/// Domain separation: a report signature is never a transaction's or a checkpoint's.
pub const REPORT_DOMAIN: &[u8] = b"ZSL-CREDIT-REPORT-V1\x00";
/// The named checks of [`verify`], in order.
pub mod check {
    pub const FORMAT: &str = "report_format";
    pub const SIGNER: &str = "report_signer";
    pub const SIGNATURE: &str = "report_signature";
}

fn signed_bytes(unsigned: &Value) -> Result<Vec<u8>, String> {
    let jcs = serde_json_canonicalizer::to_vec(unsigned).map_err(|e| e.to_string())?;
    Ok([REPORT_DOMAIN, &jcs].concat())
}

/// The signed document for `report` (a portrait's JSON), issued at
/// `issued_at_ms` by validator `name` with `key`.
pub fn sign(
    report: Value,
    issued_at_ms: i64,
    chain_id: &str,
    name: &str,
    key: &SigningKey,
) -> Result<Value, String> {
    let mut doc = json!({
        "format": REPORT_FORMAT,
        "chain_id": chain_id,
        "issued_at_ms": issued_at_ms,
        "signer": {"validator": name, "public_key": hex::encode(key.verifying_key().to_bytes())},
        "report": report,
    });
    let sig = key.sign(&signed_bytes(&doc)?);
    doc["signature"] = Value::String(hex::encode(sig.to_bytes()));
    Ok(doc)
}

/// Checks a signed report against the genesis file: its format and chain,
/// that a genesis validator signed it, and the signature over everything
/// else in it. Every check is named; fail-closed.
pub fn verify(doc: &Value, spec: &ChainSpec) -> Report {
    let mut r = Report { checks: Vec::new() };
    let format_ok = doc["format"] == REPORT_FORMAT && doc["chain_id"] == spec.chain_id.as_str();
    r.push(
        check::FORMAT,
        if format_ok {
            Ok(format!("{REPORT_FORMAT}, chain `{}`", spec.chain_id))
        } else {
            Err(format!(
                "format {} for chain {}; expected {REPORT_FORMAT} for `{}`",
                doc["format"], doc["chain_id"], spec.chain_id
            ))
        },
    );
    let pk = doc["signer"]["public_key"].as_str().unwrap_or_default();
    let name = doc["signer"]["validator"].as_str().unwrap_or_default();
    let validator = spec
        .validators
        .iter()
        .find(|v| v.public_key == pk && v.name == name);
    r.push(
        check::SIGNER,
        match validator {
            Some(v) => Ok(format!(
                "validator `{}` (node {}) of the genesis file",
                v.name, v.node_id
            )),
            None => Err(format!(
                "`{name}` with key {pk} is not a validator of the genesis file"
            )),
        },
    );
    r.push(check::SIGNATURE, check_signature(doc, pk));
    r
}

fn check_signature(doc: &Value, pk_hex: &str) -> Result<String, String> {
    let mut unsigned = doc.clone();
    let sig_hex = unsigned
        .as_object_mut()
        .and_then(|o| o.remove("signature"))
        .and_then(|s| s.as_str().map(str::to_string))
        .ok_or("no signature")?;
    let mut sig = [0u8; 64];
    let mut pk = [0u8; 32];
    hex::decode_to_slice(&sig_hex, &mut sig).map_err(|_| "the signature is not 64 bytes of hex")?;
    hex::decode_to_slice(pk_hex, &mut pk).map_err(|_| "the signer key is not 32 bytes of hex")?;
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| "the signer key is not an Ed25519 key")?;
    key.verify_strict(&signed_bytes(&unsigned)?, &Signature::from_bytes(&sig))
        .map_err(|_| "the signature does not verify over the report".to_string())?;
    Ok(format!(
        "Ed25519 over {} ‖ JCS(report without `signature`)",
        String::from_utf8_lossy(&REPORT_DOMAIN[..REPORT_DOMAIN.len() - 1])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn a_signed_report_verifies_and_any_change_fails() {
        let spec = testkit::spec(testkit::three_districts(), 3);
        let (v, key) = (&spec.validators[0], testkit::validator_keys(3)[0].1.clone());
        let report = json!({"subject": {"uscc": "X"}, "receipts": {"due": 3, "on_time": 3}});
        let doc = sign(report, 1_767_225_600_000, &spec.chain_id, &v.name, &key).unwrap();
        let r = verify(&doc, &spec);
        assert!(r.ok(), "{r:?}");
        let mut t = doc.clone();
        t["report"]["receipts"]["on_time"] = json!(2);
        assert_eq!(verify(&t, &spec).failed(), [check::SIGNATURE]);
        let mut t = doc.clone();
        t["issued_at_ms"] = json!(0);
        assert_eq!(verify(&t, &spec).failed(), [check::SIGNATURE]);
        // Signed by a key that is not a validator's.
        let other = testkit::key("not a validator");
        let forged = sign(json!({}), 1, &spec.chain_id, &v.name, &other).unwrap();
        assert_eq!(verify(&forged, &spec).failed(), [check::SIGNER]);
    }
}
