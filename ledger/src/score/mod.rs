//! The district score engine: 赋码率 (coding rate) and 扫码率 (scanning rate), exactly as
//! `scoring/MODEL.md` (model `zj-2024`) defines them, plus the secondary metrics.
//!
//! The state machine calls the `on_*` functions with already-validated facts while it
//! applies a block; they update counters and drill-down items in [`Space::Index`] through
//! the block's overlay. Queries ([`scores`], [`district_detail`], [`upcoming_deadlines`])
//! read those indices only: a province-wide score costs O(days × districts) counter reads
//! plus the secondary metrics' catalogue and market reads, never a scan of the ledger.
//!
//! Every item is filed under the natural day (Asia/Shanghai) on which it becomes certain
//! (MODEL.md "Time"): N, coding a, beta_c, g/h candidates, scanning b and c, g/h points on
//! the event's day; scanning a on the receipt deadline's day; coding b on the
//! rectification deadline's day. A deadline is 00:00 local, so an item dated on day D
//! counts at time t exactly when D <= local date of t; that is how a running score
//! (`as_of_ms = Some(t)`) cuts the period.
//!
//! Decisions where MODEL.md is silent (the model's owners may revise them):
//! - A rejection is an answer: on time, it stops scanning a for the receiver; the rejected
//!   lines count scanning c for the shipper whether the rejection was on time or late.
//! - Key-variety coverage: coding and scanning rates recomputed over key-variety batches
//!   only, with N_kv = key-variety batches coded; the coding one keeps a and beta_c, the
//!   scanning one keeps a and c, all restricted to key-variety lines. The terms that do
//!   not name a variety are left out: findings (coding b, scanning b) carry no variety,
//!   g/h are district-wide regulator judgements, and f rewards volume, not coverage.
//!   `N_kv = 0` gives `null` with a reason.
//! - Key-subject coverage uses the catalogue as it stood at the evaluation instant (the
//!   period's last millisecond, or `as_of` if earlier).
//! - Market daily activity averages over the days of the period (up to `as_of`) on which
//!   the market had at least one registered operator; a market with none is `null`.
//!   Operators are counted as registered from their registration day on.
//! - A `FindingKind::Other` finding moves no term. A rectification of a finding the
//!   engine does not know as `uncoded` is an error.
//! - With `as_of_ms = Some(t)`, event-dated terms are cut at day granularity: the engine
//!   assumes t is the latest block time, so no indexed event is later than t.

mod keys;
mod ratio;
mod report;
pub mod scenario;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::kv::{KvError, KvRead, KvWrite, Space};
use keys::{add_counters, Counter, Counters, KeyBuf, COUNTERS_LEN};

pub use keys::hex;
pub use ratio::Ratio;
pub use report::*;

/// The model id of the 2024 provincial work plan.
pub const MODEL_ZJ_2024: &str = "zj-2024";
/// Longest period a query accepts, in natural days.
pub const PERIOD_DAYS_MAX: i32 = 400;
/// Longest receipt or rectification window a parameter set may name, in natural days.
pub const WINDOW_DAYS_MAX: u32 = 366;
/// Longest look-ahead of [`upcoming_deadlines`], in natural days.
pub const LOOKAHEAD_DAYS_MAX: u32 = 400;
/// Most drill-down rows one query reads before it refuses.
pub const DETAIL_ROWS_MAX: usize = 1_000_000;
/// Most index rows a secondary metric reads for one district before it refuses.
pub const SECONDARY_ROWS_MAX: usize = 1_000_000;

pub type TxId = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("time zone {name}: {reason}")]
    TimeZone { name: String, reason: String },
    #[error("time {0} ms since the Unix epoch is out of range")]
    TimeOutOfRange(i64),
    #[error("date out of range: {0}")]
    DateOutOfRange(String),
    #[error("invalid period: {0}")]
    Period(String),
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid model parameters: {0}")]
    Params(String),
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    #[error("no receipt is due for shipment {0}")]
    UnknownShipment(String),
    #[error("shipment {0} was already answered")]
    AlreadyAnswered(String),
    #[error("no uncoded finding {0}")]
    UnknownFinding(String),
    #[error("finding {0} was already rectified")]
    AlreadyRectified(String),
    #[error("item {0} was recorded twice with different content")]
    DuplicateItem(String),
    #[error("region table: {0}")]
    RegionTable(String),
    #[error("query reads more than {0} index rows")]
    TooManyRows(usize),
    #[error("invalid fact: {0}")]
    Fact(String),
}

pub type Result<T> = std::result::Result<T, ScoreError>;

/// One rank band of the ranking bonus f: ranks `rank_from..=rank_to` get `points`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankBand {
    pub rank_from: u32,
    pub rank_to: u32,
    pub points: u32,
}

