//! Evidence fixing (区块链固证) over HTTP: evidence bundles, sealed
//! checkpoints, consistency proofs, notarization and the printable evidence
//! certificate (证据证书). Every answer is built by `ledger::evidence` from one
//! store snapshot, so a bundle never mixes two heights.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use ledger::checkpoint::SignedNote;
use ledger::evidence::{self, EvidenceError};
use ledger::{history, seal};

use crate::ApiCode;
use crate::{body_bytes, parse_id, submit_one, ApiError, ApiResult, AppState, WaitQuery};

/// Characters of a document title the upload helper echoes back.
const TITLE_CHARS_MAX: usize = 200;

impl From<EvidenceError> for ApiError {
    fn from(e: EvidenceError) -> Self {
        match e {
            EvidenceError::NotFound(id) => ApiError::not_found("committed transaction", &id),
            EvidenceError::NotYetSealed { .. } => {
                ApiError::new(StatusCode::CONFLICT, ApiCode::NotYetSealed, e.to_string())
            }
            // A later checkpoint never brings the record closer: not retryable.
            EvidenceError::TooFar(_) => {
                ApiError::new(StatusCode::CONFLICT, ApiCode::SealedTooFar, e.to_string())
            }
            EvidenceError::Ledger(e) => ApiError::internal(e),
        }
    }
}

impl From<evidence::TraceEvidenceError> for ApiError {
    fn from(e: evidence::TraceEvidenceError) -> Self {
        use evidence::TraceEvidenceError as T;
        match e {
            T::NotFound(code) => ApiError::not_found("trace code", &code),
            T::NotYetSealed(_) => {
                ApiError::new(StatusCode::CONFLICT, ApiCode::NotYetSealed, e.to_string())
            }
            T::TooLarge(_) => {
                ApiError::new(StatusCode::CONFLICT, ApiCode::TraceTooLarge, e.to_string())
            }
            T::Evidence(e) => e.into(),
        }
    }
}

/// `GET /v1/trace/{code}/evidence`: the batch's chain of custody as one
/// offline-verifiable bundle, for those who see the full trace (its
/// parties and the regulators of the coder's district).
pub(crate) async fn trace_bundle(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let view = state.ledger.store.view();
    full_trace(&state, &caller, &view, &code, "this batch's trace evidence")?;
    let g = genesis_of(&state)?;
    Ok(Json(evidence::build_trace(&view, &g, &code)?).into_response())
}

/// `code`'s whole trace, for a caller who may see it: a party to the batch,
/// or a regulator or inspector over the coder's district (404 for an unknown code).
fn full_trace(
    state: &AppState,
    caller: &crate::auth::Caller,
    view: &(impl ledger::kv::KvRead + ?Sized),
    code: &str,
    what: &str,
) -> ApiResult<ledger::query::TraceView> {
    let t = ledger::query::trace(view, code, None)?
        .ok_or_else(|| ApiError::not_found("trace code", code))?;
    let full = crate::access::sees_region(caller, &state.ledger.spec, &t.batch.coder_district)
        || crate::access::is_party(caller, t.parties.keys().map(String::as_str));
    crate::access::require(caller, full, what)?;
    Ok(t)
}

#[derive(Deserialize)]
pub(crate) struct EpcisQuery {
    trace_code: Option<String>,
}

