//! `GET /openapi.json` (OpenAPI 3.1) and the Swagger UI at `/docs`.
//!
//! The document is built from [`OPERATIONS`], one entry per route the
//! router registers; path parameters come from the path itself. A test
//! (tests/tests/ops.rs) reads the router's `.route(…)` calls from the source
//! and fails when a route is missing here. Swagger UI is vendored from npm
//! (`swagger-ui-dist`, api/assets/swagger/) and compiled into the binary:
//! nothing is fetched at build or run time.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::ApiError;

const SWAGGER_JS: &str = include_str!("../assets/swagger/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../assets/swagger/swagger-ui.css");
const SWAGGER_LICENSE: &str = include_str!("../assets/swagger/LICENSE");

/// What a successful answer is.
#[derive(Clone, Copy)]
enum Answer {
    /// JSON with this component schema.
    Json(&'static str),
    /// Another media type (pages, metrics, images).
    Media(&'static str),
}

/// One operation of the API.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    /// Query parameters: (name, required, description).
    query: &'static [(&'static str, bool, &'static str)],
    /// Request body schema (JSON), if any.
    body: Option<&'static str>,
    ok: (u16, Answer),
    /// Error statuses the operation may answer (besides 429, listed for all).
    errors: &'static [u16],
}

const PERIOD: &[(&str, bool, &str)] = &[
    (
        "from",
        true,
        "First day of the period, YYYY-MM-DD (natural days, Asia/Shanghai)",
    ),
    ("to", true, "Last day of the period, YYYY-MM-DD, inclusive"),
];
const WAIT: &[(&str, bool, &str)] = &[(
    "wait",
    false,
    "`commit` waits until each transaction is committed or refused; `none` (default) answers once admitted",
)];

/// Every documented operation as (method, path template).
#[cfg(test)]
pub(crate) fn operations() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPERATIONS.iter().map(|o| (o.method, o.path))
}