/// The parameters of an evaluation model; they live in the genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// Model id, e.g. `zj-2024`.
    pub model: String,
    /// IANA time zone of natural days.
    pub timezone: String,
    /// The weight of b in both formulas (50).
    pub b_weight: u32,
    /// β of a batch coded in lieu of a registered upstream in the same district (1).
    pub beta_same_district: u32,
    /// β of a batch coded in lieu of a registered upstream in another district (2).
    pub beta_other_district: u32,
    pub receipt_window_days: u32,
    pub rectification_window_days: u32,
    /// Weight of each batch of an `uncoded` finding not rectified in time (加倍扣分, 2).
    pub uncoded_unrectified_multiplier: u32,
    pub rank_bands: Vec<RankBand>,
    pub key_subject_coverage_target_percent: u32,
    pub key_variety_coverage_target_percent: u32,
    /// w_c of key-variety coverage, in thousandths.
    pub key_variety_coding_weight_permille: u32,
    /// w_s of key-variety coverage, in thousandths.
    pub key_variety_scanning_weight_permille: u32,
    /// 农批 market daily activity target.
    pub wholesale_market_activity_target_percent: u32,
    /// 农贸 market daily activity target.
    pub retail_market_activity_target_percent: u32,
}

impl ModelParams {
    /// The 2024 provincial work plan's model.
    pub fn zj_2024() -> Self {
        ModelParams {
            model: MODEL_ZJ_2024.to_string(),
            timezone: "Asia/Shanghai".to_string(),
            b_weight: 50,
            beta_same_district: 1,
            beta_other_district: 2,
            receipt_window_days: 2,
            rectification_window_days: 2,
            uncoded_unrectified_multiplier: 2,
            rank_bands: vec![
                RankBand {
                    rank_from: 1,
                    rank_to: 10,
                    points: 2,
                },
                RankBand {
                    rank_from: 11,
                    rank_to: 20,
                    points: 1,
                },
            ],
            key_subject_coverage_target_percent: 85,
            key_variety_coverage_target_percent: 90,
            key_variety_coding_weight_permille: 500,
            key_variety_scanning_weight_permille: 500,
            wholesale_market_activity_target_percent: 60,
            retail_market_activity_target_percent: 80,
        }
    }

    /// Checks a parameter set read from a genesis file.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: &str| Err(ScoreError::Params(s.to_string()));
        if self.model.is_empty() {
            return bad("model id is empty");
        }
        self.time_zone()?;
        if self.receipt_window_days > WINDOW_DAYS_MAX
            || self.rectification_window_days > WINDOW_DAYS_MAX
        {
            return bad("window longer than WINDOW_DAYS_MAX");
        }
        let mut last_to = 0;
        for b in &self.rank_bands {
            if b.rank_from == 0 || b.rank_from > b.rank_to || b.rank_from <= last_to {
                return bad("rank bands must be ascending, disjoint, from rank 1 on");
            }
            last_to = b.rank_to;
        }
        if self.key_variety_coding_weight_permille > 1000
            || self.key_variety_scanning_weight_permille > 1000
        {
            return bad("key-variety weights are thousandths, at most 1000");
        }
        Ok(())
    }

    pub fn time_zone(&self) -> Result<TimeZone> {
        TimeZone::get(&self.timezone).map_err(|e| ScoreError::TimeZone {
            name: self.timezone.clone(),
            reason: e.to_string(),
        })
    }

    /// Ranking bonus f for a rank (N > 0 is checked by the caller).
    pub fn rank_bonus(&self, rank: u32) -> u32 {
        self.rank_bands
            .iter()
            .find(|b| b.rank_from <= rank && rank <= b.rank_to)
            .map_or(0, |b| b.points)
    }
}

// ---------------------------------------------------------------------------------------
// Natural days.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub fn day_number(d: Date) -> i32 {
    let (y, m, dd) = (d.year() as i32, d.month() as i32, d.day() as i32);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn date_of_day(day: i32) -> Result<Date> {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let y = i16::try_from(y).map_err(|_| ScoreError::DateOutOfRange(format!("day {day}")))?;
    Date::new(y, m as i8, d as i8).map_err(|e| ScoreError::DateOutOfRange(e.to_string()))
}

fn local_day_in(tz: &TimeZone, time_ms: i64) -> Result<i32> {
    let ts =
        Timestamp::from_millisecond(time_ms).map_err(|_| ScoreError::TimeOutOfRange(time_ms))?;
    Ok(day_number(tz.to_datetime(ts).date()))
}

fn day_start_in(tz: &TimeZone, day: i32) -> Result<i64> {
    let date = date_of_day(day)?;
    let zdt = date
        .to_zoned_datetime(tz.clone())
        .map_err(|e| ScoreError::DateOutOfRange(e.to_string()))?;
    Ok(zdt.timestamp().as_millisecond())
}

