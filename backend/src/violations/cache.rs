//! A cache of rendered list pages, keyed by the sync sequence the request saw.
//!
//! Every change to a report stamps the sequence, so a page rendered at sequence S is exact for
//! every request that authenticated at S (the list query runs after authentication, so a cached
//! page is never older than its key). Entries of older sequences are dropped as soon as a newer
//! one is seen. The key includes the reader's scope and redaction, so no one gets a page meant for
//! another. Safe with several instances: the sequence comes from the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

/// A rendered page and the Wpg records on it (their read must still be logged per request).
pub struct CachedPage {
    pub body: Bytes,
    pub wpg_ids: crate::audit::ReadIds,
}

const MAX_ENTRIES: usize = 512;

#[derive(Default)]
pub struct PageCache {
    inner: Mutex<(i64, HashMap<String, Arc<CachedPage>>)>,
}

impl PageCache {
    pub fn get(&self, seq: i64, key: &str) -> Option<Arc<CachedPage>> {
        let guard = self.inner.lock().ok()?;
        if guard.0 != seq {
            return None;
        }
        guard.1.get(key).cloned()
    }

    pub fn put(&self, seq: i64, key: String, page: Arc<CachedPage>) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        if seq < guard.0 {
            return;
        }
        if seq > guard.0 || guard.1.len() >= MAX_ENTRIES {
            guard.1.clear();
            guard.0 = seq;
        }
        guard.1.insert(key, page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(s: &str) -> Arc<CachedPage> {
        Arc::new(CachedPage {
            body: Bytes::from(s.to_string()),
            wpg_ids: Default::default(),
        })
    }

    #[test]
    fn a_newer_sequence_drops_older_pages() {
        let c = PageCache::default();
        c.put(5, "a".into(), page("five"));
        assert_eq!(c.get(5, "a").unwrap().body, "five");
        assert!(c.get(6, "a").is_none());
        c.put(6, "b".into(), page("six"));
        assert!(c.get(5, "a").is_none());
        // A late writer from an older sequence does not overwrite newer entries.
        c.put(5, "b".into(), page("stale"));
        assert_eq!(c.get(6, "b").unwrap().body, "six");
    }
}
