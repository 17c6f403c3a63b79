//! Read-only views the web UI needs and no record endpoint gives: recent
//! blocks, a block's transactions, daily counts, dashboard alerts, a
//! subject's portrait (企业画像) and credit report, and QR codes as SVG.
//!
//! Everything here is computed from committed ledger state through one
//! store snapshot, so a page's numbers agree with the checkpoint it names.
//! Every read is bounded (row caps, paged scans); where a cap cuts a list
//! short the answer says so (`complete: false`) instead of hiding it.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use ledger::kv::{KvRead, Space};
use ledger::state::{Batch, Shipment, ShipmentStatus};
use ledger::{history, query, ChainHead};

use crate::{checkpoint_json, period, ApiError, ApiResult, AppState, PeriodQuery};

/// Blocks in one `/v1/views/blocks` page.
pub const BLOCKS_PAGE_MAX: u64 = 50;
/// Transactions in one `/v1/views/blocks/{h}/txs` page.
pub const BLOCK_TXS_PAGE_MAX: usize = 200;
/// Batches or shipments an alert scan reads before it stops and says so.
pub const ALERT_SCAN_ROWS_MAX: usize = 50_000;
/// Alerts of each kind returned.
pub const ALERTS_MAX: usize = 200;
/// Rows read per storage call of a paged scan.
const SCAN_PAGE_ROWS: usize = 1_024;
/// Longest look-ahead of the near-expiry warning, in days.
pub const NEAR_EXPIRY_DAYS_MAX: u32 = 30;
/// Longest text a QR code is made of: a URL with a trace or subject code
/// fits in a fraction of this, and a bound keeps the SVG small.
pub const QR_TEXT_BYTES_MAX: usize = 512;
/// Batches (coded or held) whose details a portrait reads.
const PORTRAIT_BATCHES_MAX: usize = query::LIST_ROWS_MAX;

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
            ApiError::bad_request("invalid_query", format!("{what} is a non-negative integer"))
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
            "invalid_query",
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
    Path(height): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let h: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_height", "height is a non-negative integer"))?;
    let offset = parse_u64("offset", q.offset.as_deref(), 0)? as usize;
    let limit = parse_u64("limit", q.limit.as_deref(), 50)? as usize;
    if limit == 0 || limit > BLOCK_TXS_PAGE_MAX {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is 1..={BLOCK_TXS_PAGE_MAX}"),
        ));
    }
    let view = state.ledger.store.view();
    let block = history::read_block(&view, h)?
        .ok_or_else(|| ApiError::not_found("block at height", &h.to_string()))?;
    let mut txs = Vec::new();
    for id in block.tx_ids.iter().skip(offset).take(limit) {
        let loc = history::read_tx(&view, &id.0)?;
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

/// Positions in the score engine's per-(day, district) counter record
/// (`ledger/src/score/keys.rs`, `Counter`; layout version 1). Read here
/// directly because the engine has no public per-day query yet; the layout
/// is documented there and versioned, and an unknown version is refused.
const COUNTER_CODED: usize = 0;
const COUNTER_RECEIPT_DUE: usize = 7;
const COUNTER_RECEIPT_ON_TIME: usize = 8;
const COUNTER_REJECTED: usize = 10;
const COUNTERS_VERSION: u8 = 1;
const SCORE_COUNTERS_PREFIX: &[u8] = b"score/c";

fn day_key(day: i32) -> Vec<u8> {
    let mut k = SCORE_COUNTERS_PREFIX.to_vec();
    k.extend_from_slice(&((day as u32) ^ 0x8000_0000).to_be_bytes());
    k
}

fn counter(value: &[u8], i: usize) -> Option<i64> {
    let b = value.get(1 + 8 * i..1 + 8 * (i + 1))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(i64::from_be_bytes(a))
}

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
    Query(q): Query<DailyQuery>,
) -> ApiResult<Json<Value>> {
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
    let mut days: Vec<[i64; 4]> = vec![[0; 4]; (last - first + 1) as usize];
    let (from, to) = (day_key(first), day_key(last + 1));
    let mut cursor = from;
    // Rows are (day, district): at most PERIOD_DAYS_MAX × districts, read in pages.
    loop {
        let page = view
            .scan(Space::Index, &cursor, &to, SCAN_PAGE_ROWS)
            .map_err(ApiError::internal)?;
        let full = page.len() == SCAN_PAGE_ROWS;
        for (k, v) in &page {
            let Some(day_b) = k.get(SCORE_COUNTERS_PREFIX.len()..SCORE_COUNTERS_PREFIX.len() + 4)
            else {
                continue;
            };
            let day =
                (u32::from_be_bytes([day_b[0], day_b[1], day_b[2], day_b[3]]) ^ 0x8000_0000) as i32;
            let district = k
                .get(SCORE_COUNTERS_PREFIX.len() + 6..)
                .map(|d| String::from_utf8_lossy(d).into_owned());
            if let (Some(want), Some(got)) = (&q.district, &district) {
                if want != got {
                    continue;
                }
            }
            if v.first() != Some(&COUNTERS_VERSION) {
                return Err(ApiError::internal(
                    "score counter record of an unknown layout version",
                ));
            }
            let Some(slot) = days.get_mut((day - first) as usize) else {
                continue;
            };
            for (j, c) in [
                COUNTER_CODED,
                COUNTER_RECEIPT_DUE,
                COUNTER_RECEIPT_ON_TIME,
                COUNTER_REJECTED,
            ]
            .iter()
            .enumerate()
            {
                slot[j] += counter(v, *c).unwrap_or(0);
            }
        }
        match page.last() {
            Some((k, _)) if full => {
                cursor = k.clone();
                cursor.push(0);
            }
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(days.len());
    for (i, c) in days.iter().enumerate() {
        let date = ledger::score::date_of_day(first + i as i32)
            .map_err(|e| ApiError::bad_request("invalid_period", e.to_string()))?;
        out.push(json!({
            "day": date.to_string(),
            "coded": c[0],
            "receipts_due": c[1],
            "receipts_on_time": c[2],
            "rejected": c[3],
        }));
    }
    Ok(Json(json!({
        "period": {"from": p.from().to_string(), "to": p.to().to_string()},
        "district": q.district,
        "days": out,
        "checkpoint": checkpoint_json(&head),
    })))
}

// ---- alerts --------------------------------------------------------------------

/// Calls `f` on every value under `prefix` in `space`, in pages, up to
/// `rows_max` rows; answers whether it saw them all.
fn scan_paged(
    view: &(impl KvRead + ?Sized),
    space: Space,
    prefix: &str,
    rows_max: usize,
    mut f: impl FnMut(&[u8], &[u8]) -> ApiResult<()>,
) -> ApiResult<(usize, bool)> {
    let from = prefix.as_bytes().to_vec();
    let to = ledger::kv::prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0xff; 64]);
    let mut cursor = from;
    let mut seen = 0usize;
    loop {
        let want = SCAN_PAGE_ROWS.min(rows_max - seen);
        if want == 0 {
            // Complete only if nothing is left past the cap.
            let more = view
                .scan(space, &cursor, &to, 1)
                .map_err(ApiError::internal)?;
            return Ok((seen, more.is_empty()));
        }
        let page = view
            .scan(space, &cursor, &to, want)
            .map_err(ApiError::internal)?;
        let full = page.len() == want;
        for (k, v) in &page {
            f(k, v)?;
        }
        seen += page.len();
        match page.last() {
            Some((k, _)) if full => {
                cursor = k.clone();
                cursor.push(0);
            }
            _ => return Ok((seen, true)),
        }
    }
}

