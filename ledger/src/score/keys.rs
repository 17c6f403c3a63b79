//! Key layout of the score indices in [`Space::Index`], and the counter record codec.
//!
//! Every key starts with [`PREFIX`] and a one-byte tag. Days are natural days in the
//! model's time zone, numbered from 1970-01-01 and encoded as `i32` with the sign bit
//! flipped, big-endian, so byte order is day order. Strings (districts, subject ids)
//! are `u16` big-endian length then bytes, so a key can always be split unambiguously.
//!
//! | tag | key after tag | value |
//! | --- | --- | --- |
//! | `c` | day, district | counter record: version byte, then `i64` BE per [`Counter`] |
//! | `i` | district, day, item kind, tx id (32 bytes) | drill-down [`super::Item`] (JSON) |
//! | `k` | district, subject | key-subject catalogue history (JSON) |
//! | `a` | subject, day | empty: the subject had a business record that day |
//! | `m` | district, market | market kind (JSON) |
//! | `o` | market, operator | day the operator was registered at the market |
//! | `d` | market, day | `u64` BE: distinct registered operators active that day |

use super::{Result, ScoreError};
use crate::kv::{KvError, KvRead, KvWrite, Space};

/// Namespace of all score keys inside the shared index space.
pub const PREFIX: &[u8] = b"score/";
/// Longest district or subject id accepted into a key, in bytes.
pub const ID_BYTES_MAX: usize = 256;
/// Rows fetched per scan call; a period is read in pages of this size.
pub const SCAN_PAGE_ROWS: usize = 4096;

pub const TAG_COUNTERS: u8 = b'c';
pub const TAG_ITEMS: u8 = b'i';
pub const TAG_KEY_SUBJECTS: u8 = b'k';
pub const TAG_ACTIVE: u8 = b'a';
pub const TAG_MARKETS: u8 = b'm';
pub const TAG_OPERATORS: u8 = b'o';
pub const TAG_MARKET_ACTIVE: u8 = b'd';

/// Version byte of the counter record layout.
const COUNTERS_VERSION: u8 = 1;

/// Per (day, district) counters. Event-dated terms are filed under the event's day;
/// deadline-dated terms (`*Due`, `*OnTime`, `*InTime`) under the deadline's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// N: batches first-station coded by subjects of the district.
    Coded = 0,
    /// Coding a: batches coded by anyone in lieu of a registered upstream of the district.
    LieuAgainst,
    /// beta_c: β-weighted batches the district's subjects coded in lieu of a registered upstream.
    BetaC,
    GCandidates,
    HCandidates,
    /// Batches of `uncoded` findings whose rectification deadline is this day.
    UncodedDue,
    /// Of those, batches rectified before the deadline.
    UncodedInTime,
    /// Shipment lines addressed to the district whose receipt deadline is this day.
    ReceiptDue,
    /// Of those, lines answered (received or rejected) before the deadline.
    ReceiptOnTime,
    /// Scanning b: batches of `off_chain` findings.
    OffChain,
    /// Scanning c: lines shipped by the district and rejected.
    Rejected,
    /// g points recorded, in hundredths.
    GPoints,
    /// h points recorded, in hundredths.
    HPoints,
    /// The same terms over key-variety batches only (key-variety coverage).
    KvCoded,
    KvLieuAgainst,
    KvBetaC,
    KvReceiptDue,
    KvReceiptOnTime,
    KvRejected,
}

pub const COUNTERS_LEN: usize = Counter::KvRejected as usize + 1;

/// The counters of one (day, district) record.
pub type Counters = [i64; COUNTERS_LEN];

