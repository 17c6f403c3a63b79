//! Transactions this node has taken and not yet seen decided, so
//! `GET /v1/tx/{id}` can answer `pending` for them. Bounded: past
//! [`IN_FLIGHT_MAX`] ids a submission is simply not tracked (its lookup says
//! unknown until it is decided), so a flood cannot grow the map.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Ids tracked at most (the admission queue holds far fewer).
pub const IN_FLIGHT_MAX: usize = 1 << 18;

/// The ids in flight, each with how many submissions of it are.
#[derive(Debug, Default)]
pub struct InFlight {
    ids: Mutex<BTreeMap<[u8; 32], u32>>,
}

/// Removes its id when dropped: when the outcome arrives, or the wait ends.
#[derive(Debug)]
pub struct InFlightGuard {
    set: Arc<InFlight>,
    id: [u8; 32],
}

impl InFlight {
    /// Marks `id` in flight until the guard drops; `None` when full.
    pub fn track(self: &Arc<Self>, id: [u8; 32]) -> Option<InFlightGuard> {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= IN_FLIGHT_MAX && !ids.contains_key(&id) {
            return None;
        }
        *ids.entry(id).or_insert(0) += 1;
        Some(InFlightGuard {
            set: self.clone(),
            id,
        })
    }

    pub fn contains(&self, id: &[u8; 32]) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.contains_key(id)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut ids = self.set.ids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = ids.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                ids.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_in_flight_while_any_of_its_submissions_is() {
        let set = Arc::new(InFlight::default());
        let a = set.track([1; 32]);
        let b = set.track([1; 32]);
        assert!(set.contains(&[1; 32]));
        drop(a);
        assert!(set.contains(&[1; 32]));
        drop(b);
        assert!(!set.contains(&[1; 32]));
    }
}