const OPERATIONS: &[Op] = &[
    // ---- web UI and operations ----
    Op { method: "get", path: "/", tag: "ui", summary: "Web UI home and look-up page", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/t/{code}", tag: "ui", summary: "Consumer trace page for a trace code (追溯码) or subject code", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/s/{uscc}", tag: "ui", summary: "Subject page (主体码, enterprise portrait, credit report)", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/dashboard", tag: "ui", summary: "Regulator dashboard", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/explorer", tag: "ui", summary: "Chain explorer", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/verify", tag: "ui", summary: "Evidence verifier: checks a bundle against a genesis file in the browser; `?tx={id}` fetches that bundle", query: &[("tx", false, "Tx id (64 hex) whose evidence bundle to fetch and verify")], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/assets/{file}", tag: "ui", summary: "A web UI asset (script, stylesheet)", query: &[], body: None, ok: (200, Answer::Media("text/plain")), errors: &[404] },
    Op { method: "get", path: "/metrics", tag: "operations", summary: "Prometheus metrics (text format 0.0.4)", query: &[], body: None, ok: (200, Answer::Media("text/plain")), errors: &[500] },
    Op { method: "get", path: "/openapi.json", tag: "operations", summary: "This document (OpenAPI 3.1)", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[] },
    Op { method: "get", path: "/docs", tag: "operations", summary: "Swagger UI for this document", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[] },
    Op { method: "get", path: "/docs/{file}", tag: "operations", summary: "A Swagger UI asset", query: &[], body: None, ok: (200, Answer::Media("text/plain")), errors: &[404] },
    // ---- submitting ----
    Op { method: "post", path: "/v1/tx", tag: "submit", summary: "Submit one signed transaction (docs/signing.md)", query: WAIT, body: Some("SignedTx"), ok: (200, Answer::Json("SubmitResult")), errors: &[400, 403, 409, 413, 415, 422, 503, 504] },
    Op { method: "post", path: "/v1/txs", tag: "submit", summary: "Submit up to 1,000 signed transactions; one result per transaction, in order", query: WAIT, body: Some("SignedTxList"), ok: (200, Answer::Json("BatchResults")), errors: &[400, 413, 415] },
    // ---- reading ----
    Op { method: "get", path: "/v1/internal/read-index", tag: "chain", summary: "Validators only: the leader's committed index after a quorum confirmed its leadership (what a follower's linearizable read waits for); other nodes answer 503 not_leader", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[503] },
    Op { method: "get", path: "/v1/status", tag: "chain", summary: "Chain id, head, Raft role and term, validators", query: &[], body: None, ok: (200, Answer::Json("Status")), errors: &[500] },
    Op { method: "get", path: "/v1/genesis", tag: "chain", summary: "This node's genesis file (chain spec) as `zsl genesis init` wrote it; a verifier should use the copy it keeps", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[] },
    Op { method: "get", path: "/v1/tx/{id}", tag: "chain", summary: "A transaction by tx id (64 hex): committed (200), refused (its refusal status) or pending here (202)", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[202, 400, 403, 404, 409, 413, 422] },
    Op { method: "get", path: "/v1/blocks/latest", tag: "chain", summary: "The head block", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/blocks/{height}", tag: "chain", summary: "The block at a height", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/accounts/{id}", tag: "records", summary: "An account, its role, jurisdiction and keys", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/subjects/{uscc}", tag: "records", summary: "A subject (主体): keys, holdings, batches, shipments, findings", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/batches/{trace_code}", tag: "records", summary: "A batch as stored", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/shipments/{shipper}/{shipment_id}", tag: "records", summary: "A shipment and its receipt status", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/findings/{finding_id}", tag: "records", summary: "An inspection finding and its rectification", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/documents/{hash}", tag: "records", summary: "Notarizations of a document's SHA-256", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/catalogue/varieties", tag: "records", summary: "The key-variety catalogue (重点品种)", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/schemas", tag: "records", summary: "The record types, who may sign each, and where each one's JSON Schema is", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[] },
    Op { method: "get", path: "/v1/schemas/{kind}", tag: "records", summary: "The JSON Schema (2020-12) of a record type's body, e.g. `batch.code` (also components `Record.{type}` here; docs/records.md)", query: &[], body: None, ok: (200, Answer::Media("application/schema+json")), errors: &[404] },
    Op { method: "get", path: "/v1/regions", tag: "records", summary: "Province and districts (辖区) of genesis", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[] },
    Op { method: "get", path: "/v1/trace/{code}", tag: "records", summary: "One-code view: a trace code's batch and chain of custody, or a subject code's subject", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[404] },
    Op { method: "get", path: "/v1/scores", tag: "scores", summary: "Every district's score for a period, with the checkpoint it rests on", query: PERIOD, body: None, ok: (200, Answer::Json("Object")), errors: &[400] },
    Op { method: "get", path: "/v1/scores/{district}/evidence", tag: "scores", summary: "The district's score with the block it rests on and the model (zsl-score-evidence/1), for `zsl score verify` on another node", query: PERIOD, body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/scores/{district}", tag: "scores", summary: "One district's score with every item behind every term", query: PERIOD, body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    // ---- evidence (区块链固证) ----
    Op { method: "get", path: "/v1/evidence/{tx_id}", tag: "evidence", summary: "Evidence bundle of a committed transaction: inclusion proof up to a sealed checkpoint", query: &[("format", false, "`json` (default) or `tlog-proof`")], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404, 409] },
    Op { method: "get", path: "/v1/evidence/{tx_id}/scitt", tag: "evidence", summary: "SCITT transparent statement (RFC 9943): the record as a COSE_Sign1 signed statement with COSE receipts (RFC 9942, RFC9162_SHA256) by a quorum of validators", query: &[], body: None, ok: (200, Answer::Media("application/cose")), errors: &[400, 403, 404, 409, 503] },
    Op { method: "get", path: "/v1/trace/{code}/evidence", tag: "evidence", summary: "A batch's whole chain of custody as one offline-verifiable bundle: every record proved into one sealed checkpoint", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[401, 403, 404, 409] },
    Op { method: "get", path: "/v1/epcis/events", tag: "records", summary: "A batch's chain of custody as a GS1 EPCIS 2.0 EPCISDocument (JSON-LD, CBV 2.0; docs/epcis.md)", query: &[("trace_code", true, "The batch's trace code")], body: None, ok: (200, Answer::Media("application/ld+json")), errors: &[400, 401, 403, 404] },
    Op { method: "get", path: "/v1/scitt/receipt-signature/{height}", tag: "evidence", summary: "This validator's receipt signature over the root of the sealed checkpoint of a block", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404, 409, 503] },
    Op { method: "get", path: "/v1/evidence/{tx_id}/certificate", tag: "evidence", summary: "Printable evidence certificate (证据证书)", query: &[], body: None, ok: (200, Answer::Media("text/html")), errors: &[400, 404, 409] },
    Op { method: "get", path: "/v1/checkpoints/latest", tag: "evidence", summary: "The latest sealed checkpoint (C2SP signed note by default)", query: &[("format", false, "`json`, or the signed note (default)")], body: None, ok: (200, Answer::Media("text/plain")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/checkpoints/{height}", tag: "evidence", summary: "The sealed checkpoint that proves block `height`", query: &[("format", false, "`json`, or the signed note (default)")], body: None, ok: (200, Answer::Media("text/plain")), errors: &[400, 404, 409] },
    Op { method: "get", path: "/v1/proofs/consistency", tag: "evidence", summary: "RFC 9162 consistency proof between two tree sizes", query: &[("from", true, "Older tree size"), ("to", true, "Newer tree size")], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "post", path: "/v1/notarize", tag: "evidence", summary: "Submit a signed document.notarize record (as POST /v1/tx)", query: WAIT, body: Some("SignedTx"), ok: (200, Answer::Json("SubmitResult")), errors: &[400, 403, 409, 413, 415, 422, 503, 504] },
    Op { method: "post", path: "/v1/notarize/hash", tag: "evidence", summary: "Hash an uploaded file: its SHA-256 and the document.notarize body to sign (nothing is kept)", query: &[("title", false, "Document title for the body"), ("media_type", false, "Media type for the body")], body: Some("Binary"), ok: (200, Answer::Json("Object")), errors: &[400, 413] },
    // ---- views for the web UI ----
    Op { method: "get", path: "/v1/qr", tag: "views", summary: "A text as a QR code (SVG)", query: &[("text", true, "The text to encode")], body: None, ok: (200, Answer::Media("image/svg+xml")), errors: &[400] },
    Op { method: "get", path: "/v1/views/blocks", tag: "views", summary: "Recent blocks, newest first", query: &[("before", false, "Only blocks below this height"), ("limit", false, "Blocks at most")], body: None, ok: (200, Answer::Json("Object")), errors: &[400] },
    Op { method: "get", path: "/v1/views/blocks/{height}/txs", tag: "views", summary: "A block's transactions with record type and account", query: &[("offset", false, "Transactions to skip"), ("limit", false, "Transactions at most")], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/views/daily", tag: "views", summary: "Per natural day: batches coded, receipts due and on time, rejections", query: &[("from", true, "First day, YYYY-MM-DD"), ("to", true, "Last day, YYYY-MM-DD"), ("district", false, "One district's numbers")], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/views/alerts", tag: "views", summary: "Recalls, near-expiry batches and overdue receipts", query: &[("district", false, "One district's alerts"), ("days", false, "Near-expiry horizon in days (default 3)")], body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/views/subjects/{uscc}/portrait", tag: "views", summary: "Enterprise portrait (企业画像) for a period", query: PERIOD, body: None, ok: (200, Answer::Json("Object")), errors: &[400, 404] },
    Op { method: "get", path: "/v1/views/subjects/{uscc}/credit-report", tag: "views", summary: "The portrait as a credit report (信用报告) signed by this validator; check it with `zsl verify-report`", query: PERIOD, body: None, ok: (200, Answer::Json("Object")), errors: &[400, 401, 403, 404, 503] },
    Op { method: "post", path: "/v1/sessions", tag: "access", summary: "Sign in: a request signed per RFC 9421 (Ed25519, the account's key) opens a session; answers its bearer token (15 minutes)", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[401, 403] },
    Op { method: "post", path: "/witness/add-checkpoint", tag: "evidence", summary: "C2SP tlog-witness add-checkpoint (text body: `old <size>`, consistency proof lines, a blank line, a signed checkpoint of a log this node witnesses): answers this witness's cosignature line; 409 with the size it holds (text/x.tlog.size); 404 when the log is unknown or this node is no witness", query: &[], body: None, ok: (200, Answer::Media("text/plain")), errors: &[400, 403, 404, 409, 422] },
    Op { method: "get", path: "/witness/{origin_hash}/checkpoint", tag: "evidence", summary: "C2SP tlog-witness monitoring: the latest checkpoint this witness cosigned for the log whose origin hashes (SHA-256, hex) to `origin_hash`", query: &[], body: None, ok: (200, Answer::Media("text/plain")), errors: &[404] },
    Op { method: "delete", path: "/v1/sessions", tag: "access", summary: "Sign out: ends the session whose bearer token the request carries", query: &[], body: None, ok: (200, Answer::Json("Object")), errors: &[401] },
];

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        202 => "Admitted (not yet committed)",
        400 => "Malformed request or record",
        403 => "Signature, key, role or chain refused",
        404 => "Not found",
        409 => "Conflicts with the ledger (replayed, already exists, …)",
        413 => "Body, transaction or batch too large",
        422 => "Refused by a state rule",
        429 => "Rate limited; see Retry-After",
        500 => "The node could not answer",
        503 => "Busy, not leader, or shutting down",
        504 => "Not committed in time",
        _ => "Error",
    }
}

