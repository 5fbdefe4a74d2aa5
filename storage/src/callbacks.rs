//! Callbacks not yet delivered (Shotstack's `callback` URLs, issue 17):
//! each is recorded before its first attempt and removed once it is
//! delivered or given up, so that a restart sends again whatever was
//! still on its way, its backoff going on from the attempts already made.
//!
//! Records are keyed by a random id (a UUID v4): two callbacks to the same
//! URL with the same body are two callbacks.

use serde::{Deserialize, Serialize};

use crate::{Collection, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCallback {
    pub id: String,
    /// The client's URL. Its query may hold a credential: whoever logs
    /// it logs its host only.
    pub url: String,
    /// The JSON body, as text: sent as it was built, whatever the version
    /// of the server that sends it.
    pub body: String,
    /// Attempts that failed so far, across restarts.
    pub attempts_made: u32,
    pub created_ms: u64,
    /// Unix milliseconds before which the next attempt is not made.
    pub next_attempt_ms: u64,
}

impl PendingCallback {
    /// A callback of `body` to `url` with no attempt made yet, due now.
    pub fn new(url: String, body: String, now_ms: u64) -> PendingCallback {
        PendingCallback {
            id: uuid::Uuid::new_v4().to_string(),
            url,
            body,
            attempts_made: 0,
            created_ms: now_ms,
            next_attempt_ms: now_ms,
        }
    }
}

impl Store {
    /// Records `callback` (replacing a record of its id) and makes it
    /// durable.
    pub async fn put_pending_callback(&self, callback: &PendingCallback) -> Result<()> {
        self.put_record(Collection::PendingCallbacks, &callback.id, callback)?;
        self.flush().await
    }

    /// Every callback still to send, oldest first.
    pub fn pending_callbacks(&self) -> Result<Vec<PendingCallback>> {
        let mut all: Vec<PendingCallback> = self.records(Collection::PendingCallbacks, "")?;
        all.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    pub fn pending_callback(&self, id: &str) -> Result<Option<PendingCallback>> {
        self.record(Collection::PendingCallbacks, id)
    }

    /// Records a failed attempt: `attempts_made` in all, the next not
    /// before `next_attempt_ms`. A callback removed meanwhile stays
    /// removed (`None`): this never brings one back.
    pub async fn update_pending_callback(
        &self,
        id: &str,
        attempts_made: u32,
        next_attempt_ms: u64,
    ) -> Result<Option<PendingCallback>> {
        loop {
            let Some(old) = self.repo.get(Collection::PendingCallbacks, id)? else {
                return Ok(None);
            };
            let mut callback: PendingCallback = serde_json::from_slice(&old)?;
            callback.attempts_made = attempts_made;
            callback.next_attempt_ms = next_attempt_ms;
            let new = serde_json::to_vec(&callback)?;
            if self.repo.compare_and_swap(
                Collection::PendingCallbacks,
                id,
                Some(&old),
                Some(new),
            )? {
                self.flush().await?;
                return Ok(Some(callback));
            }
        }
    }

    /// Forgets a callback delivered or given up; returns whether it was
    /// still recorded.
    pub async fn remove_pending_callback(&self, id: &str) -> Result<bool> {
        let removed = self.repo.remove(Collection::PendingCallbacks, id)?;
        self.flush().await?;
        Ok(removed.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{options, store};

    #[tokio::test]
    async fn a_pending_callback_survives_a_reopen_until_it_is_removed() {
        let (dir, store) = store();
        let first = PendingCallback::new(
            "https://example.com/hook?token=t".into(),
            r#"{"status":"done"}"#.into(),
            1_000,
        );
        let second = PendingCallback::new("https://example.com/b".into(), "{}".into(), 2_000);
        assert_ne!(first.id, second.id);
        store.put_pending_callback(&second).await.unwrap();
        store.put_pending_callback(&first).await.unwrap();
        assert_eq!(
            store.pending_callbacks().unwrap(),
            [first.clone(), second.clone()],
            "oldest first"
        );

        let updated = store
            .update_pending_callback(&first.id, 2, 5_000)
            .await
            .unwrap()
            .expect("still pending");
        assert_eq!((updated.attempts_made, updated.next_attempt_ms), (2, 5_000));
        assert_eq!(updated.body, first.body);
        drop(store);

        let store = Store::open(dir.path(), options()).unwrap();
        assert_eq!(
            store.pending_callback(&first.id).unwrap(),
            Some(updated),
            "the attempts count across a reopen"
        );
        assert!(store.remove_pending_callback(&first.id).await.unwrap());
        assert!(!store.remove_pending_callback(&first.id).await.unwrap());
        assert_eq!(
            store
                .update_pending_callback(&first.id, 3, 9_000)
                .await
                .unwrap(),
            None,
            "an update never brings a removed callback back"
        );
        assert_eq!(store.pending_callbacks().unwrap(), [second]);
    }
}