#[derive(Deserialize)]
pub struct AlertsQuery {
    district: Option<String>,
    days: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> ApiResult<T> {
    ledger::state::decode(k, v).map_err(ApiError::internal)
}

fn batch_brief(b: &Batch) -> Value {
    json!({
        "trace_code": b.trace_code,
        "product_name": b.product_name,
        "coder": b.coder,
        "district": b.coder_district,
        "quantity": b.quantity,
        "unit": b.unit,
        "expiry_date": b.expiry_date,
        "coded": b.coded,
    })
}

/// `GET /v1/views/alerts[?district=D][&days=N]`: recalled batches, batches
/// expiring within N days (default 3) at the head's date, and receipts past
/// their deadline with no answer.
pub async fn alerts(
    State(state): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<Json<Value>> {
    let days = parse_u64("days", q.days.as_deref(), 3)?;
    if days > u64::from(NEAR_EXPIRY_DAYS_MAX) {
        return Err(ApiError::bad_request(
            "invalid_query",
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
    let in_district = |d: &str| q.district.as_deref().is_none_or(|w| w == d);

    let (mut recalls, mut near_expiry) = (Vec::new(), Vec::new());
    let (mut recalls_total, mut near_total) = (0usize, 0usize);
    let (batches_seen, batches_complete) = scan_paged(
        &view,
        Space::State,
        "batch/",
        ALERT_SCAN_ROWS_MAX,
        |k, v| {
            let b: Batch = decode(k, v)?;
            if !in_district(&b.coder_district) {
                return Ok(());
            }
            if let Some(r) = &b.recall {
                recalls_total += 1;
                if recalls.len() < ALERTS_MAX {
                    let mut x = batch_brief(&b);
                    x["recall"] = json!({"reason": r.reason, "by": r.by, "origin": r.origin, "affected": r.affected.len()});
                    recalls.push(x);
                }
            } else if b.expiry_date >= today_s && b.expiry_date <= until_s {
                near_total += 1;
                if near_expiry.len() < ALERTS_MAX {
                    near_expiry.push(batch_brief(&b));
                }
            }
            Ok(())
        },
    )?;
    let mut overdue = Vec::new();
    let mut overdue_total = 0usize;
    let (shipments_seen, shipments_complete) =
        scan_paged(&view, Space::State, "ship/", ALERT_SCAN_ROWS_MAX, |k, v| {
            let s: Shipment = decode(k, v)?;
            if matches!(s.status, ShipmentStatus::Pending)
                && s.receipt_deadline_ms < head.time_ms
                && in_district(&s.receiver_district)
            {
                overdue_total += 1;
                if overdue.len() < ALERTS_MAX {
                    overdue.push(json!({
                        "shipper": s.shipper,
                        "shipment_id": s.shipment_id,
                        "to": s.to,
                        "receiver_district": s.receiver_district,
                        "lines": s.lines.len(),
                        "shipped": s.shipped,
                        "receipt_deadline_ms": s.receipt_deadline_ms,
                    }));
                }
            }
            Ok(())
        })?;
    recalls.sort_by(|a, b| {
        b["recall"]["origin"]["at_ms"]
            .as_i64()
            .cmp(&a["recall"]["origin"]["at_ms"].as_i64())
    });
    near_expiry.sort_by(|a, b| a["expiry_date"].as_str().cmp(&b["expiry_date"].as_str()));
    overdue.sort_by_key(|s| s["receipt_deadline_ms"].as_i64());
    Ok(Json(json!({
        "today": today_s,
        "near_expiry_days": days,
        "district": q.district,
        "recalls": recalls,
        "recalls_total": recalls_total,
        "near_expiry": near_expiry,
        "near_expiry_total": near_total,
        "overdue_receipts": overdue,
        "overdue_receipts_total": overdue_total,
        "scanned": {"batches": batches_seen, "shipments": shipments_seen},
        "complete": batches_complete && shipments_complete,
        "checkpoint": checkpoint_json(&head),
    })))
}

// ---- subject portrait ----------------------------------------------------------

/// `GET /v1/views/subjects/{uscc}/portrait?from&to`: the enterprise portrait
/// (企业画像) over a period, which the food-safety credit report prints.
pub async fn portrait(
    State(state): State<AppState>,
    Path(uscc): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    let p = period(&state, &q)?;
    let params = &state.ledger.spec.model;
    // Dates at the edge of the calendar have no next day: the caller's input, so 400.
    let bad = |e: String| ApiError::bad_request("invalid_period", e);
    let start_ms = ledger::score::day_start_ms(params, p.from()).map_err(|e| bad(e.to_string()))?;
    let end_ms = p
        .to()
        .tomorrow()
        .map_err(|e| bad(e.to_string()))
        .and_then(|d| ledger::score::day_start_ms(params, d).map_err(|e| bad(e.to_string())))?;
    let in_period = |ms: i64| ms >= start_ms && ms < end_ms;
    let view = state.ledger.store.view();
    let head = head(&view)?;
    let v =
        query::subject_view(&view, &uscc)?.ok_or_else(|| ApiError::not_found("subject", &uscc))?;
    let account = query::account(&view, &uscc)?;
    let catalogue = query::varieties(&view)?;
    let mut active_days = BTreeSet::new();
    let mut mark = |ms: i64| {
        if in_period(ms) {
            if let Ok(d) = ledger::score::local_date(params, ms) {
                active_days.insert(d.to_string());
            }
        }
    };

    // Coding, and recalls of what the subject coded.
    let (mut coded, mut coded_key_variety) = (0u64, 0u64);
    let mut recalls = Vec::new();
    let mut varieties = BTreeSet::new();
    for code in v.batches_coded.iter().take(PORTRAIT_BATCHES_MAX) {
        let Some(b) = query::batch(&view, code)? else {
            continue;
        };
        varieties.insert(b.variety.clone());
        if in_period(b.coded.at_ms) {
            coded += 1;
            coded_key_variety += u64::from(b.key_variety);
            mark(b.coded.at_ms);
        }
        if let Some(r) = &b.recall {
            if in_period(r.origin.at_ms) {
                recalls.push(json!({"trace_code": b.trace_code, "product_name": b.product_name, "reason": r.reason, "origin": r.origin, "role": "coder"}));
            }
        }
    }
    // Recalled batches the subject holds.
    for (code, qty) in v.holdings.iter().take(PORTRAIT_BATCHES_MAX) {
        if v.batches_coded.contains(code) {
            continue;
        }
        if let Some(b) = query::batch(&view, code)? {
            if let Some(r) = &b.recall {
                if in_period(r.origin.at_ms) {
                    recalls.push(json!({"trace_code": b.trace_code, "product_name": b.product_name, "reason": r.reason, "origin": r.origin, "role": "holder", "quantity": qty}));
                }
            }
        }
    }

    // Shipments out, and how receivers answered them.
    let (mut shipped, mut shipped_rejected) = (0u64, 0u64);
    for s in &v.shipments_out {
        if in_period(s.shipped.at_ms) {
            shipped += 1;
            mark(s.shipped.at_ms);
            if matches!(s.status, ShipmentStatus::Rejected { .. }) {
                shipped_rejected += 1;
            }
        }
    }
    // Receipts owed by the subject.
    let (mut due, mut on_time, mut late, mut overdue, mut pending) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut rejections_made = 0u64;
    let mut rejections = Vec::new();
    for s in &v.shipments_in {
        let answered = match &s.status {
            ShipmentStatus::Pending => None,
            ShipmentStatus::Received { origin, on_time } => Some((origin, *on_time)),
            ShipmentStatus::Rejected {
                origin, on_time, ..
            } => Some((origin, *on_time)),
        };
        if let Some((o, _)) = answered {
            mark(o.at_ms);
        }
        if let ShipmentStatus::Rejected {
            origin,
            reason,
            note,
            ..
        } = &s.status
        {
            if in_period(origin.at_ms) {
                rejections_made += 1;
                rejections.push(json!({"shipper": s.shipper, "shipment_id": s.shipment_id, "reason": reason, "note": note, "origin": origin}));
            }
        }
        // Shipments sent to the subject in the period. (The score model files
        // receipts under their deadline's day instead; a portrait counts an
        // answer as soon as it is given, and a receipt not yet due as pending.)
        if !in_period(s.shipped.at_ms) {
            continue;
        }
        match answered {
            Some((_, true)) => {
                due += 1;
                on_time += 1;
            }
            Some((_, false)) => {
                due += 1;
                late += 1;
            }
            // Not answered: counts as missed once its deadline passed.
            None if s.receipt_deadline_ms <= head.time_ms => {
                due += 1;
                overdue += 1;
            }
            None => pending += 1,
        }
    }
    let findings: Vec<Value> = v
        .findings
        .iter()
        .filter(|f| in_period(f.found.at_ms))
        .map(|f| {
            json!({
                "finding_id": f.finding_id,
                "kind": f.kind,
                "batches": f.batches,
                "found": f.found,
                "rectification_deadline_ms": f.rectification_deadline_ms,
                "rectified": f.rectified.as_ref().map(|(o, in_time)| json!({"origin": o, "in_time": in_time})),
            })
        })
        .collect();
    let rate = |n: u64, d: u64| (d > 0).then(|| (n as f64) * 100.0 / (d as f64));
    let lists_capped = [
        v.batches_coded.len(),
        v.holdings.len(),
        v.shipments_in.len(),
        v.shipments_out.len(),
        v.findings.len(),
    ]
    .iter()
    .any(|n| *n >= query::LIST_ROWS_MAX);
    let district = state.ledger.spec.district(&v.subject.district);
    Ok(Json(json!({
        "subject": v.subject,
        "district": district,
        "account": account.map(|a| json!({"name": a.name, "role": a.role, "active_keys": a.active_key_count(), "registered": a.registered})),
        "catalogue": {
            "key_subject": v.subject.key_subject,
            "catalogue_version": catalogue.as_ref().map(|c| c.version),
            "varieties": varieties.iter().map(|x| json!({"variety": x, "key_variety": catalogue.as_ref().is_some_and(|c| c.contains(x))})).collect::<Vec<_>>(),
        },
        "period": {"from": p.from().to_string(), "to": p.to().to_string()},
        "activity": {
            "active_days": active_days.len(),
            "period_days": p.days(),
            "batches_coded": coded,
            "key_variety_batches_coded": coded_key_variety,
            "shipments_out": shipped,
            "holdings": v.holdings.len(),
        },
        "receipts": {
            "due": due,
            "on_time": on_time,
            "late": late,
            "overdue_unanswered": overdue,
            "pending": pending,
            "on_time_rate": rate(on_time, due),
        },
        "rejections": {
            "made": rejections_made,
            "received": shipped_rejected,
            "list": rejections,
        },
        "findings": findings,
        "recalls": recalls,
        "complete": !lists_capped,
        "checkpoint": checkpoint_json(&head),
    })))
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
    let text = q
        .text
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid_query", "give the text as ?text=..."))?;
    if text.len() > QR_TEXT_BYTES_MAX {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("QR text is at most {QR_TEXT_BYTES_MAX} bytes"),
        ));
    }
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::bad_request("invalid_qr_text", e.to_string()))?;
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