pub fn encode_counters(c: &Counters) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 * COUNTERS_LEN);
    out.push(COUNTERS_VERSION);
    for v in c {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

/// Decodes a counter record; a shorter record (an older layout) reads missing counters as 0.
pub fn decode_counters(key: &[u8], value: &[u8]) -> Result<Counters> {
    let corrupt = |reason: &str| {
        ScoreError::Kv(KvError::Corrupt {
            key: hex(key),
            reason: reason.to_string(),
        })
    };
    let (version, body) = value
        .split_first()
        .ok_or_else(|| corrupt("empty counter record"))?;
    if *version != COUNTERS_VERSION {
        return Err(corrupt("unknown counter record version"));
    }
    if body.len() % 8 != 0 || body.len() / 8 > COUNTERS_LEN {
        return Err(corrupt("counter record has a bad length"));
    }
    let mut out = [0i64; COUNTERS_LEN];
    for (slot, chunk) in out.iter_mut().zip(body.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *slot = i64::from_be_bytes(b);
    }
    Ok(out)
}

pub fn day_bytes(day: i32) -> [u8; 4] {
    ((day as u32) ^ 0x8000_0000).to_be_bytes()
}

pub fn day_from_bytes(b: [u8; 4]) -> i32 {
    (u32::from_be_bytes(b) ^ 0x8000_0000) as i32
}

/// A key under construction.
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    pub fn new(tag: u8) -> Self {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(PREFIX);
        v.push(tag);
        KeyBuf(v)
    }

    pub fn day(mut self, day: i32) -> Self {
        self.0.extend_from_slice(&day_bytes(day));
        self
    }

    pub fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// Appends a length-prefixed id; `what` names it in the error.
    pub fn id(mut self, what: &'static str, s: &str) -> Result<Self> {
        check_id(what, s)?;
        self.0.extend_from_slice(&(s.len() as u16).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        Ok(self)
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

pub fn check_id(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(ScoreError::InvalidId {
            what,
            value: s.to_string(),
            reason: "empty",
        });
    }
    if s.len() > ID_BYTES_MAX {
        return Err(ScoreError::InvalidId {
            what,
            value: s.chars().take(32).collect(),
            reason: "too long",
        });
    }
    Ok(())
}

/// Reads keys back: the inverse of [`KeyBuf`].
pub struct KeyReader<'a> {
    key: &'a [u8],
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    /// Starts after the prefix and the tag.
    pub fn new(key: &'a [u8]) -> Result<Self> {
        let start = PREFIX.len() + 1;
        let rest = key
            .get(start..)
            .ok_or_else(|| corrupt_key(key, "short key"))?;
        Ok(KeyReader { key, rest })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt_key(self.key, "truncated key"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn day(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(day_from_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn id(&mut self) -> Result<String> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt_key(self.key, "id is not UTF-8"))
    }
}

pub fn corrupt_key(key: &[u8], reason: &str) -> ScoreError {
    ScoreError::Kv(KvError::Corrupt {
        key: hex(key),
        reason: reason.to_string(),
    })
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 0xf) as usize] as char);
    }
    s
}

/// Every row with `from <= key < to`, read in pages so no single call is unbounded.
/// Stops with [`ScoreError::TooManyRows`] past `rows_max`.
pub fn scan_all(
    kv: &impl KvRead,
    from: &[u8],
    to: &[u8],
    rows_max: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut cursor = from.to_vec();
    loop {
        let page = kv.scan(Space::Index, &cursor, to, SCAN_PAGE_ROWS)?;
        let full = page.len() == SCAN_PAGE_ROWS;
        if let Some((last, _)) = page.last() {
            cursor = last.clone();
            // The smallest key after `last`.
            cursor.push(0);
        }
        out.extend(page);
        if out.len() > rows_max {
            return Err(ScoreError::TooManyRows(rows_max));
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Adds `deltas` to the stored counter records, one read-modify-write per record.
pub fn add_counters(
    kv: &mut impl KvWrite,
    deltas: &std::collections::BTreeMap<(i32, String), Counters>,
) -> Result<()> {
    for ((day, district), delta) in deltas {
        let key = KeyBuf::new(TAG_COUNTERS)
            .day(*day)
            .id("district", district)?
            .into_vec();
        let mut current = match kv.get(Space::Index, &key)? {
            Some(v) => decode_counters(&key, &v)?,
            None => [0; COUNTERS_LEN],
        };
        for (slot, d) in current.iter_mut().zip(delta.iter()) {
            *slot = slot
                .checked_add(*d)
                .ok_or(ScoreError::Overflow("counter"))?;
        }
        kv.put(Space::Index, key, encode_counters(&current));
    }
    Ok(())
}
