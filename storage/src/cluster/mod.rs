//! Coordination between the nodes that share one repository (issue 21).
//!
//! A [`Coordinator`] answers the questions one process used to answer
//! from its own memory: who renders this video, which node takes this
//! job, is that node alive. Work is a row per `(kind, key)` (`render` and
//! an output's content key, `upload` and a task's id, …):
//! - *claimed* by a node for itself ([`Coordinator::claim`]: a viewer's
//!   render, a job a request started) or *queued* for any node
//!   ([`Coordinator::enqueue`]: a background job) and *taken* by whichever
//!   node has room ([`Coordinator::take`], `FOR UPDATE SKIP LOCKED`);
//! - held under a lease the owner renews ([`Coordinator::heartbeat`]); a
//!   lease that runs out lets another node take the work over;
//! - gone once the work is over ([`Coordinator::finish`]).
//!
//! [`Local`] is the coordinator of a node alone (sled): every claim is its
//! own and nothing is queued, so the callers run everything here, as they
//! always did. [`postgres::PgCoordinator`] is the cluster's.

pub(crate) mod postgres;

use std::collections::HashSet;
use std::sync::Arc;

pub use self::postgres::PgCoordinator;
use crate::repo::BoxFuture;
use crate::Result;

/// A node's settings, as the cluster sees them.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// The configured node name (`cluster.node_id`).
    pub node_id: String,
    /// Where the other nodes reach this one (`cluster.advertise_url`).
    pub url: String,
    /// The routing keys of the jobs this node takes.
    pub routing_keys: Vec<String>,
    /// How long a claim lives without a heartbeat.
    pub lease: std::time::Duration,
}

/// What [`Coordinator::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the work now, as its `epoch`th holder (every claim
    /// or take counts one: a finish names the claim it ends, so an older
    /// claim's end never drops a newer one's). `background`: the work was
    /// queued as a job, to run whether anyone watches or not.
    Mine { epoch: i64, background: bool },
    /// A live node holds it; `url` is that node's base URL.
    Held { node: String, url: String },
}

/// Work to queue for whichever node takes it.
#[derive(Debug, Clone)]
pub struct NewWork<'a> {
    pub kind: &'a str,
    pub key: &'a str,
    /// What the taker needs to start it (JSON, the kind's own shape).
    pub payload: &'a [u8],
    /// Only nodes serving this routing key may take it.
    pub routing_key: Option<&'a str>,
    /// Taken before lower priorities.
    pub priority: i16,
    /// Only other nodes may take it: this node asks for help with it.
    pub others_only: bool,
}

/// Work a node has taken.
#[derive(Debug, Clone)]
pub struct Work {
    pub kind: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub routing_key: Option<String>,
    /// This node's claim on it (see [`Claim::Mine`]).
    pub epoch: i64,
}

/// Work this node holds, as a heartbeat renewed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Held {
    pub kind: String,
    pub key: String,
    /// Queued as a job (someone asked for it to run to its end).
    pub background: bool,
}

/// Called with a project's uid when another node changed it, or with
/// `None` when changes may have been missed (everything may have moved).
pub type OnChange = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// The cluster as one node sees it (see the module's notes).
pub trait Coordinator: Send + Sync {
    /// This process's name among the owners of work (the node id and a
    /// suffix of its own run, so that a restarted node never mistakes its
    /// predecessor's claims for its own).
    fn owner(&self) -> &str;

    /// Whether other processes may share the repository: the callers
    /// take the cluster's path only then.
    fn shared(&self) -> bool;

    /// Claims `(kind, key)` for this node, taking over work that is only
    /// queued or whose owner's lease has run out. `payload` is kept for a
    /// node that takes the work over later; `background` work is taken
    /// over when this node dies (a viewer's render is not: its viewers
    /// ask again).
    fn claim<'a>(
        &'a self,
        kind: &'a str,
        key: &'a str,
        payload: &'a [u8],
        background: bool,
    ) -> BoxFuture<'a, Result<Claim>>;

    /// The live holder of `(kind, key)`, if any node holds it.
    fn holder<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Claim>>>;

    /// Queues work for any node; `false` when it is queued or running
    /// already (the same work is never queued twice).
    fn enqueue<'a>(&'a self, work: NewWork<'a>) -> BoxFuture<'a, Result<bool>>;

    /// Takes up to `n` queued works of `kinds` (or works whose owner's
    /// lease ran out) that this node's routing keys allow.
    fn take<'a>(&'a self, kinds: &'a [&'a str], n: usize) -> BoxFuture<'a, Result<Vec<Work>>>;

    /// Ends this node's claim `epoch` on `(kind, key)`: the work is done
    /// or has failed (its records say which). A later claim stays.
    fn finish<'a>(&'a self, kind: &'a str, key: &'a str, epoch: i64) -> BoxFuture<'a, Result<()>>;

    /// Gives claim `epoch` on `(kind, key)` back to the queue, for any
    /// node to take (this one could not start it now).
    fn requeue<'a>(&'a self, kind: &'a str, key: &'a str, epoch: i64) -> BoxFuture<'a, Result<()>>;

    /// Drops `(kind, key)` whoever holds it: its holder stops it at its
    /// next heartbeat.
    fn cancel<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Renews this node's presence and the leases of the work it claimed
    /// and has not finished; returns what it still holds (work missing
    /// from the answer was taken over by another node).
    fn heartbeat(&self) -> BoxFuture<'_, Result<HashSet<Held>>>;

    /// The routing keys the cluster serves: this node's, and those of
    /// every node seen lately.
    fn routing_keys(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Wakes the node's one taker of queued work; a wake-up that comes
    /// while it is busy is kept for its next wait (`notify_one`), so work
    /// queued then is not left for its next periodic look.
    fn work_queued(&self) -> Arc<tokio::sync::Notify>;

    /// Tells the other nodes that project `uid`'s content changed.
    fn announce<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()>;

    /// Starts following the other nodes' announcements.
    fn listen(&self, on_change: OnChange);
}

/// A node alone: every claim is its own and nothing is ever queued.
pub struct Local {
    routing_keys: Vec<String>,
    queued: Arc<tokio::sync::Notify>,
}

impl Local {
    pub fn new(routing_keys: Vec<String>) -> Local {
        Local {
            routing_keys,
            queued: Arc::default(),
        }
    }
}

impl Coordinator for Local {
    fn owner(&self) -> &str {
        "local"
    }

    fn shared(&self) -> bool {
        false
    }

    fn claim<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a [u8],
        _: bool,
    ) -> BoxFuture<'a, Result<Claim>> {
        Box::pin(async {
            Ok(Claim::Mine {
                epoch: 0,
                background: false,
            })
        })
    }

    fn holder<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<Claim>>> {
        Box::pin(async { Ok(None) })
    }

    fn enqueue<'a>(&'a self, _: NewWork<'a>) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    fn take<'a>(&'a self, _: &'a [&'a str], _: usize) -> BoxFuture<'a, Result<Vec<Work>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn finish<'a>(&'a self, _: &'a str, _: &'a str, _: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn requeue<'a>(&'a self, _: &'a str, _: &'a str, _: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn cancel<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<HashSet<Held>>> {
        Box::pin(async { Ok(HashSet::new()) })
    }

    fn routing_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        let keys = self.routing_keys.clone();
        Box::pin(async move { Ok(keys) })
    }

    fn work_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    fn announce<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn listen(&self, _: OnChange) {}
}
