//! Queries: province-wide scores, a district's drill-down, upcoming deadlines.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::keys::{self, Counter, Counters, KeyBuf, KeyReader, COUNTERS_LEN};
use super::*;

/// A value in hundredths, shown as a JSON number with at most 2 decimals (display only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Hundredths(pub i64);

impl Serialize for Hundredths {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The shortest f64 text of n/100 is n/100's own decimal text.
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl<'de> Deserialize<'de> for Hundredths {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        parse_hundredths(&n.to_string())
            .map(Hundredths)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a decimal with at most 2 decimals (`"0.5"`, `"-3"`, `"1.25"`) exactly.
pub fn parse_hundredths(s: &str) -> std::result::Result<i64, String> {
    let err = || format!("{s:?} is not a number with at most 2 decimals");
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    let int: i64 = int.parse().map_err(|_| err())?;
    let frac_val: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| err())? * if frac.len() == 1 { 10 } else { 1 }
    };
    let v = int
        .checked_mul(100)
        .and_then(|v| v.checked_add(frac_val))
        .ok_or_else(err)?;
    Ok(if neg { -v } else { v })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreReport {
    pub model: String,
    pub period: Period,
    /// The running-score cut (latest block time), or absent for a period evaluated as ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
    pub districts: BTreeMap<String, DistrictScore>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictScore {
    #[serde(rename = "N")]
    pub n: u64,
    pub rank: u32,
    pub f: u32,
    pub coding: CodingTerms,
    pub scanning: ScanningTerms,
    pub key_subject_coverage: KeySubjectCoverage,
    pub key_variety_coverage: KeyVarietyCoverage,
    pub market_daily_activity: Vec<MarketActivity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodingTerms {
    pub a: u64,
    /// Weighted: batches of `uncoded` findings not rectified in time × the multiplier.
    pub b: u64,
    pub beta_c: u64,
    pub g: Hundredths,
    pub h: Hundredths,
    pub g_candidates: u64,
    pub h_candidates: u64,
    pub rate: Option<Hundredths>,
    /// The exact rate in percent, `num/den` (or an integer).
    pub rate_exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanningTerms {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub rate: Option<Hundredths>,
    pub rate_exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySubjectCoverage {
    /// Catalogued key subjects with a business record in the period.
    pub active: u64,
    pub catalogued: u64,
    pub rate: Option<Hundredths>,
    pub rate_exact: Option<String>,
    pub target: u32,
    pub meets_target: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVarietyCoverage {
    /// Key-variety batches coded (N over key varieties).
    #[serde(rename = "N")]
    pub n: u64,
    pub coding_rate: Option<Hundredths>,
    pub scanning_rate: Option<Hundredths>,
    pub rate: Option<Hundredths>,
    pub rate_exact: Option<String>,
    pub target: u32,
    pub meets_target: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketActivity {
    pub market: String,
    pub market_kind: MarketKind,
    /// Operators registered by the end of the evaluated days.
    pub operators: u64,
    /// Days with at least one registered operator, over which the mean is taken.
    pub days: u64,
    pub rate: Option<Hundredths>,
    pub rate_exact: Option<String>,
    pub target: u32,
    pub meets_target: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A district's score with the items behind its terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictDetail {
    pub model: String,
    pub period: Period,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
    pub district: String,
    pub score: DistrictScore,
    /// Items that count in the period, by day then kind: every lieu coding, g/h candidate,
    /// late or unanswered receipt, rejection, finding not rectified in time, off-chain
    /// finding and adjustment.
    pub items: Vec<DatedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedItem {
    /// The natural day the item counts on (a deadline's day for receipts and `uncoded`).
    pub day: String,
    #[serde(flatten)]
    pub item: Item,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    Receipt,
    Rectification,
}

/// An open obligation of a subject that falls due soon.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deadline {
    pub subject: String,
    pub due_ms: i64,
    pub kind: DeadlineKind,
    /// The shipment or finding.
    pub tx_id: String,
    /// Lines or batches at stake.
    pub count: u64,
}

/// The days of `period` that count: all of them, or up to the local date of `as_of_ms`.
/// `None` if no day counts yet.
fn counted_days(
    tz: &TimeZone,
    period: &Period,
    as_of_ms: Option<i64>,
) -> Result<Option<(i32, i32)>> {
    let (from, mut to) = period.day_range();
    if let Some(t) = as_of_ms {
        to = to.min(local_day_in(tz, t)?);
    }
    Ok((from <= to).then_some((from, to)))
}

fn check_region_table(region_table: &[String]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for d in region_table {
        keys::check_id("district", d)?;
        if !seen.insert(d.as_str()) {
            return Err(ScoreError::RegionTable(format!(
                "district {d} listed twice"
            )));
        }
    }
    Ok(())
}

/// Calls `f` with (day, district, counters) for every counter record of the
/// days `from..=to`, in key order: one range scan, read in pages.
fn for_each_counter_record(
    kv: &impl KvRead,
    from: i32,
    to: i32,
    mut f: impl FnMut(i32, String, Counters) -> Result<()>,
) -> Result<()> {
    let start = KeyBuf::new(keys::TAG_COUNTERS).day(from).into_vec();
    let end = KeyBuf::new(keys::TAG_COUNTERS)
        .day(to.saturating_add(1))
        .into_vec();
    let mut cursor = start;
    loop {
        let page = kv.scan(Space::Index, &cursor, &end, keys::SCAN_PAGE_ROWS)?;
        for (k, v) in &page {
            let mut r = KeyReader::new(k)?;
            let day = r.day()?;
            let district = r.id()?;
            f(day, district, keys::decode_counters(k, v)?)?;
        }
        match page.last() {
            Some((last, _)) if page.len() == keys::SCAN_PAGE_ROWS => {
                cursor = last.clone();
                cursor.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Sums the counter records of the days, per district.
fn sum_counters(
    kv: &impl KvRead,
    days: Option<(i32, i32)>,
) -> Result<BTreeMap<String, [i128; COUNTERS_LEN]>> {
    let mut sums: BTreeMap<String, [i128; COUNTERS_LEN]> = BTreeMap::new();
    let Some((from, to)) = days else {
        return Ok(sums);
    };
    for_each_counter_record(kv, from, to, |_day, district, c| {
        let sum = sums.entry(district).or_insert([0; COUNTERS_LEN]);
        for (s, x) in sum.iter_mut().zip(c.iter()) {
            *s += i128::from(*x);
        }
        Ok(())
    })?;
    Ok(sums)
}

/// One natural day's activity (the dashboard's daily chart): batches
/// first-station coded, shipment lines whose receipt fell due that day (the
/// model files receipts under their deadline day) and of those the lines
/// answered on time, and lines rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyCounts {
    /// Day number (days since 1970-01-01 in the model's time zone).
    pub day: i32,
    pub coded: i64,
    pub receipts_due: i64,
    pub receipts_on_time: i64,
    pub rejected: i64,
}

/// Days a [`daily_counters`] call may span (a scoring period's limit): its
/// answer has one entry a day.
pub const DAILY_DAYS_MAX: i32 = PERIOD_DAYS_MAX;

/// Per day from `first` to `last` (inclusive), the day's counts over every
/// district, or over `district` alone: one range scan of the counter
/// records, read in pages.
pub fn daily_counters(
    kv: &impl KvRead,
    first: i32,
    last: i32,
    district: Option<&str>,
) -> Result<Vec<DailyCounts>> {
    if last < first || last - first >= DAILY_DAYS_MAX {
        return Err(ScoreError::Fact(format!(
            "a daily series spans 1-{DAILY_DAYS_MAX} days"
        )));
    }
    let mut days: Vec<DailyCounts> = (first..=last)
        .map(|day| DailyCounts {
            day,
            coded: 0,
            receipts_due: 0,
            receipts_on_time: 0,
            rejected: 0,
        })
        .collect();
    for_each_counter_record(kv, first, last, |day, row_district, c| {
        if district.is_some_and(|want| want != row_district) {
            return Ok(());
        }
        let Some(slot) = usize::try_from(day - first)
            .ok()
            .and_then(|i| days.get_mut(i))
        else {
            return Ok(());
        };
        let add = |a: i64, b: i64| a.checked_add(b).ok_or(ScoreError::Overflow("daily count"));
        slot.coded = add(slot.coded, c[Counter::Coded as usize])?;
        slot.receipts_due = add(slot.receipts_due, c[Counter::ReceiptDue as usize])?;
        slot.receipts_on_time = add(slot.receipts_on_time, c[Counter::ReceiptOnTime as usize])?;
        slot.rejected = add(slot.rejected, c[Counter::Rejected as usize])?;
        Ok(())
    })?;
    Ok(days)
}

fn to_u64(v: i128) -> Result<u64> {
    u64::try_from(v).map_err(|_| ScoreError::Overflow("term out of range"))
}

fn to_i64(v: i128) -> Result<i64> {
    i64::try_from(v).map_err(|_| ScoreError::Overflow("term out of range"))
}

fn shown(r: &Ratio) -> Result<(Option<Hundredths>, Option<String>)> {
    Ok((Some(Hundredths(r.round_hundredths()?)), Some(r.to_string())))
}

/// `(1 - deduction / n) * 100` as an exact ratio.
fn base_rate(n: i128, deduction: i128) -> Result<Ratio> {
    let num = n
        .checked_sub(deduction)
        .and_then(|x| x.checked_mul(100))
        .ok_or(ScoreError::Overflow("rate"))?;
    Ratio::new(num, n)
}

/// Terms and rates of one district from its summed counters (rank and f given).
fn district_terms(
    params: &ModelParams,
    s: &[i128; COUNTERS_LEN],
    f: u32,
) -> Result<(CodingTerms, ScanningTerms, Option<Ratio>, Option<Ratio>)> {
    let get = |c: Counter| s[c as usize];
    let n = get(Counter::Coded);
    let w = i128::from(params.b_weight);
    let coding_b = (get(Counter::UncodedDue) - get(Counter::UncodedInTime))
        * i128::from(params.uncoded_unrectified_multiplier);
    let (coding_a, beta_c, g, h) = (
        get(Counter::LieuAgainst),
        get(Counter::BetaC),
        get(Counter::GPoints),
        get(Counter::HPoints),
    );
    let scan_a = get(Counter::ReceiptDue) - get(Counter::ReceiptOnTime);
    let (scan_b, scan_c) = (get(Counter::OffChain), get(Counter::Rejected));
    let reason =
        (n == 0).then(|| "N = 0: no batches were first-station coded in the period".to_string());
    let (coding_rate, scanning_rate) = if n == 0 {
        (None, None)
    } else {
        let bonus = Ratio::new(h - g + 100 * i128::from(f), 100)?;
        let c = base_rate(n, coding_a + w * coding_b - beta_c)?.checked_add(bonus)?;
        let s =
            base_rate(n, scan_a + w * scan_b + scan_c)?.checked_add(Ratio::int(i128::from(f)))?;
        (Some(c), Some(s))
    };
    let (c_rate, c_exact) = coding_rate
        .as_ref()
        .map(shown)
        .transpose()?
        .unwrap_or((None, None));
    let (s_rate, s_exact) = scanning_rate
        .as_ref()
        .map(shown)
        .transpose()?
        .unwrap_or((None, None));
    let coding = CodingTerms {
        a: to_u64(coding_a)?,
        b: to_u64(coding_b)?,
        beta_c: to_u64(beta_c)?,
        g: Hundredths(to_i64(g)?),
        h: Hundredths(to_i64(h)?),
        g_candidates: to_u64(get(Counter::GCandidates))?,
        h_candidates: to_u64(get(Counter::HCandidates))?,
        rate: c_rate,
        rate_exact: c_exact,
        reason: reason.clone(),
    };
    let scanning = ScanningTerms {
        a: to_u64(scan_a)?,
        b: to_u64(scan_b)?,
        c: to_u64(scan_c)?,
        rate: s_rate,
        rate_exact: s_exact,
        reason,
    };
    Ok((coding, scanning, coding_rate, scanning_rate))
}

/// Key-variety coverage; see the module doc for which terms apply.
fn key_variety_coverage(
    params: &ModelParams,
    s: &[i128; COUNTERS_LEN],
) -> Result<KeyVarietyCoverage> {
    let get = |c: Counter| s[c as usize];
    let n = get(Counter::KvCoded);
    let target = params.key_variety_coverage_target_percent;
    if n == 0 {
        return Ok(KeyVarietyCoverage {
            n: 0,
            coding_rate: None,
            scanning_rate: None,
            rate: None,
            rate_exact: None,
            target,
            meets_target: None,
            reason: Some("no key-variety batches were coded in the period".to_string()),
        });
    }
    let coding = base_rate(n, get(Counter::KvLieuAgainst) - get(Counter::KvBetaC))?;
    let scanning = base_rate(
        n,
        get(Counter::KvReceiptDue) - get(Counter::KvReceiptOnTime) + get(Counter::KvRejected),
    )?;
    let wc = Ratio::new(i128::from(params.key_variety_coding_weight_permille), 1000)?;
    let ws = Ratio::new(
        i128::from(params.key_variety_scanning_weight_permille),
        1000,
    )?;
    let rate = wc
        .checked_mul(coding)?
        .checked_add(ws.checked_mul(scanning)?)?;
    let (r, exact) = shown(&rate)?;
    Ok(KeyVarietyCoverage {
        n: to_u64(n)?,
        coding_rate: Some(Hundredths(coding.round_hundredths()?)),
        scanning_rate: Some(Hundredths(scanning.round_hundredths()?)),
        rate: r,
        rate_exact: exact,
        target,
        meets_target: Some(rate.ge(&Ratio::int(i128::from(target)))?),
        reason: None,
    })
}

/// Key-subject coverage of one district: catalogue at `eval_ms`, activity in `days`.
fn key_subject_coverage(
    kv: &impl KvRead,
    params: &ModelParams,
    district: &str,
    days: Option<(i32, i32)>,
    eval_ms: i64,
) -> Result<KeySubjectCoverage> {
    let prefix = KeyBuf::new(keys::TAG_KEY_SUBJECTS)
        .id("district", district)?
        .into_vec();
    let end = crate::kv::prefix_end(&prefix)
        .ok_or_else(|| keys::corrupt_key(&prefix, "no prefix end"))?;
    let rows = keys::scan_all(kv, &prefix, &end, SECONDARY_ROWS_MAX)?;
    let (mut catalogued, mut active) = (0u64, 0u64);
    for (k, v) in rows {
        let history: Vec<CatalogueChange> =
            serde_json::from_slice(&v).map_err(|e| keys::corrupt_key(&k, &e.to_string()))?;
        let is_key = history
            .iter()
            .rev()
            .find(|c| c.at_ms <= eval_ms)
            .is_some_and(|c| c.is_key);
        if !is_key {
            continue;
        }
        catalogued += 1;
        let mut r = KeyReader::new(&k)?;
        let _district = r.id()?;
        let subject = r.id()?;
        if let Some((from, to)) = days {
            let a = KeyBuf::new(keys::TAG_ACTIVE).id("subject", &subject)?;
            let from_key = a.day(from).into_vec();
            let to_key = KeyBuf::new(keys::TAG_ACTIVE)
                .id("subject", &subject)?
                .day(to.saturating_add(1))
                .into_vec();
            if !kv.scan(Space::Index, &from_key, &to_key, 1)?.is_empty() {
                active += 1;
            }
        }
    }
    let target = params.key_subject_coverage_target_percent;
    if catalogued == 0 {
        return Ok(KeySubjectCoverage {
            active,
            catalogued,
            rate: None,
            rate_exact: None,
            target,
            meets_target: None,
            reason: Some("no catalogued key subjects in the district".to_string()),
        });
    }
    let rate = Ratio::new(i128::from(active) * 100, i128::from(catalogued))?;
    let (r, exact) = shown(&rate)?;
    Ok(KeySubjectCoverage {
        active,
        catalogued,
        rate: r,
        rate_exact: exact,
        target,
        meets_target: Some(rate.ge(&Ratio::int(i128::from(target)))?),
        reason: None,
    })
}

// Long because, for each market, MODEL.md's market-activity terms join
// three index families (markets, operators, daily market activity).
/// Daily activity of each market of the district over `days`.
fn market_activity(
    kv: &impl KvRead,
    params: &ModelParams,
    district: &str,
    days: Option<(i32, i32)>,
) -> Result<Vec<MarketActivity>> {
    let prefix = KeyBuf::new(keys::TAG_MARKETS)
        .id("district", district)?
        .into_vec();
    let end = crate::kv::prefix_end(&prefix)
        .ok_or_else(|| keys::corrupt_key(&prefix, "no prefix end"))?;
    let mut out = Vec::new();
    for (k, v) in keys::scan_all(kv, &prefix, &end, SECONDARY_ROWS_MAX)? {
        let kind: MarketKind =
            serde_json::from_slice(&v).map_err(|e| keys::corrupt_key(&k, &e.to_string()))?;
        let mut r = KeyReader::new(&k)?;
        let _district = r.id()?;
        let market = r.id()?;
        let target = match kind {
            MarketKind::Wholesale => params.wholesale_market_activity_target_percent,
            MarketKind::Retail => params.retail_market_activity_target_percent,
        };
        // Registration days of the market's operators.
        let op_prefix = KeyBuf::new(keys::TAG_OPERATORS)
            .id("market", &market)?
            .into_vec();
        let op_end = crate::kv::prefix_end(&op_prefix)
            .ok_or_else(|| keys::corrupt_key(&op_prefix, "no prefix end"))?;
        let mut reg_days: Vec<i32> = Vec::new();
        for (ok, ov) in keys::scan_all(kv, &op_prefix, &op_end, SECONDARY_ROWS_MAX)? {
            let b: [u8; 4] = ov
                .as_slice()
                .try_into()
                .map_err(|_| keys::corrupt_key(&ok, "bad day"))?;
            reg_days.push(keys::day_from_bytes(b));
        }
        reg_days.sort_unstable();
        let mut m = MarketActivity {
            market,
            market_kind: kind,
            operators: 0,
            days: 0,
            rate: None,
            rate_exact: None,
            target,
            meets_target: None,
            reason: None,
        };
        let Some((from, to)) = days else {
            m.reason = Some("no day of the period has begun".to_string());
            out.push(m);
            continue;
        };
        m.operators = reg_days.iter().filter(|d| **d <= to).count() as u64;
        let a_from = KeyBuf::new(keys::TAG_MARKET_ACTIVE)
            .id("market", &m.market)?
            .day(from)
            .into_vec();
        let a_to = KeyBuf::new(keys::TAG_MARKET_ACTIVE)
            .id("market", &m.market)?
            .day(to.saturating_add(1))
            .into_vec();
        let mut active: BTreeMap<i32, u64> = BTreeMap::new();
        for (ak, av) in keys::scan_all(kv, &a_from, &a_to, SECONDARY_ROWS_MAX)? {
            let mut r = KeyReader::new(&ak)?;
            let _market = r.id()?;
            let day = r.day()?;
            let b: [u8; 8] = av
                .as_slice()
                .try_into()
                .map_err(|_| keys::corrupt_key(&ak, "bad count"))?;
            active.insert(day, u64::from_be_bytes(b));
        }
        // Mean of daily shares; days grouped by operator count keep the denominators few.
        let mut by_registered: BTreeMap<u64, u64> = BTreeMap::new();
        let mut counted = 0u64;
        for day in from..=to {
            let registered = reg_days.partition_point(|d| *d <= day) as u64;
            if registered == 0 {
                continue;
            }
            counted += 1;
            *by_registered.entry(registered).or_insert(0) += active.get(&day).copied().unwrap_or(0);
        }
        m.days = counted;
        if counted == 0 {
            m.reason = Some("no registered operators on any day of the period".to_string());
            out.push(m);
            continue;
        }
        let mut sum = Ratio::int(0);
        for (registered, active_sum) in by_registered {
            sum = sum.checked_add(Ratio::new(
                i128::from(active_sum) * 100,
                i128::from(registered),
            )?)?;
        }
        let rate = sum.checked_div(Ratio::int(i128::from(counted)))?;
        let (r, exact) = shown(&rate)?;
        m.rate = r;
        m.rate_exact = exact;
        m.meets_target = Some(rate.ge(&Ratio::int(i128::from(target)))?);
        out.push(m);
    }
    Ok(out)
}

/// The scores of every district of the region table for a period.
///
/// `as_of_ms = None` evaluates the period as ended (a replay); `Some(t)`, t the latest
/// block time, gives the running score: only items dated at or before t count.
pub fn scores(
    kv: &impl KvRead,
    params: &ModelParams,
    region_table: &[String],
    period: Period,
    as_of_ms: Option<i64>,
) -> Result<ScoreReport> {
    scores_inner(kv, params, region_table, period, as_of_ms, None)
}

/// `only`: compute the secondary metrics for this district only (a drill-down).
fn scores_inner(
    kv: &impl KvRead,
    params: &ModelParams,
    region_table: &[String],
    period: Period,
    as_of_ms: Option<i64>,
    only: Option<&str>,
) -> Result<ScoreReport> {
    check_region_table(region_table)?;
    let tz = params.time_zone()?;
    let days = counted_days(&tz, &period, as_of_ms)?;
    let sums = sum_counters(kv, days)?;
    let zero = [0i128; COUNTERS_LEN];
    // Competition ranking by N, descending, over the whole region table.
    let ns: Vec<i128> = region_table
        .iter()
        .map(|d| sums.get(d).unwrap_or(&zero)[Counter::Coded as usize])
        .collect();
    let period_end_ms = day_start_in(&tz, period.day_range().1 + 1)? - 1;
    let eval_ms = as_of_ms.map_or(period_end_ms, |t| t.min(period_end_ms));
    let mut districts = BTreeMap::new();
    for (district, n) in region_table.iter().zip(&ns) {
        let better = ns.iter().filter(|m| *m > n).count();
        let rank = u32::try_from(better + 1).map_err(|_| ScoreError::Overflow("rank"))?;
        let f = if *n > 0 { params.rank_bonus(rank) } else { 0 };
        let s = sums.get(district).unwrap_or(&zero);
        let (coding, scanning, _, _) = district_terms(params, s, f)?;
        let secondary = only.is_none_or(|o| o == district);
        let (ksc, markets) = if secondary {
            (
                key_subject_coverage(kv, params, district, days, eval_ms)?,
                market_activity(kv, params, district, days)?,
            )
        } else {
            (
                KeySubjectCoverage {
                    active: 0,
                    catalogued: 0,
                    rate: None,
                    rate_exact: None,
                    target: params.key_subject_coverage_target_percent,
                    meets_target: None,
                    reason: Some("not computed".to_string()),
                },
                Vec::new(),
            )
        };
        districts.insert(
            district.clone(),
            DistrictScore {
                n: to_u64(*n)?,
                rank,
                f,
                coding,
                scanning,
                key_subject_coverage: ksc,
                key_variety_coverage: key_variety_coverage(params, s)?,
                market_daily_activity: markets,
            },
        );
    }
    Ok(ScoreReport {
        model: params.model.clone(),
        period,
        as_of_ms,
        districts,
    })
}

/// Whether a stored item counts in the evaluated days (the items of a deadline day whose
/// answer came in time do not).
fn counts(item: &Item, as_of_ms: Option<i64>) -> bool {
    let before = |at: i64| as_of_ms.is_none_or(|t| at <= t);
    match item {
        Item::Receipt { answer, .. } => !answer.as_ref().is_some_and(|a| a.on_time),
        Item::UncodedFinding { rectification, .. } => {
            !rectification.as_ref().is_some_and(|r| r.in_time)
        }
        Item::LieuCodingAgainst { at_ms, .. }
        | Item::LieuCodingBy { at_ms, .. }
        | Item::GCandidate { at_ms, .. }
        | Item::HCandidate { at_ms, .. }
        | Item::Rejection { at_ms, .. }
        | Item::OffChainFinding { at_ms, .. }
        | Item::Adjustment { at_ms, .. } => before(*at_ms),
    }
}

/// One district's score and the items behind it: a range scan of its items in the period.
pub fn district_detail(
    kv: &impl KvRead,
    params: &ModelParams,
    region_table: &[String],
    district: &str,
    period: Period,
    as_of_ms: Option<i64>,
) -> Result<DistrictDetail> {
    if !region_table.iter().any(|d| d == district) {
        return Err(ScoreError::RegionTable(format!(
            "district {district} is not in the region table"
        )));
    }
    let mut report = scores_inner(kv, params, region_table, period, as_of_ms, Some(district))?;
    let score = report
        .districts
        .remove(district)
        .ok_or_else(|| ScoreError::RegionTable(district.to_string()))?;
    let tz = params.time_zone()?;
    let mut items = Vec::new();
    if let Some((from, to)) = counted_days(&tz, &period, as_of_ms)? {
        let start = KeyBuf::new(keys::TAG_ITEMS)
            .id("district", district)?
            .day(from)
            .into_vec();
        let end = KeyBuf::new(keys::TAG_ITEMS)
            .id("district", district)?
            .day(to.saturating_add(1))
            .into_vec();
        for (k, v) in keys::scan_all(kv, &start, &end, DETAIL_ROWS_MAX)? {
            let item = decode_item(&k, &v)?;
            if !counts(&item, as_of_ms) {
                continue;
            }
            let mut r = KeyReader::new(&k)?;
            let _district = r.id()?;
            let day = r.day()?;
            items.push(DatedItem {
                day: date_of_day(day)?.to_string(),
                item,
            });
        }
    }
    Ok(DistrictDetail {
        model: report.model,
        period: report.period,
        as_of_ms,
        district: district.to_string(),
        score,
        items,
    })
}

/// Open receipts and rectifications of the district's subjects falling due after `now_ms`
/// and within the next `days` natural days, ordered by subject then due time.
pub fn upcoming_deadlines(
    kv: &impl KvRead,
    params: &ModelParams,
    district: &str,
    now_ms: i64,
    days: u32,
) -> Result<Vec<Deadline>> {
    if days > LOOKAHEAD_DAYS_MAX {
        return Err(ScoreError::Period(format!(
            "look-ahead of {days} days is longer than {LOOKAHEAD_DAYS_MAX}"
        )));
    }
    let tz = params.time_zone()?;
    let today = local_day_in(&tz, now_ms)?;
    let start = KeyBuf::new(keys::TAG_ITEMS)
        .id("district", district)?
        .day(today)
        .into_vec();
    let end = KeyBuf::new(keys::TAG_ITEMS)
        .id("district", district)?
        .day(today + days as i32 + 1)
        .into_vec();
    let mut out = Vec::new();
    for (k, v) in keys::scan_all(kv, &start, &end, DETAIL_ROWS_MAX)? {
        let code = {
            let mut r = KeyReader::new(&k)?;
            let _district = r.id()?;
            let _day = r.day()?;
            r.byte()?
        };
        if code != ITEM_RECEIPT && code != ITEM_UNCODED {
            continue;
        }
        match decode_item(&k, &v)? {
            Item::Receipt {
                shipment_tx_id,
                deadline_ms,
                receiver,
                lines,
                answer: None,
                ..
            } if deadline_ms > now_ms => {
                out.push(Deadline {
                    subject: receiver,
                    due_ms: deadline_ms,
                    kind: DeadlineKind::Receipt,
                    tx_id: shipment_tx_id,
                    count: lines,
                });
            }
            Item::UncodedFinding {
                finding_tx_id,
                deadline_ms,
                subject,
                batches,
                rectification: None,
                ..
            } if deadline_ms > now_ms => {
                out.push(Deadline {
                    subject,
                    due_ms: deadline_ms,
                    kind: DeadlineKind::Rectification,
                    tx_id: finding_tx_id,
                    count: batches,
                });
            }
            _ => {}
        }
    }
    out.sort();
    Ok(out)
}
