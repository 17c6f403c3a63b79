//! JSON Schemas (2020-12) of the record bodies, derived with `schemars` from
//! the very types [`super::parse_body`] deserializes, so a schema cannot drift
//! from the parser. A schema gives the shape (fields, types, allowed values,
//! unknown fields refused); the rules a state-machine check adds (id syntax,
//! USCC check characters, limits) are in each field's description.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::*;

/// The dialect every schema declares.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Who may sign a record of `kind` (the state machine's signer rule, in words).
pub fn signed_by(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "account.register" => "a regulator, for a jurisdiction within its own",
        "subject.register" | "subject.update" => {
            "a regulator whose jurisdiction covers the subject's district"
        }
        "key.bind" | "key.revoke" => {
            "the account itself, or a regulator whose jurisdiction covers the account's"
        }
        "product.register" | "batch.code" | "shipment.create" => "a subject, for itself",
        "shipment.receive" | "shipment.reject" => "the subject the shipment is addressed to",
        "certificate.issue" => {
            "an agriculture authority whose jurisdiction covers the subject's district"
        }
        "rapid_test.record" => "a testing lab or an inspector",
        "finding.record" => "an inspector whose jurisdiction covers the subject's district",
        "finding.rectify" => {
            "an inspector or a regulator whose jurisdiction covers the finding's district"
        }
        "recall.issue" => {
            "the batch's coder, or a regulator whose jurisdiction covers the coder's district"
        }
        "adjustment.record" => "a regulator whose jurisdiction covers the district",
        "document.notarize" => "any account",
        "catalogue.key_subjects"
        | "catalogue.key_varieties"
        | "validator.add"
        | "validator.remove" => "a provincial regulator",
        _ => return None,
    })
}

fn fields_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// The record's own fields (everything but the common ones), by type.
fn record_fields(kind: &str) -> Option<Value> {
    Some(match kind {
        "account.register" => fields_of::<AccountRegister>(),
        "subject.register" => fields_of::<SubjectRegister>(),
        "subject.update" => fields_of::<SubjectUpdate>(),
        "key.bind" | "key.revoke" => fields_of::<KeyChange>(),
        "product.register" => fields_of::<ProductRegister>(),
        "batch.code" => fields_of::<BatchCode>(),
        "shipment.create" => fields_of::<ShipmentCreate>(),
        "shipment.receive" => fields_of::<ShipmentReceive>(),
        "shipment.reject" => fields_of::<ShipmentReject>(),
        "certificate.issue" => fields_of::<CertificateIssue>(),
        "rapid_test.record" => fields_of::<RapidTestRecord>(),
        "finding.record" => fields_of::<FindingRecord>(),
        "finding.rectify" => fields_of::<FindingRectify>(),
        "recall.issue" => fields_of::<RecallIssue>(),
        "adjustment.record" => fields_of::<AdjustmentRecord>(),
        "document.notarize" => fields_of::<DocumentNotarize>(),
        "catalogue.key_subjects" => fields_of::<KeySubjectsUpdate>(),
        "catalogue.key_varieties" => fields_of::<KeyVarietiesUpdate>(),
        "validator.add" => fields_of::<ValidatorAdd>(),
        "validator.remove" => fields_of::<ValidatorRemove>(),
        _ => return None,
    })
}

/// The common fields' schemas, in body order ([`COMMON_FIELDS`]).
fn common_fields(kind: &str) -> [(&'static str, Value); 5] {
    [
        (
            "type",
            json!({"const": kind, "description": "The record type."}),
        ),
        (
            "chain_id",
            json!({"type": "string", "description": "The chain's id, as in the genesis file (`GET /v1/genesis`); another chain's is refused (`wrong_chain`)."}),
        ),
        (
            "account",
            json!({"type": "string", "minLength": 1, "maxLength": 64, "description": "The signing account, 1-64 bytes: a subject's USCC or an authority's account id."}),
        ),
        (
            "created_at",
            json!({"type": "string", "format": "date-time", "description": "RFC 3339 with an offset, e.g. `2024-03-01T09:00:00+08:00`; a body too far from the node's clock is refused (`stale`, `from_future`)."}),
        ),
        (
            "nonce",
            json!({"type": "string", "minLength": 1, "maxLength": 64, "description": "1-64 bytes the client chooses, so two otherwise equal bodies are distinct transactions."}),
        ),
    ]
}

/// The schema of a whole body of `kind`: the common fields, then the
/// record's own; `None` for an unknown type.
pub fn body_schema(kind: &str) -> Option<Value> {
    let fields = record_fields(kind)?;
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for (name, schema) in common_fields(kind) {
        properties.insert(name.to_string(), schema);
        required.push(name.into());
    }
    if let Some(own) = fields.get("properties").and_then(Value::as_object) {
        properties.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(own) = fields.get("required").and_then(Value::as_array) {
        required.extend(own.iter().cloned());
    }
    let mut out = Map::new();
    out.insert("$schema".into(), DIALECT.into());
    out.insert("$id".into(), format!("urn:zsl:schema:{kind}").into());
    out.insert("title".into(), kind.into());
    if let Some(d) = fields.get("description") {
        out.insert("description".into(), d.clone());
    }
    if let Some(by) = signed_by(kind) {
        out.insert("x-signed-by".into(), by.into());
    }
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), Value::Object(properties));
    out.insert("required".into(), Value::Array(required));
    out.insert("additionalProperties".into(), false.into());
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_type_has_a_closed_schema_and_a_signer_rule() {
        for kind in RECORD_TYPES {
            let s = body_schema(kind).unwrap_or_else(|| panic!("no schema for {kind}"));
            assert_eq!(s["additionalProperties"], false, "{kind}");
            assert_eq!(s["properties"]["type"]["const"], kind);
            let required: Vec<&str> = s["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(&required[..5], &COMMON_FIELDS[..], "{kind}");
            assert!(signed_by(kind).is_some(), "{kind}");
        }
        assert!(body_schema("batch.uncode").is_none());
    }

    #[test]
    fn schemas_show_allowed_values_and_optional_fields() {
        let s = body_schema("shipment.reject").expect("schema");
        let reasons = s["properties"]["reason"]["enum"].as_array().expect("enum");
        assert!(reasons.contains(&json!("not_ordered")), "{s:#}");
        let required = s["required"].as_array().expect("required");
        assert!(!required.contains(&json!("note")) && required.contains(&json!("shipper")));
        // Nothing refers outside the schema: every subschema is inlined.
        assert!(!s.to_string().contains("$ref"), "{s:#}");
    }
}