fn operation(op: &Op) -> Value {
    let mut params = path_params(op.path);
    for (name, required, description) in op.query {
        params.push(json!({"name": name, "in": "query", "required": required,
            "description": description, "schema": {"type": "string"}}));
    }
    let mut responses = Map::new();
    let ok = match op.ok.1 {
        Answer::Json(schema) => json!({"description": status_text(op.ok.0),
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
        Answer::Media(media) => json!({"description": status_text(op.ok.0),
            "content": {media: {"schema": {"type": "string"}}}}),
    };
    responses.insert(op.ok.0.to_string(), ok);
    if op.method == "post" && (op.path == "/v1/tx" || op.path == "/v1/notarize") {
        responses.insert(
            "202".into(),
            json!({"description": status_text(202),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitResult"}}}}),
        );
    }
    for code in op.errors.iter().chain(&[429]) {
        responses.insert(
            code.to_string(),
            json!({"description": status_text(*code),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    let id = format!(
        "{}{}",
        op.method,
        op.path
            .split(['/', '{', '}', '.'])
            .filter(|s| !s.is_empty())
            .map(|s| format!("_{s}"))
            .collect::<String>()
    );
    let mut v = json!({"operationId": id, "summary": op.summary, "tags": [op.tag],
        "parameters": params, "responses": responses});
    match op.body {
        Some("Binary") => {
            v["requestBody"] = json!({"required": true, "content": {"application/octet-stream":
                {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}});
        }
        Some(schema) => {
            v["requestBody"] = json!({"required": true, "content": {"application/json":
                {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        None => {}
    }
    v
}

fn schemas() -> Value {
    let hex = |n: usize| json!({"type": "string", "pattern": format!("^[0-9a-f]{{{n}}}$")});
    json!({
        "Object": {"type": "object", "description": "See docs/api.md for the fields."},
        "Error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code (docs/api.md)"},
                "message": {"type": "string"},
                "tx_id": {"type": "string"}
            }
        },
        "SignedTx": {
            "type": "object", "required": ["body", "signer", "sig"], "additionalProperties": false,
            "properties": {
                "body": {"type": "object", "required": ["type", "chain_id", "account", "created_at", "nonce"],
                    "description": "The record: common fields plus the type's own (ledger/src/record.rs)",
                    "properties": {
                        "type": {"type": "string"}, "chain_id": {"type": "string"},
                        "account": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                        "nonce": {"type": "string", "minLength": 1, "maxLength": 64}
                    }},
                "signer": {"type": "string", "pattern": "^([0-9a-f]{64}|04[0-9a-f]{128})$",
                    "description": "The signing key: Ed25519 (64 hex) or, where the chain has `sm2_accounts`, SM2 (130 hex, 04 ‖ x ‖ y)"},
                "sig": hex(128)
            }
        },
        "SignedTxList": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/SignedTx"}},
        "SubmitResult": {
            "type": "object", "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["admitted", "committed", "refused", "unknown"]},
                "tx_id": {"type": ["string", "null"]},
                "height": {"type": "integer", "minimum": 0},
                "index": {"type": "integer", "minimum": 0},
                "leaf_index": {"type": "integer", "minimum": 0},
                "created": {"type": "object", "description": "Ids the record creates that its body does not spell out: `trace_code` (batch.code), `subject_code` (subject.register), `shipment` (shipment.create), `product` (product.register), with the paths that read them"},
                "code": {"type": "string"},
                "message": {"type": "string"}
            }
        },
        "BatchResults": {
            "type": "object", "required": ["results"],
            "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/SubmitResult"}}}
        },
        "Status": {
            "type": "object",
            "required": ["chain_id", "node_id", "height", "head_hash", "tree_size", "tree_root"],
            "properties": {
                "chain_id": {"type": "string"},
                "node_id": {"type": "integer"},
                "leader": {"type": ["integer", "null"]},
                "role": {"type": "string"},
                "term": {"type": "integer"},
                "commit_index": {"type": ["integer", "null"]},
                "height": {"type": "integer"},
                "head_hash": hex(64),
                "head_time_ms": {"type": "integer"},
                "tree_size": {"type": "integer"},
                "tree_root": hex(64),
                "validators": {"type": "array", "items": {"type": "object"}},
                "genesis_hash": hex(64)
            }
        }
    })
}

/// Adds each record body's schema as `Record.{type}` and `RecordBody`, one of
/// them (the `body` of a `SignedTx`).
fn with_record_schemas(mut schemas: Value) -> Value {
    let mut one_of = Vec::new();
    for kind in ledger::record::RECORD_TYPES {
        let Some(mut s) = ledger::record::schema::body_schema(kind) else {
            continue;
        };
        if let Some(o) = s.as_object_mut() {
            // Components share the document's dialect and base URI.
            o.remove("$schema");
            o.remove("$id");
        }
        let name = format!("Record.{kind}");
        one_of.push(json!({"$ref": format!("#/components/schemas/{name}")}));
        schemas[name] = s;
    }
    schemas["RecordBody"] = json!({"oneOf": one_of, "description": "A record body: the common fields and the type's own (docs/records.md)"});
    schemas
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        item[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ZSL 浙食链 node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every error is JSON {code, message}. Transactions are signed as docs/signing.md describes.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "tags": [
            {"name": "submit"}, {"name": "chain"}, {"name": "records"}, {"name": "scores"},
            {"name": "evidence"}, {"name": "views"}, {"name": "ui"}, {"name": "operations"},
            {"name": "access", "description": "Reads beyond the public view are signed per RFC 9421 (Ed25519, the account's key) or carry a session token; docs/api.md, Who sees what"}
        ],
        "paths": paths,
        "components": {"schemas": with_record_schemas(schemas())}
    })
}

pub(crate) async fn openapi_json() -> Json<Value> {
    Json(document())
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ZSL API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>
"#;

const DOCS_INIT: &str = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true});\n";

pub(crate) async fn docs_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_PAGE,
    )
        .into_response()
}

pub(crate) async fn docs_asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (body, kind) = match file.as_str() {
        "swagger-ui-bundle.js" => (SWAGGER_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (SWAGGER_CSS, "text/css; charset=utf-8"),
        "init.js" => (DOCS_INIT, "text/javascript; charset=utf-8"),
        "LICENSE" => (SWAGGER_LICENSE, "text/plain; charset=utf-8"),
        _ => return Err(ApiError::not_found("docs asset", &file)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_is_in_the_document_once() {
        let doc = super::document();
        let mut n = 0;
        for (_, item) in doc["paths"].as_object().unwrap() {
            n += item.as_object().unwrap().len();
        }
        assert_eq!(
            n,
            super::OPERATIONS.len(),
            "duplicate (method, path) in OPERATIONS"
        );
    }
}