/// `GET /v1/epcis/events?trace_code=…`: a batch's chain of custody as an
/// EPCIS 2.0 `EPCISDocument` (JSON-LD; docs/epcis.md), for the same callers
/// as its trace evidence.
pub(crate) async fn epcis_events(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(q): Query<EpcisQuery>,
) -> ApiResult<Response> {
    let code = q.trace_code.ok_or_else(|| {
        ApiError::bad_request(
            ApiCode::InvalidQuery,
            "`trace_code` is required: the batch whose chain of custody to export",
        )
    })?;
    let view = state.ledger.store.view();
    let t = full_trace(&state, &caller, &view, &code, "this batch's events")?;
    let head = state.ledger.head()?;
    let doc = ledger::epcis::trace_document(&view, &state.ledger.spec, &t, head.time_ms)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/ld+json")],
        Json(doc),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct FormatQuery {
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
}

impl FormatQuery {
    fn parse(&self, text_name: &str, default: Format) -> ApiResult<Format> {
        match self.format.as_deref() {
            None => Ok(default),
            Some("json") => Ok(Format::Json),
            Some(t) if t == text_name => Ok(Format::Text),
            Some(other) => Err(ApiError::bad_request(
                ApiCode::InvalidQuery,
                format!(
                    "format must be `json` or `{text_name}`, not `{}`",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The genesis-derived values (its hash above all: JCS of the whole region
/// table) are computed once per spec, not once per bundle.
fn genesis_of(state: &AppState) -> ApiResult<Arc<evidence::Genesis>> {
    static CACHE: Mutex<Option<Arc<evidence::Genesis>>> = Mutex::new(None);
    let mut cached = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(g) = cached.as_ref().filter(|g| g.spec == state.ledger.spec) {
        return Ok(g.clone());
    }
    let g = Arc::new(evidence::Genesis::new(&state.ledger.spec)?);
    *cached = Some(g.clone());
    Ok(g)
}

pub(crate) fn bundle_of(state: &AppState, id: &str) -> ApiResult<evidence::Bundle> {
    let h = parse_id(id)?;
    let g = genesis_of(state)?;
    let view = state.ledger.store.view();
    let mut b = evidence::build_with(&view, &g, &h.0)?;
    // Witness cosignatures this node collected for that checkpoint ride
    // along in its note; verifiers that do not know the witnesses ignore them.
    if let (Some(book), Some(last)) = (&state.cosignatures, b.headers.last()) {
        let lines = book.at(last.height);
        if !lines.is_empty() {
            let mut note = ledger::checkpoint::SignedNote::parse(&b.checkpoint)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            note.signatures.extend(lines);
            b.checkpoint = note.render();
        }
    }
    Ok(b)
}

/// A record's evidence is for its parties and their regulators.
pub(crate) fn party_or_regulator(
    state: &AppState,
    caller: &crate::auth::Caller,
    b: &evidence::Bundle,
) -> ApiResult<()> {
    let body = b.record.get("body").unwrap_or(&b.record);
    let sees = crate::access::may_read_record(state, caller, &b.signer_key.account, body)?;
    crate::access::require(caller, sees, "this record's evidence")
}

/// `GET /v1/evidence/{tx_id}[?format=tlog-proof]`
pub(crate) async fn bundle(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let format = q.parse("tlog-proof", Format::Json)?;
    let b = bundle_of(&state, &id)?;
    party_or_regulator(&state, &caller, &b)?;
    Ok(match format {
        Format::Json => Json(b).into_response(),
        Format::Text => text(evidence::tlog_proof(&b)),
    })
}

fn checkpoint_response(
    state: &AppState,
    for_block: u64,
    height: u64,
    format: Format,
) -> ApiResult<Response> {
    let view = state.ledger.store.view();
    let (cp, mut note, set) = evidence::sealed_checkpoint(&view, &state.ledger.spec, height)?
        .ok_or_else(|| ApiError::internal(format!("sealed block {height} has no checkpoint")))?;
    let witnessed = state
        .cosignatures
        .as_ref()
        .map(|book| book.at(height))
        .unwrap_or_default();
    let witnesses: Vec<Value> = witnessed
        .iter()
        .map(|s| {
            let time_s = s
                .signature
                .get(..8)
                .and_then(|t| t.try_into().ok())
                .map(u64::from_be_bytes);
            json!({"name": s.name, "time_s": time_s})
        })
        .collect();
    note.signatures.extend(witnessed);
    let log = seal::log_identity(&view, &state.ledger.spec)?;
    let keys = seal::note_keys(&log, &set)?;
    // Validators by name, whatever key name their lines carry (v2: the origin).
    let signed_by: Vec<String> = note
        .signatures
        .iter()
        .filter_map(|s| {
            keys.get(&(s.name.clone(), s.key_id))
                .map(|k| k.owner.clone())
        })
        .collect();
    Ok(match format {
        Format::Text => text(note.render()),
        Format::Json => Json(json!({
            "for_block": for_block,
            "origin": cp.origin,
            "height": cp.height,
            "tree_size": cp.tree_size,
            "root": cp.root,
            "block_hash": cp.block_hash,
            "time_ms": cp.time_ms,
            "signed_by": signed_by,
            "witnesses": witnesses,
            "quorum": seal::quorum(&state.ledger.spec, &set),
            "validators": set.len(),
            "note": note.render(),
        }))
        .into_response(),
    })
}

/// `GET /v1/checkpoints/latest[?format=json]`: the latest sealed checkpoint,
/// as a C2SP signed note (text/plain) by default.
pub(crate) async fn latest(
    State(state): State<AppState>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let format = q.parse("note", Format::Text)?;
    let height = seal::latest_sealed_height(&state.ledger.store)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ApiCode::NotYetSealed,
            "no checkpoint has been sealed yet",
        )
    })?;
    checkpoint_response(&state, height, height, format)
}

/// `GET /v1/checkpoints/{height}`: the sealed checkpoint that proves block
/// `height` (its own, or the first sealed one after it).
pub(crate) async fn at(
    State(state): State<AppState>,
    Path(height): Path<String>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let format = q.parse("note", Format::Text)?;
    let height: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(ApiCode::InvalidHeight, "a height is a decimal number")
    })?;
    let head = state.ledger.head()?;
    if height > head.height {
        return Err(ApiError::not_found("block", &height.to_string()));
    }
    let sealed = seal::sealed_at_or_after(&state.ledger.store, height)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            ApiCode::NotYetSealed,
            format!("no sealed checkpoint at or after block {height} yet; retry shortly"),
        )
    })?;
    checkpoint_response(&state, height, sealed, format)
}

