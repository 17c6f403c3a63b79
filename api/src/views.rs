//! Read-only views the web UI needs and no record endpoint gives: recent
//! blocks, a block's transactions, daily counts, dashboard alerts, a
//! subject's portrait (企业画像) and credit report, and QR codes as SVG.
//!
//! Everything here is computed from committed ledger state through one
//! store snapshot, so a page's numbers agree with the checkpoint it names.
//! Every read is bounded (row caps, paged scans); where a cap cuts a list
//! short the answer says so (`complete: false`) instead of hiding it.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use ledger::kv::KvRead;
use ledger::{history, query, ChainHead};

use crate::ApiCode;
use crate::{checkpoint_json, period, ApiError, ApiResult, AppState, PeriodQuery};

/// Blocks in one `/v1/views/blocks` page.
pub const BLOCKS_PAGE_MAX: u64 = 50;
/// Transactions in one `/v1/views/blocks/{h}/txs` page.
pub const BLOCK_TXS_PAGE_MAX: usize = 200;
/// Longest look-ahead of the near-expiry warning, in days.
pub const NEAR_EXPIRY_DAYS_MAX: u32 = 30;
/// Longest text a QR code is made of: a URL with a trace or subject code
/// fits in a fraction of this, and a bound keeps the SVG small.
pub const QR_TEXT_BYTES_MAX: usize = 512;

fn head(view: &(impl KvRead + ?Sized)) -> ApiResult<ChainHead> {
    history::read_head(view)?.ok_or_else(|| ApiError::internal("no chain head"))
}

// ---- blocks ------------------------------------------------------------------

#[derive(Deserialize)]
pub struct BlocksQuery {
    before: Option<String>,
    limit: Option<String>,
}

fn parse_u64(what: &str, v: Option<&str>, default: u64) -> ApiResult<u64> {
    match v {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request(
                ApiCode::InvalidQuery,
                format!("{what} is a non-negative integer"),
            )
        }),
    }
}

/// `GET /v1/views/blocks?before=H&limit=N`: block headers, newest first,
/// below height `before` (default: above the head).
pub async fn blocks(
    State(state): State<AppState>,
    Query(q): Query<BlocksQuery>,
) -> ApiResult<Json<Value>> {
    let view = state.ledger.store.view();
    let head = head(&view)?;
    let limit = parse_u64("limit", q.limit.as_deref(), 20)?;
    if limit == 0 || limit > BLOCKS_PAGE_MAX {
        return Err(ApiError::bad_request(
            ApiCode::InvalidQuery,
            format!("limit is 1..={BLOCKS_PAGE_MAX}"),
        ));
    }
    let before = parse_u64("before", q.before.as_deref(), head.height.saturating_add(1))?
        .min(head.height.saturating_add(1));
    let mut out = Vec::new();
    let mut h = before;
    while h > 0 && (out.len() as u64) < limit {
        h -= 1;
        if let Some(b) = history::read_block(&view, h)? {
            out.push(json!({
                "height": b.header.height,
                "hash": b.hash,
                "time_ms": b.header.time_ms,
                "tx_count": b.header.tx_count,
                "tree_size": b.header.tree_size,
            }));
        }
    }
    Ok(Json(json!({
        "head": checkpoint_json(&head),
        "blocks": out,
        "next_before": (h > 0).then_some(h),
    })))
}

