//! A counter per project that every write of its assets or movies bumps,
//! after the write is durable. Whoever memoises something derived from a
//! project's content (the server's token → content key) keeps the value it
//! read *before* deriving, and derives again once the counter has moved:
//! a write that races the derivation is never missed.
//!
//! The counters live in memory: after a restart every memo is empty too.
//! In a cluster, a node that changes a project announces it and the
//! others bump their counter too (`cluster`); when announcements may have
//! been missed, every counter moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The counter of one project, shared with its readers.
pub type Generation = Arc<AtomicU64>;

#[derive(Debug, Default)]
pub(crate) struct Generations(Mutex<HashMap<String, Generation>>);

impl Generations {
    pub(crate) fn of(&self, uid: &str) -> Generation {
        // The map stays consistent whatever panicked while holding it.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(uid.to_owned()).or_default().clone()
    }

    pub(crate) fn bump(&self, uid: &str) {
        self.of(uid).fetch_add(1, Ordering::Release);
    }

    pub(crate) fn bump_all(&self) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for generation in map.values() {
            generation.fetch_add(1, Ordering::Release);
        }
    }
}