/// The natural day (in the model's time zone) containing `time_ms`.
pub fn local_date(params: &ModelParams, time_ms: i64) -> Result<Date> {
    date_of_day(local_day_in(&params.time_zone()?, time_ms)?)
}

/// 00:00 local of `date`, in ms since the Unix epoch.
pub fn day_start_ms(params: &ModelParams, date: Date) -> Result<i64> {
    day_start_in(&params.time_zone()?, day_number(date))
}

/// The deadline `window_days` natural days after an event: 00:00 local of
/// (local date of the event) + `window_days` + 1. An answer is on time iff `at < deadline`.
pub fn deadline_ms(params: &ModelParams, event_ms: i64, window_days: u32) -> Result<i64> {
    let tz = params.time_zone()?;
    day_start_in(&tz, deadline_day(&tz, event_ms, window_days)?)
}

fn deadline_day(tz: &TimeZone, event_ms: i64, window_days: u32) -> Result<i32> {
    if window_days > WINDOW_DAYS_MAX {
        return Err(ScoreError::Params(format!(
            "window of {window_days} days is too long"
        )));
    }
    // A window ≤ WINDOW_DAYS_MAX on a date jiff accepts cannot overflow i32.
    Ok(local_day_in(tz, event_ms)? + window_days as i32 + 1)
}

/// An assessment period: natural days `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: Date,
    to: Date,
}

impl Period {
    pub fn new(from: Date, to: Date) -> Result<Period> {
        if from > to {
            return Err(ScoreError::Period(format!("from {from} is after to {to}")));
        }
        let days = day_number(to) - day_number(from) + 1;
        if days > PERIOD_DAYS_MAX {
            return Err(ScoreError::Period(format!(
                "{days} days is longer than {PERIOD_DAYS_MAX}"
            )));
        }
        Ok(Period { from, to })
    }

    /// Parses `YYYY-MM-DD` dates.
    pub fn parse(from: &str, to: &str) -> Result<Period> {
        let p = |s: &str| {
            s.parse::<Date>()
                .map_err(|e| ScoreError::Period(format!("{s:?}: {e}")))
        };
        Period::new(p(from)?, p(to)?)
    }

    pub fn from(&self) -> Date {
        self.from
    }

    pub fn to(&self) -> Date {
        self.to
    }

    pub fn days(&self) -> i32 {
        day_number(self.to) - day_number(self.from) + 1
    }

    fn day_range(&self) -> (i32, i32) {
        (day_number(self.from), day_number(self.to))
    }
}