#[derive(Deserialize)]
pub struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/views/blocks/{height}/txs?offset&limit`: a block's transactions
/// with their record type and signing account.
pub async fn block_txs(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(height): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let h: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(ApiCode::InvalidHeight, "height is a non-negative integer")
    })?;
    let offset = parse_u64("offset", q.offset.as_deref(), 0)? as usize;
    let limit = parse_u64("limit", q.limit.as_deref(), 50)? as usize;
    if limit == 0 || limit > BLOCK_TXS_PAGE_MAX {
        return Err(ApiError::bad_request(
            ApiCode::InvalidQuery,
            format!("limit is 1..={BLOCK_TXS_PAGE_MAX}"),
        ));
    }
    let view = state.ledger.store.view();
    let block = history::read_block(&view, h)?
        .ok_or_else(|| ApiError::not_found("block at height", &h.to_string()))?;
    let mut txs = Vec::new();
    for id in block.tx_ids.iter().skip(offset).take(limit) {
        let loc = history::read_tx(&view, &id.0)?;
        // Type and account only of records the caller may read.
        let loc = match loc {
            Some(l) => {
                let tx: Value = serde_json::from_slice(&l.wire).map_err(ApiError::internal)?;
                let body = tx.get("body").unwrap_or(&tx);
                crate::access::may_read_record(&state, &caller, &l.account, body)?.then_some(l)
            }
            None => None,
        };
        txs.push(json!({
            "tx_id": id,
            "index": loc.as_ref().map(|l| l.index),
            "type": loc.as_ref().map(|l| l.kind.clone()),
            "account": loc.as_ref().map(|l| l.account.clone()),
        }));
    }
    Ok(Json(json!({
        "height": h,
        "hash": block.hash,
        "time_ms": block.header.time_ms,
        "tx_count": block.tx_ids.len(),
        "offset": offset,
        "txs": txs,
    })))
}

// ---- daily counts --------------------------------------------------------------

#[derive(Deserialize)]
pub struct DailyQuery {
    from: Option<String>,
    to: Option<String>,
    district: Option<String>,
}

/// `GET /v1/views/daily?from&to[&district]`: per natural day, batches
/// first-station coded, and shipment lines whose receipt fell due that day
/// with those answered on time (the model files receipts under their
/// deadline day), and lines rejected.
pub async fn daily(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(q): Query<DailyQuery>,
) -> ApiResult<Json<Value>> {
    oversees(&state, &caller, q.district.as_deref())?;
    let p = period(
        &state,
        &PeriodQuery {
            from: q.from.clone(),
            to: q.to.clone(),
        },
    )?;
    if let Some(d) = &q.district {
        if state.ledger.spec.district(d).is_none() {
            return Err(ApiError::not_found("district", d));
        }
    }
    let first = ledger::score::day_number(p.from());
    let last = ledger::score::day_number(p.to());
    let view = state.ledger.store.view();
    let head = head(&view)?;
    let days = ledger::score::daily_counters(&view, first, last, q.district.as_deref())
        .map_err(ApiError::internal)?;
    let mut out = Vec::with_capacity(days.len());
    for d in &days {
        let date = ledger::score::date_of_day(d.day)
            .map_err(|e| ApiError::bad_request(ApiCode::InvalidPeriod, e.to_string()))?;
        out.push(json!({
            "day": date.to_string(),
            "coded": d.coded,
            "receipts_due": d.receipts_due,
            "receipts_on_time": d.receipts_on_time,
            "rejected": d.rejected,
        }));
    }
    Ok(Json(json!({
        "period": {"from": p.from().to_string(), "to": p.to().to_string()},
        "district": q.district,
        "days": out,
        "checkpoint": checkpoint_json(&head),
    })))
}

/// A district's views for its regulators; all districts together for the
/// province's (a city or district regulator names its district).
fn oversees(
    state: &AppState,
    caller: &crate::auth::Caller,
    district: Option<&str>,
) -> ApiResult<()> {
    let spec = &state.ledger.spec;
    let sees = match district {
        Some(d) => crate::access::sees_region(caller, spec, d) || spec.district(d).is_none(),
        None => crate::access::regulator_jurisdiction(caller) == Some(spec.province.code.as_str()),
    };
    crate::access::require(
        caller,
        sees,
        "these views (name a district of your jurisdiction)",
    )
}

// ---- alerts --------------------------------------------------------------------

#[derive(Deserialize)]
pub struct AlertsQuery {
    district: Option<String>,
    days: Option<String>,
}

/// `GET /v1/views/alerts[?district=D][&days=N]`: recalled batches, batches
/// expiring within N days (default 3) at the head's date, and receipts past
/// their deadline with no answer.
pub async fn alerts(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<Json<Value>> {
    oversees(&state, &caller, q.district.as_deref())?;
    let days = parse_u64("days", q.days.as_deref(), 3)?;
    if days > u64::from(NEAR_EXPIRY_DAYS_MAX) {
        return Err(ApiError::bad_request(
            ApiCode::InvalidQuery,
            format!("days is 0..={NEAR_EXPIRY_DAYS_MAX}"),
        ));
    }
    if let Some(d) = &q.district {
        if state.ledger.spec.district(d).is_none() {
            return Err(ApiError::not_found("district", d));
        }
    }
    let view = state.ledger.store.view();
    let head = head(&view)?;
    let today = ledger::score::local_date(&state.ledger.spec.model, head.time_ms)
        .map_err(ApiError::internal)?;
    let until = today
        .checked_add(jiff::Span::new().days(days as i64))
        .map_err(ApiError::internal)?;
    let (today_s, until_s) = (today.to_string(), until.to_string());
    let a = query::alerts(
        &view,
        q.district.as_deref(),
        &today_s,
        &until_s,
        head.time_ms,
    )?;
    Ok(Json(json!({
        "today": today_s,
        "near_expiry_days": days,
        "district": q.district,
        "recalls": a.recalls,
        "recalls_total": a.recalls_total,
        "near_expiry": a.near_expiry,
        "near_expiry_total": a.near_expiry_total,
        "overdue_receipts": a.overdue_receipts,
        "overdue_receipts_total": a.overdue_receipts_total,
        "scanned": {"batches": a.scanned_batches, "shipments": a.scanned_shipments},
        "complete": a.complete,
        "checkpoint": checkpoint_json(&head),
    })))
}

// ---- subject portrait ----------------------------------------------------------

/// `GET /v1/views/subjects/{uscc}/portrait?from&to`: the enterprise portrait
/// (企业画像) over a period, which the food-safety credit report prints.
pub async fn portrait(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(uscc): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(s) = query::subject(&state.ledger.store.view(), &uscc)? {
        let sees = crate::access::is_party(&caller, [s.uscc.as_str()])
            || crate::access::sees_region(&caller, &state.ledger.spec, &s.district);
        crate::access::require(&caller, sees, "this enterprise's portrait")?;
    }
    let p = period(&state, &q)?;
    let params = &state.ledger.spec.model;
    // Dates at the edge of the calendar have no next day: the caller's input, so 400.
    let bad = |e: String| ApiError::bad_request(ApiCode::InvalidPeriod, e);
    let start_ms = ledger::score::day_start_ms(params, p.from()).map_err(|e| bad(e.to_string()))?;
    let end_ms = p
        .to()
        .tomorrow()
        .map_err(|e| bad(e.to_string()))
        .and_then(|d| ledger::score::day_start_ms(params, d).map_err(|e| bad(e.to_string())))?;
    let view = state.ledger.store.view();
    let head = head(&view)?;
    let portrait = query::portrait(&view, params, &uscc, (start_ms, end_ms), head.time_ms)?
        .ok_or_else(|| ApiError::not_found("subject", &uscc))?;
    let district = state.ledger.spec.district(&portrait.subject.district);
    let mut v = serde_json::to_value(&portrait).map_err(ApiError::internal)?;
    v["district"] = json!(district);
    v["period"] = json!({"from": p.from().to_string(), "to": p.to().to_string()});
    v["activity"]["period_days"] = json!(p.days());
    v["checkpoint"] = checkpoint_json(&head);
    Ok(Json(v))
}

/// `GET /v1/views/subjects/{uscc}/credit-report?from&to`: the portrait as
/// a credit report (信用报告) signed by this validator's key, for the
/// enterprise to share: a buyer checks it with `zsl verify-report` and the
/// genesis file alone.
pub async fn credit_report(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(uscc): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    let signer = state.report_signer.clone().ok_or_else(|| {
        ApiError::unavailable(
            ApiCode::NotAValidator,
            "this node is no validator and signs no reports",
        )
    })?;
    let Json(report) = portrait(State(state.clone()), caller, Path(uscc), Query(q)).await?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let doc = ledger::credit_report::sign(
        report,
        now_ms,
        &state.ledger.spec.chain_id,
        &signer.name,
        &signer.key,
    )
    .map_err(ApiError::internal)?;
    Ok(Json(doc))
}

// ---- QR codes ------------------------------------------------------------------

#[derive(Deserialize)]
pub struct QrQuery {
    text: Option<String>,
}

/// `GET /v1/qr?text=...`: the text as a QR code in SVG (medium error
/// correction, quiet zone included). Made on the server so the pages carry
/// no QR encoder of their own and every node draws the same code.
pub async fn qr(Query(q): Query<QrQuery>) -> ApiResult<impl IntoResponse> {
    let text = q.text.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::bad_request(ApiCode::InvalidQuery, "give the text as ?text=...")
    })?;
    if text.len() > QR_TEXT_BYTES_MAX {
        return Err(ApiError::bad_request(
            ApiCode::TextTooLong,
            format!("QR text is at most {QR_TEXT_BYTES_MAX} bytes"),
        ));
    }
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::bad_request(ApiCode::InvalidQrText, e.to_string()))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        svg,
    ))
}
