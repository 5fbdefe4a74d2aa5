//! Background jobs on the nodes of a cluster (renders have their own
//! path in `delivery::registry`): uploads, the Shotstack API's renders,
//! callbacks, ingestions, Pixop's jobs, publishes.
//!
//! Each job runs where it was asked for or resumed, as it always did, but
//! holds its `(kind, key)` in the cluster's work while it runs:
//! - a node that starts (and resumes the unfinished jobs it finds in the
//!   shared repository) skips those another live node holds;
//! - when a node dies, its holds run out and [`take_over`] on another node
//!   starts the jobs again there.
//!
//! A node alone holds everything at once and nothing is ever taken over.

use std::sync::Arc;
use std::time::Duration;

use clipstream_storage::cluster::Claim;
use clipstream_storage::Store;

/// The kinds of jobs held in the cluster.
pub const UPLOAD: &str = "upload";
pub const SHOTSTACK_RENDER: &str = "shotstack_render";
pub const CALLBACK: &str = "callback";
pub const PUBLISH: &str = "publish";
pub const PIXOP_INGEST: &str = "pixop_ingest";
pub const PIXOP_PROCESS: &str = "pixop_process";
pub const SOURCE: &str = "source";

/// How often a node looks for jobs whose node died.
const TAKE_OVER_EVERY: Duration = Duration::from_secs(3);

/// Jobs of a node taken over at once, at most (the rest next time).
const TAKE_OVER_AT_ONCE: usize = 16;

/// Attempts at claiming a job while the database does not answer are
/// spaced out up to this.
const HOLD_RETRY_MAX: Duration = Duration::from_secs(30);

/// Claims job `(kind, key)` for this node: the claim's epoch, for
/// [`release`], or `None` when another live node runs it. A node alone
/// holds everything at once (epoch 0). While the database does not
/// answer, the job waits and asks again (it must not run unclaimed, and
/// without a claim no other node could take it over).
pub async fn hold(store: &Store, kind: &str, key: &str) -> Option<i64> {
    let cluster = store.cluster();
    if !cluster.shared() {
        return Some(0);
    }
    let mut pause = Duration::from_secs(1);
    loop {
        match cluster.claim(kind, key, &[], true).await {
            Ok(Claim::Mine { epoch, .. }) => return Some(epoch),
            Ok(Claim::Held { node, .. }) => {
                tracing::debug!(%kind, %key, %node, "another node runs this job");
                return None;
            }
            Err(e) => {
                tracing::warn!(%kind, %key, error = %e, "a job could not be claimed; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(HOLD_RETRY_MAX);
            }
        }
    }
}

/// Job `(kind, key)` is over on this node (done, failed or handed back):
/// claim `epoch` ends.
pub async fn release(store: &Store, kind: &str, key: &str, epoch: i64) {
    let cluster = store.cluster();
    if !cluster.shared() {
        return;
    }
    if let Err(e) = cluster.finish(kind, key, epoch).await {
        tracing::warn!(%kind, %key, error = %e, "a job's claim could not be given up; it runs out");
    }
}

/// Whether a live node of the cluster holds job `(kind, key)`; a node
/// alone holds nothing of a previous run.
pub async fn held_elsewhere(store: &Store, kind: &str, key: &str) -> bool {
    let cluster = store.cluster();
    if !cluster.shared() {
        return false;
    }
    match cluster.holder(kind, key).await {
        Ok(Some(Claim::Held { .. })) => true,
        Ok(_) => false,
        // Unknown: assume it runs, rather than fail or repeat it.
        Err(_) => true,
    }
}

/// Starts a job of one kind again on this node, given its key.
pub type Restart = Arc<dyn Fn(String) + Send + Sync>;

/// Takes over, every few seconds, the jobs whose node died: each is
/// started here by the `restart` of its kind, which claims it anew (a
/// later epoch) if there is anything left to do; the take's own claim
/// then ends, so a job with nothing left is not held for ever.
pub async fn take_over(store: Store, restarts: Vec<(&'static str, Restart)>) {
    let kinds: Vec<&str> = restarts.iter().map(|(k, _)| *k).collect();
    loop {
        tokio::time::sleep(TAKE_OVER_EVERY).await;
        let taken = match store.cluster().take(&kinds, TAKE_OVER_AT_ONCE).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "jobs of dead nodes could not be looked for");
                continue;
            }
        };
        for work in taken {
            tracing::info!(kind = %work.kind, key = %work.key, "taking over a job of a node that stopped");
            if let Some((_, restart)) = restarts.iter().find(|(k, _)| *k == work.kind) {
                restart(work.key.clone());
            }
            release(&store, &work.kind, &work.key, work.epoch).await;
        }
    }
}