#[derive(Serialize, Deserialize)]
struct PeriodRepr {
    from: String,
    to: String,
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        PeriodRepr {
            from: self.from.to_string(),
            to: self.to.to_string(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = PeriodRepr::deserialize(d)?;
        Period::parse(&r.from, &r.to).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Facts: what the state machine tells the engine, already validated.

/// Who should have coded a batch that was first-station coded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFact {
    /// The coder is the first station.
    None,
    /// A subject registered at the moment of coding: the coding is in lieu of it.
    Registered { subject: String, district: String },
    /// An unregistered upstream, by region code; `in_region_table` = inside the province.
    Unregistered {
        region: String,
        in_region_table: bool,
    },
}

/// A first-station coding transaction (one or more batches with the same upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedFact {
    pub tx_id: TxId,
    pub at_ms: i64,
    pub coder: String,
    pub coder_district: String,
    pub batches: u64,
    /// How many of `batches` are of a key variety.
    pub key_variety_batches: u64,
    pub upstream: UpstreamFact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedFact {
    pub tx_id: TxId,
    pub at_ms: i64,
    pub shipper: String,
    pub shipper_district: String,
    pub receiver: String,
    pub receiver_district: String,
    pub lines: u64,
    pub key_variety_lines: u64,
}

/// A receipt confirmation or a rejection of a shipment by its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredFact {
    pub tx_id: TxId,
    pub shipment_tx_id: TxId,
    pub shipped_at_ms: i64,
    pub at_ms: i64,
    pub rejected: bool,
    pub shipper_district: String,
    pub receiver: String,
    pub receiver_district: String,
    pub lines: u64,
    pub key_variety_lines: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// 线下巡查发现未赋码产品: coding b, with a rectification window.
    Uncoded,
    /// 线下检查发现未通过链上交易的商品: scanning b.
    OffChain,
    /// Any other finding: no term.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingFact {
    pub tx_id: TxId,
    /// When the finding was notified (committed).
    pub at_ms: i64,
    pub subject: String,
    pub district: String,
    pub kind: FindingKind,
    pub batches: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectifiedFact {
    pub tx_id: TxId,
    pub finding_tx_id: TxId,
    pub finding_at_ms: i64,
    pub at_ms: i64,
    pub subject: String,
    pub district: String,
    pub batches: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// 酌情扣分.
    G,
    /// 酌情加分.
    H,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentFact {
    pub tx_id: TxId,
    pub at_ms: i64,
    pub district: String,
    pub term: Term,
    pub points_hundredths: i64,
}

/// Any business record by a subject (coverage and daily activity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFact {
    pub at_ms: i64,
    pub subject: String,
    pub district: String,
    /// For a `market_operator`: its market's subject id.
    pub market: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketKind {
    /// 农批市场.
    Wholesale,
    /// 农贸市场.
    Retail,
}

/// A stall operator registered at a market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorFact {
    pub at_ms: i64,
    pub market: String,
    pub market_district: String,
    pub market_kind: MarketKind,
    pub operator: String,
}

// ---------------------------------------------------------------------------------------
// Drill-down items.

/// One drill-down item, as stored (JSON) and as listed by [`district_detail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// Coding a of the upstream's district: someone coded in lieu of its subject.
    LieuCodingAgainst {
        tx_id: String,
        at_ms: i64,
        coder: String,
        coder_district: String,
        upstream: String,
        batches: u64,
        key_variety_batches: u64,
    },
    /// beta_c of the coder's district.
    LieuCodingBy {
        tx_id: String,
        at_ms: i64,
        coder: String,
        upstream: String,
        upstream_district: String,
        beta: u32,
        batches: u64,
        key_variety_batches: u64,
    },
    /// Coding by the district's subject; upstream unregistered in the same district.
    GCandidate {
        tx_id: String,
        at_ms: i64,
        coder: String,
        region: String,
        batches: u64,
    },
    /// Coding by the district's subject; upstream unregistered in another district.
    HCandidate {
        tx_id: String,
        at_ms: i64,
        coder: String,
        region: String,
        batches: u64,
    },
    /// A receipt due from the district's subject (filed under its deadline day).
    Receipt {
        shipment_tx_id: String,
        shipped_at_ms: i64,
        deadline_ms: i64,
        shipper: String,
        shipper_district: String,
        receiver: String,
        lines: u64,
        key_variety_lines: u64,
        answer: Option<Answer>,
    },
    /// Scanning c of the shipper's district.
    Rejection {
        tx_id: String,
        shipment_tx_id: String,
        at_ms: i64,
        receiver: String,
        receiver_district: String,
        lines: u64,
        key_variety_lines: u64,
    },
    /// An `uncoded` finding (filed under its rectification deadline day).
    UncodedFinding {
        finding_tx_id: String,
        at_ms: i64,
        deadline_ms: i64,
        subject: String,
        batches: u64,
        rectification: Option<Rectification>,
    },
    /// Scanning b.
    OffChainFinding {
        tx_id: String,
        at_ms: i64,
        subject: String,
        batches: u64,
    },
    /// g or h points.
    Adjustment {
        tx_id: String,
        at_ms: i64,
        term: Term,
        points_hundredths: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub tx_id: String,
    pub at_ms: i64,
    pub rejected: bool,
    pub on_time: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    pub tx_id: String,
    pub at_ms: i64,
    pub in_time: bool,
}

impl Item {
    /// Key byte; orders the items of a day.
    fn code(&self) -> u8 {
        match self {
            Item::LieuCodingAgainst { .. } => 1,
            Item::LieuCodingBy { .. } => 2,
            Item::GCandidate { .. } => 3,
            Item::HCandidate { .. } => 4,
            Item::Receipt { .. } => 5,
            Item::Rejection { .. } => 6,
            Item::UncodedFinding { .. } => 7,
            Item::OffChainFinding { .. } => 8,
            Item::Adjustment { .. } => 9,
        }
    }
}

const ITEM_RECEIPT: u8 = 5;
const ITEM_UNCODED: u8 = 7;

fn item_key(district: &str, day: i32, code: u8, tx: &TxId) -> Result<Vec<u8>> {
    Ok(KeyBuf::new(keys::TAG_ITEMS)
        .id("district", district)?
        .day(day)
        .byte(code)
        .bytes(tx)
        .into_vec())
}

fn encode_item(item: &Item) -> Result<Vec<u8>> {
    serde_json::to_vec(item).map_err(|e| ScoreError::Fact(format!("item does not encode: {e}")))
}

fn decode_item(key: &[u8], value: &[u8]) -> Result<Item> {
    serde_json::from_slice(value).map_err(|e| keys::corrupt_key(key, &format!("item: {e}")))
}

/// Files a new item; the same tx filing an identical item again is a no-op, and
/// batches of a repeated coding item (one call per batch of one tx) add up.
fn put_item(kv: &mut impl KvWrite, district: &str, day: i32, tx: &TxId, item: Item) -> Result<()> {
    let key = item_key(district, day, item.code(), tx)?;
    let item = match kv.get(Space::Index, &key)? {
        None => item,
        Some(old) => merge_items(decode_item(&key, &old)?, item)
            .ok_or_else(|| ScoreError::DuplicateItem(hex(tx)))?,
    };
    kv.put(Space::Index, key, encode_item(&item)?);
    Ok(())
}

fn merge_items(old: Item, new: Item) -> Option<Item> {
    use Item::*;
    match (old, new) {
        (
            LieuCodingAgainst {
                tx_id,
                at_ms,
                coder,
                coder_district,
                upstream,
                batches,
                key_variety_batches,
            },
            LieuCodingAgainst {
                coder: c2,
                upstream: u2,
                batches: b2,
                key_variety_batches: k2,
                ..
            },
        ) if coder == c2 && upstream == u2 => Some(LieuCodingAgainst {
            tx_id,
            at_ms,
            coder,
            coder_district,
            upstream,
            batches: batches.checked_add(b2)?,
            key_variety_batches: key_variety_batches.checked_add(k2)?,
        }),
        (
            LieuCodingBy {
                tx_id,
                at_ms,
                coder,
                upstream,
                upstream_district,
                beta,
                batches,
                key_variety_batches,
            },
            LieuCodingBy {
                coder: c2,
                upstream: u2,
                batches: b2,
                key_variety_batches: k2,
                ..
            },
        ) if coder == c2 && upstream == u2 => Some(LieuCodingBy {
            tx_id,
            at_ms,
            coder,
            upstream,
            upstream_district,
            beta,
            batches: batches.checked_add(b2)?,
            key_variety_batches: key_variety_batches.checked_add(k2)?,
        }),
        (
            GCandidate {
                tx_id,
                at_ms,
                coder,
                region,
                batches,
            },
            GCandidate {
                coder: c2,
                region: r2,
                batches: b2,
                ..
            },
        ) if coder == c2 && region == r2 => Some(GCandidate {
            tx_id,
            at_ms,
            coder,
            region,
            batches: batches.checked_add(b2)?,
        }),
        (
            HCandidate {
                tx_id,
                at_ms,
                coder,
                region,
                batches,
            },
            HCandidate {
                coder: c2,
                region: r2,
                batches: b2,
                ..
            },
        ) if coder == c2 && region == r2 => Some(HCandidate {
            tx_id,
            at_ms,
            coder,
            region,
            batches: batches.checked_add(b2)?,
        }),
        (old, new) if old == new => Some(old),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Index updates.

/// Counter deltas of one call, grouped per (day, district) record.
#[derive(Default)]
struct Deltas(BTreeMap<(i32, String), Counters>);

impl Deltas {
    fn add(&mut self, day: i32, district: &str, c: Counter, v: u64) -> Result<()> {
        let v = i64::try_from(v).map_err(|_| ScoreError::Overflow("count"))?;
        self.add_signed(day, district, c, v)
    }

    fn add_signed(&mut self, day: i32, district: &str, c: Counter, v: i64) -> Result<()> {
        keys::check_id("district", district)?;
        let rec = self
            .0
            .entry((day, district.to_string()))
            .or_insert([0; COUNTERS_LEN]);
        let slot = &mut rec[c as usize];
        *slot = slot.checked_add(v).ok_or(ScoreError::Overflow("counter"))?;
        Ok(())
    }

    fn apply(self, kv: &mut impl KvWrite) -> Result<()> {
        add_counters(kv, &self.0)
    }
}

fn mul(a: u64, b: u32) -> Result<u64> {
    a.checked_mul(u64::from(b))
        .ok_or(ScoreError::Overflow("weighted count"))
}

fn check_part(part: u64, whole: u64, what: &str) -> Result<()> {
    if part > whole {
        return Err(ScoreError::Fact(format!(
            "{what}: key-variety count {part} exceeds the total {whole}"
        )));
    }
    Ok(())
}

/// A first-station coding (首站赋码).
pub fn on_coded(kv: &mut impl KvWrite, params: &ModelParams, f: &CodedFact) -> Result<()> {
    check_part(f.key_variety_batches, f.batches, "coding")?;
    let tz = params.time_zone()?;
    let day = local_day_in(&tz, f.at_ms)?;
    let tx = hex(&f.tx_id);
    let mut d = Deltas::default();
    d.add(day, &f.coder_district, Counter::Coded, f.batches)?;
    d.add(
        day,
        &f.coder_district,
        Counter::KvCoded,
        f.key_variety_batches,
    )?;
    match &f.upstream {
        UpstreamFact::None => {}
        UpstreamFact::Registered { subject, district } => {
            let beta = if *district == f.coder_district {
                params.beta_same_district
            } else {
                params.beta_other_district
            };
            d.add(day, district, Counter::LieuAgainst, f.batches)?;
            d.add(day, district, Counter::KvLieuAgainst, f.key_variety_batches)?;
            d.add(
                day,
                &f.coder_district,
                Counter::BetaC,
                mul(f.batches, beta)?,
            )?;
            d.add(
                day,
                &f.coder_district,
                Counter::KvBetaC,
                mul(f.key_variety_batches, beta)?,
            )?;
            let against = Item::LieuCodingAgainst {
                tx_id: tx.clone(),
                at_ms: f.at_ms,
                coder: f.coder.clone(),
                coder_district: f.coder_district.clone(),
                upstream: subject.clone(),
                batches: f.batches,
                key_variety_batches: f.key_variety_batches,
            };
            put_item(kv, district, day, &f.tx_id, against)?;
            let by = Item::LieuCodingBy {
                tx_id: tx,
                at_ms: f.at_ms,
                coder: f.coder.clone(),
                upstream: subject.clone(),
                upstream_district: district.clone(),
                beta,
                batches: f.batches,
                key_variety_batches: f.key_variety_batches,
            };
            put_item(kv, &f.coder_district, day, &f.tx_id, by)?;
        }
        UpstreamFact::Unregistered {
            region,
            in_region_table,
        } => {
            // Outside the province (入浙首站) is neither candidate.
            if *in_region_table {
                let (counter, item) = if *region == f.coder_district {
                    let item = Item::GCandidate {
                        tx_id: tx,
                        at_ms: f.at_ms,
                        coder: f.coder.clone(),
                        region: region.clone(),
                        batches: f.batches,
                    };
                    (Counter::GCandidates, item)
                } else {
                    let item = Item::HCandidate {
                        tx_id: tx,
                        at_ms: f.at_ms,
                        coder: f.coder.clone(),
                        region: region.clone(),
                        batches: f.batches,
                    };
                    (Counter::HCandidates, item)
                };
                d.add(day, &f.coder_district, counter, f.batches)?;
                put_item(kv, &f.coder_district, day, &f.tx_id, item)?;
            }
        }
    }
    d.apply(kv)
}

/// A shipment: its lines fall due for receipt by the receiver's district.
pub fn on_shipped(kv: &mut impl KvWrite, params: &ModelParams, f: &ShippedFact) -> Result<()> {
    check_part(f.key_variety_lines, f.lines, "shipment")?;
    let tz = params.time_zone()?;
    let due_day = deadline_day(&tz, f.at_ms, params.receipt_window_days)?;
    let key = item_key(&f.receiver_district, due_day, ITEM_RECEIPT, &f.tx_id)?;
    if kv.get(Space::Index, &key)?.is_some() {
        return Err(ScoreError::DuplicateItem(hex(&f.tx_id)));
    }
    let item = Item::Receipt {
        shipment_tx_id: hex(&f.tx_id),
        shipped_at_ms: f.at_ms,
        deadline_ms: day_start_in(&tz, due_day)?,
        shipper: f.shipper.clone(),
        shipper_district: f.shipper_district.clone(),
        receiver: f.receiver.clone(),
        lines: f.lines,
        key_variety_lines: f.key_variety_lines,
        answer: None,
    };
    kv.put(Space::Index, key, encode_item(&item)?);
    let mut d = Deltas::default();
    d.add(due_day, &f.receiver_district, Counter::ReceiptDue, f.lines)?;
    d.add(
        due_day,
        &f.receiver_district,
        Counter::KvReceiptDue,
        f.key_variety_lines,
    )?;
    d.apply(kv)
}

/// A receipt confirmation or rejection. The line counts come from the shipment's own
/// due item, so an answer can never un-balance due against on-time.
pub fn on_answered(kv: &mut impl KvWrite, params: &ModelParams, f: &AnsweredFact) -> Result<()> {
    let tz = params.time_zone()?;
    let due_day = deadline_day(&tz, f.shipped_at_ms, params.receipt_window_days)?;
    let key = item_key(
        &f.receiver_district,
        due_day,
        ITEM_RECEIPT,
        &f.shipment_tx_id,
    )?;
    let stored = kv
        .get(Space::Index, &key)?
        .ok_or_else(|| ScoreError::UnknownShipment(hex(&f.shipment_tx_id)))?;
    let Item::Receipt {
        shipment_tx_id,
        shipped_at_ms,
        deadline_ms,
        shipper,
        shipper_district,
        receiver,
        lines,
        key_variety_lines,
        answer,
    } = decode_item(&key, &stored)?
    else {
        return Err(keys::corrupt_key(&key, "not a receipt item"));
    };
    if answer.is_some() {
        return Err(ScoreError::AlreadyAnswered(shipment_tx_id));
    }
    let on_time = f.at_ms < deadline_ms;
    let mut d = Deltas::default();
    if on_time {
        d.add(due_day, &f.receiver_district, Counter::ReceiptOnTime, lines)?;
        d.add(
            due_day,
            &f.receiver_district,
            Counter::KvReceiptOnTime,
            key_variety_lines,
        )?;
    }
    if f.rejected {
        let day = local_day_in(&tz, f.at_ms)?;
        d.add(day, &shipper_district, Counter::Rejected, lines)?;
        d.add(
            day,
            &shipper_district,
            Counter::KvRejected,
            key_variety_lines,
        )?;
        let rejection = Item::Rejection {
            tx_id: hex(&f.tx_id),
            shipment_tx_id: shipment_tx_id.clone(),
            at_ms: f.at_ms,
            receiver: receiver.clone(),
            receiver_district: f.receiver_district.clone(),
            lines,
            key_variety_lines,
        };
        put_item(kv, &shipper_district, day, &f.tx_id, rejection)?;
    }
    let answered = Item::Receipt {
        shipment_tx_id,
        shipped_at_ms,
        deadline_ms,
        shipper,
        shipper_district,
        receiver,
        lines,
        key_variety_lines,
        answer: Some(Answer {
            tx_id: hex(&f.tx_id),
            at_ms: f.at_ms,
            rejected: f.rejected,
            on_time,
        }),
    };
    kv.put(Space::Index, key, encode_item(&answered)?);
    d.apply(kv)
}

/// An inspection finding, notified at `at_ms`.
pub fn on_finding(kv: &mut impl KvWrite, params: &ModelParams, f: &FindingFact) -> Result<()> {
    let tz = params.time_zone()?;
    let mut d = Deltas::default();
    match f.kind {
        FindingKind::Uncoded => {
            let due_day = deadline_day(&tz, f.at_ms, params.rectification_window_days)?;
            let key = item_key(&f.district, due_day, ITEM_UNCODED, &f.tx_id)?;
            if kv.get(Space::Index, &key)?.is_some() {
                return Err(ScoreError::DuplicateItem(hex(&f.tx_id)));
            }
            let item = Item::UncodedFinding {
                finding_tx_id: hex(&f.tx_id),
                at_ms: f.at_ms,
                deadline_ms: day_start_in(&tz, due_day)?,
                subject: f.subject.clone(),
                batches: f.batches,
                rectification: None,
            };
            kv.put(Space::Index, key, encode_item(&item)?);
            d.add(due_day, &f.district, Counter::UncodedDue, f.batches)?;
        }
        FindingKind::OffChain => {
            let day = local_day_in(&tz, f.at_ms)?;
            let item = Item::OffChainFinding {
                tx_id: hex(&f.tx_id),
                at_ms: f.at_ms,
                subject: f.subject.clone(),
                batches: f.batches,
            };
            if kv
                .get(
                    Space::Index,
                    &item_key(&f.district, day, item.code(), &f.tx_id)?,
                )?
                .is_some()
            {
                return Err(ScoreError::DuplicateItem(hex(&f.tx_id)));
            }
            put_item(kv, &f.district, day, &f.tx_id, item)?;
            d.add(day, &f.district, Counter::OffChain, f.batches)?;
        }
        FindingKind::Other => {}
    }
    d.apply(kv)
}

/// A rectification (整改) of an `uncoded` finding.
pub fn on_rectified(kv: &mut impl KvWrite, params: &ModelParams, f: &RectifiedFact) -> Result<()> {
    let tz = params.time_zone()?;
    let due_day = deadline_day(&tz, f.finding_at_ms, params.rectification_window_days)?;
    let key = item_key(&f.district, due_day, ITEM_UNCODED, &f.finding_tx_id)?;
    let stored = kv
        .get(Space::Index, &key)?
        .ok_or_else(|| ScoreError::UnknownFinding(hex(&f.finding_tx_id)))?;
    let Item::UncodedFinding {
        finding_tx_id,
        at_ms,
        deadline_ms,
        subject,
        batches,
        rectification,
    } = decode_item(&key, &stored)?
    else {
        return Err(keys::corrupt_key(&key, "not a finding item"));
    };
    if rectification.is_some() {
        return Err(ScoreError::AlreadyRectified(finding_tx_id));
    }
    let in_time = f.at_ms < deadline_ms;
    let mut d = Deltas::default();
    if in_time {
        d.add(due_day, &f.district, Counter::UncodedInTime, batches)?;
    }
    let item = Item::UncodedFinding {
        finding_tx_id,
        at_ms,
        deadline_ms,
        subject,
        batches,
        rectification: Some(Rectification {
            tx_id: hex(&f.tx_id),
            at_ms: f.at_ms,
            in_time,
        }),
    };
    kv.put(Space::Index, key, encode_item(&item)?);
    d.apply(kv)
}

/// Discretionary points (酌情扣分 / 加分) recorded by a regulator.
pub fn on_adjustment(
    kv: &mut impl KvWrite,
    params: &ModelParams,
    f: &AdjustmentFact,
) -> Result<()> {
    let tz = params.time_zone()?;
    let day = local_day_in(&tz, f.at_ms)?;
    let counter = match f.term {
        Term::G => Counter::GPoints,
        Term::H => Counter::HPoints,
    };
    let item = Item::Adjustment {
        tx_id: hex(&f.tx_id),
        at_ms: f.at_ms,
        term: f.term,
        points_hundredths: f.points_hundredths,
    };
    if kv
        .get(
            Space::Index,
            &item_key(&f.district, day, item.code(), &f.tx_id)?,
        )?
        .is_some()
    {
        return Err(ScoreError::DuplicateItem(hex(&f.tx_id)));
    }
    put_item(kv, &f.district, day, &f.tx_id, item)?;
    let mut d = Deltas::default();
    d.add_signed(day, &f.district, counter, f.points_hundredths)?;
    d.apply(kv)
}

/// Any business record by a subject: marks the subject active that day, and for a market
/// operator counts it once among its market's active operators of the day.
pub fn on_activity(kv: &mut impl KvWrite, params: &ModelParams, f: &ActivityFact) -> Result<()> {
    let tz = params.time_zone()?;
    let day = local_day_in(&tz, f.at_ms)?;
    keys::check_id("district", &f.district)?;
    let key = KeyBuf::new(keys::TAG_ACTIVE)
        .id("subject", &f.subject)?
        .day(day)
        .into_vec();
    if kv.get(Space::Index, &key)?.is_some() {
        return Ok(());
    }
    kv.put(Space::Index, key, Vec::new());
    if let Some(market) = &f.market {
        let key = KeyBuf::new(keys::TAG_MARKET_ACTIVE)
            .id("market", market)?
            .day(day)
            .into_vec();
        let n = match kv.get(Space::Index, &key)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| keys::corrupt_key(&key, "bad count"))?,
            ),
            None => 0,
        };
        let n = n
            .checked_add(1)
            .ok_or(ScoreError::Overflow("market activity"))?;
        kv.put(Space::Index, key, n.to_be_bytes().to_vec());
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CatalogueChange {
    at_ms: i64,
    is_key: bool,
}

/// Key-subject catalogue membership of a subject changes at `at_ms`.
pub fn on_key_subject(
    kv: &mut impl KvWrite,
    subject: &str,
    district: &str,
    is_key: bool,
    at_ms: i64,
) -> Result<()> {
    let key = KeyBuf::new(keys::TAG_KEY_SUBJECTS)
        .id("district", district)?
        .id("subject", subject)?
        .into_vec();
    let mut history: Vec<CatalogueChange> = match kv.get(Space::Index, &key)? {
        Some(v) => {
            serde_json::from_slice(&v).map_err(|e| keys::corrupt_key(&key, &e.to_string()))?
        }
        None => Vec::new(),
    };
    if history.last().is_some_and(|c| c.at_ms > at_ms) {
        return Err(ScoreError::Fact(
            "catalogue change earlier than the previous one".to_string(),
        ));
    }
    history.push(CatalogueChange { at_ms, is_key });
    let value = serde_json::to_vec(&history).map_err(|e| ScoreError::Fact(e.to_string()))?;
    kv.put(Space::Index, key, value);
    Ok(())
}

/// A stall operator registered at a market; counted from its registration day on.
pub fn on_operator_registered(
    kv: &mut impl KvWrite,
    params: &ModelParams,
    f: &OperatorFact,
) -> Result<()> {
    let tz = params.time_zone()?;
    let day = local_day_in(&tz, f.at_ms)?;
    let market_key = KeyBuf::new(keys::TAG_MARKETS)
        .id("district", &f.market_district)?
        .id("market", &f.market)?
        .into_vec();
    let kind = serde_json::to_vec(&f.market_kind).map_err(|e| ScoreError::Fact(e.to_string()))?;
    kv.put(Space::Index, market_key, kind);
    let key = KeyBuf::new(keys::TAG_OPERATORS)
        .id("market", &f.market)?
        .id("operator", &f.operator)?
        .into_vec();
    // A repeated registration keeps the first day.
    if kv.get(Space::Index, &key)?.is_none() {
        kv.put(Space::Index, key, keys::day_bytes(day).to_vec());
    }
    Ok(())
}
