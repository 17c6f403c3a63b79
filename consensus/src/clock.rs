//! The node's one wall clock. Time enters the ledger only through block
//! proposals (`time_ms`) and the cosigner's tolerance check; everything that
//! reads the clock reads it here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A clock before 1970 reads 0: the ledger
/// forces block times strictly increasing, so a clock that steps back cannot
/// break the chain.
/// In a simulation ([`crate::simulation`]) it reads simulated time.
pub fn now_ms() -> i64 {
    if let Some(t) = crate::simulation::now_ms() {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