#[derive(Deserialize)]
pub(crate) struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/proofs/consistency?from=N&to=M` (tree sizes).
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<evidence::ConsistencyProof>> {
    let size = |v: &Option<String>, name: &str| -> ApiResult<u64> {
        v.as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    ApiCode::InvalidQuery,
                    format!("give `{name}` as a tree size (decimal)"),
                )
            })
    };
    let (from, to) = (size(&q.from, "from")?, size(&q.to, "to")?);
    let view = state.ledger.store.view();
    let head = history::read_head(&view)?.ok_or_else(|| ApiError::internal("no head"))?;
    if from > to || to > head.tree_size {
        return Err(ApiError::bad_request(
            ApiCode::InvalidSizes,
            format!(
                "need from <= to <= {} (the current tree size); got {from}, {to}",
                head.tree_size
            ),
        ));
    }
    Ok(Json(
        evidence::consistency_proof(&view, from, to).map_err(ApiError::from)?,
    ))
}

/// `POST /v1/notarize`: a signed `document.notarize` record, submitted as by
/// `POST /v1/tx` (same answers, same `?wait=commit`). Only the hash is
/// recorded; its bundle comes from `GET /v1/evidence/{tx_id}`.
pub(crate) async fn notarize(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    crate::require_json(&headers)?;
    let bytes = body_bytes(body)?;
    let tx = ledger::SignedTx::from_json_bytes(&bytes)?;
    let kind = tx.body.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "document.notarize" {
        return Err(ApiError::bad_request(
            ApiCode::NotANotarization,
            format!(
                "this endpoint takes `document.notarize` records, not `{}`; use POST /v1/tx",
                kind.chars().take(40).collect::<String>()
            ),
        )
        .with_tx(Some(tx.id_hex())));
    }
    submit_one(State(state), Query(q), headers, Ok(bytes)).await
}

#[derive(Deserialize)]
pub(crate) struct HashQuery {
    title: Option<String>,
    media_type: Option<String>,
}

/// `POST /v1/notarize/hash`: the raw bytes of a file in the body; answers its
/// SHA-256 and the `document.notarize` body to sign. The node keeps nothing.
pub(crate) async fn hash_upload(
    State(state): State<AppState>,
    Query(q): Query<HashQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let bytes = body_bytes(body)?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            ApiCode::EmptyDocument,
            "send the document's bytes as the request body",
        ));
    }
    let hash = hex::encode(ledger::hash::sha256(&bytes));
    let title: String = q
        .title
        .unwrap_or_default()
        .chars()
        .take(TITLE_CHARS_MAX)
        .collect();
    let media_type = q.media_type.or_else(|| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| *t != "application/octet-stream" && t.len() <= 100)
            .map(String::from)
    });
    let mut body = json!({
        "type": "document.notarize",
        "chain_id": state.ledger.spec.chain_id,
        "document_hash": hash,
        "title": title,
    });
    if let Some(m) = media_type.filter(|m| m.len() <= 100) {
        body["media_type"] = Value::String(m);
    }
    Ok(Json(json!({
        "document_hash": hash,
        "bytes": bytes.len(),
        "body": body,
        "next": "add account, created_at and nonce, sign (docs/signing.md), then POST /v1/notarize",
    })))
}

/// `GET /v1/evidence/{tx_id}/certificate`: a print-ready HTML page.
pub(crate) async fn certificate(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let b = bundle_of(&state, &id)?;
    party_or_regulator(&state, &caller, &b)?;
    let verify_url = format!("{}/verify?tx={}", state.public_url, b.tx_id);
    let qr = qrcode::QrCode::with_error_correction_level(verify_url.as_bytes(), qrcode::EcLevel::M)
        .map_err(ApiError::internal)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    let html = certificate_html(&b, &state.ledger.spec, &qr, &verify_url);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

/// A node's public URL as configured, checked and without a trailing `/`:
/// `http` or `https`, a host (and port), an optional path; nothing that could
/// break out of an HTML attribute. Never taken from a request (a client's
/// Host header would otherwise choose where an inspector's QR code points).
pub fn public_url(text: &str) -> std::result::Result<String, &'static str> {
    let url = text.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if url.len() > URL_BYTES_MAX {
        return Err("is longer than 255 bytes");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host");
    }
    if !url
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b".-:[]/_~%".contains(&c))
    {
        return Err("may hold only letters, digits and . - : [ ] / _ ~ %");
    }
    Ok(url.to_string())
}

const URL_BYTES_MAX: usize = 255;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// Long because it is the certificate's HTML template, section by section.
fn certificate_html(
    b: &evidence::Bundle,
    spec: &ledger::ChainSpec,
    qr_svg: &str,
    verify_url: &str,
) -> String {
    let body = b.record.get("body");
    let field = |k: &str| {
        body.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or("—")
            .to_string()
    };
    let first = b.headers.first();
    let last = b.headers.last();
    let note = SignedNote::parse(&b.checkpoint).ok();
    let signers = note
        .as_ref()
        .map(|n| {
            n.signatures
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let row = |k: &str, v: &str| format!("<tr><th>{}</th><td>{}</td></tr>\n", k, esc(v));
    let mut rows = String::new();
    rows += &row("记录类型 Record type", &field("type"));
    rows += &row("签署账户 Signed by", &b.signer_key.account);
    if body.and_then(|v| v.get("document_hash")).is_some() {
        rows += &row("文件名称 Document", &field("title"));
        rows += &row("文件哈希 Document SHA-256", &field("document_hash"));
    }
    rows += &row("交易编号 Transaction id", &b.tx_id.to_string());
    rows += &row("签名公钥 Signing key", &b.signer_key.public_key);
    if let Some(h) = first {
        rows += &row("区块高度 Block", &h.height.to_string());
        rows += &row(
            "上链时间 Block time",
            &evidence::local_time(spec, h.time_ms),
        );
        rows += &row("区块哈希 Block hash", &h.hash().to_string());
    }
    rows += &row("叶子序号 Leaf index", &b.leaf_index.to_string());
    if let Some(h) = last {
        rows += &row("检查点区块 Checkpoint block", &h.height.to_string());
        rows += &row("交易树大小 Tree size", &h.tree_size.to_string());
        rows += &row("交易树根 Tree root", &h.tree_root.to_string());
    }
    rows += &row(
        "验证节点签名 Validator signatures",
        &format!(
            "{signers} (法定数 quorum {} / {})",
            b.validators.quorum,
            b.validators.set.len()
        ),
    );
    rows += &row("创世哈希 Genesis hash", &b.genesis_hash.to_string());
    format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>证据证书 Evidence certificate {tx}</title>
<style>
  @page {{ size: A4; margin: 18mm; }}
  body {{ font-family: "Noto Serif CJK SC", "Songti SC", serif; color: #111; max-width: 180mm; margin: 0 auto; }}
  h1 {{ text-align: center; letter-spacing: .3em; margin-bottom: 0; }}
  .sub {{ text-align: center; color: #555; margin-top: .2em; }}
  table {{ width: 100%; border-collapse: collapse; margin: 1.2em 0; font-size: 10.5pt; }}
  th {{ text-align: left; width: 34%; vertical-align: top; padding: .35em; border-bottom: 1px solid #ccc; }}
  td {{ font-family: "Noto Sans Mono", monospace; word-break: break-all; padding: .35em; border-bottom: 1px solid #ccc; }}
  .summary {{ border: 1px solid #999; padding: .8em; line-height: 1.6; }}
  .qr {{ float: right; margin-left: 1em; text-align: center; font-size: 9pt; }}
  pre {{ font-size: 8pt; white-space: pre-wrap; word-break: break-all; border: 1px dashed #aaa; padding: .6em; }}
  .foot {{ font-size: 9pt; color: #444; }}
</style>
</head>
<body>
<h1>证据证书</h1>
<p class="sub">Evidence certificate · {chain} · {format}</p>
<div class="qr">{qr}<br>扫码验证 Scan to verify<br><span>{url}</span></div>
<div class="summary"><p>{zh}</p><p>{en}</p></div>
<table>
{rows}</table>
<p>检查点（C2SP 签名注记）Checkpoint (C2SP signed note):</p>
<pre>{note}</pre>
<p class="foot">离线验证 Offline verification: 下载 <code>/v1/evidence/{tx}</code> 并运行
<code>zsl verify BUNDLE --genesis GENESIS</code>（只需创世文件）。
Download the bundle and run the command above with the genesis file alone; see docs/evidence.md.</p>
</body>
</html>
"#,
        tx = b.tx_id,
        chain = esc(&b.chain_id),
        format = esc(&b.format),
        qr = qr_svg,
        url = esc(verify_url),
        zh = esc(&b.summary.zh),
        en = esc(&b.summary.en),
        rows = rows,
        note = esc(&b.checkpoint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_public_urls_are_checked() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            public_url("https://ledger.example.org/").unwrap(),
            "https://ledger.example.org"
        );
        assert_eq!(
            public_url("http://127.0.0.1:8080/zsl").unwrap(),
            "http://127.0.0.1:8080/zsl"
        );
        assert!(public_url("ledger.example.org").is_err());
        assert!(public_url("https://").is_err());
        assert!(public_url("https://evil\"><script>").is_err());
        assert!(public_url(&format!("https://{}", "a".repeat(300))).is_err());
    }
}
