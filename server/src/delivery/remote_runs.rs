//! `parallel: N` over a cluster (issue 21): a render asks other nodes to
//! render runs of its segments. Each run asked is a `segment_run` row in
//! the cluster's work (key `<output key>/<first segment>`), queued above
//! renders so that a node with a free worker takes it first; the taker
//! (see `Renders::serve_run`) plans the render again from its token,
//! renders exactly those segments as the render's own workers would and
//! keeps them in the segment store every node shares (S3), where the
//! asking render reads them. The waiting, and rendering a run here when
//! no node delivers it, is the actors' (`compositor::render_remotely`);
//! this is only the cluster's side of it.

use std::future::Future;
use std::sync::Arc;

use clipstream_actors::segments::{AskedRun, RemoteRuns, RunState};
use clipstream_storage::cluster::{Claim, Coordinator, NewWork};

use crate::metrics::Metrics;

/// The kind of a run's row in the cluster's work.
pub const SEGMENT_RUN_WORK: &str = "segment_run";

/// Runs are taken before renders (priority 1 for a viewer's, 0 for a
/// background one): a render waits for them.
const PRIORITY: i16 = 2;

/// Remote claimers of one render, at most, whatever its `parallel`.
pub const MOST_CLAIMERS: usize = 16;

/// What a node taking a run needs: the render's token and output (to plan
/// it again) and which segments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunPayload {
    pub token: String,
    pub output: String,
    pub first: usize,
    pub count: usize,
}

impl RunPayload {
    /// The row's key: the render's output key and the run's first
    /// segment (a run is asked once, whoever asks).
    pub fn key(output_key: &str, first: usize) -> String {
        format!("{output_key}/{first}")
    }
}

/// The render whose runs are asked.
pub struct RunOf {
    /// A token of it and which of its outputs (to plan it again).
    pub token: String,
    pub output: String,
    /// Its output key (the rows' keys start with it).
    pub output_key: String,
    /// The token's `routingkey`: only the nodes serving it render runs.
    pub routing_key: Option<String>,
}

/// The remote runs of one render.
pub struct ClusterRuns {
    cluster: Arc<dyn Coordinator>,
    /// The render's runtime: the cluster's calls are async, the render's
    /// threads that ask are not.
    runtime: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    of: RunOf,
}

impl ClusterRuns {
    pub fn new(
        cluster: Arc<dyn Coordinator>,
        runtime: tokio::runtime::Handle,
        metrics: Arc<Metrics>,
        of: RunOf,
    ) -> ClusterRuns {
        ClusterRuns {
            cluster,
            runtime,
            metrics,
            of,
        }
    }
}

/// Runs `work` on `runtime` and waits for it from a thread that is not
/// async (a channel, not `block_on`, which panics inside a runtime);
/// `None` if the runtime dropped it (shutting down).
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().ok()
}

impl RemoteRuns for ClusterRuns {
    fn ask(&self, first: usize, count: usize) -> Option<Box<dyn AskedRun>> {
        let key = RunPayload::key(&self.of.output_key, first);
        let payload = serde_json::to_vec(&RunPayload {
            token: self.of.token.clone(),
            output: self.of.output.clone(),
            first,
            count,
        })
        .ok()?;
        let (cluster, row, body) = (self.cluster.clone(), key.clone(), payload.clone());
        let routing_key = self.of.routing_key.clone();
        // `false` (queued or running already: another render of the same
        // output asked first) is as good: the segments come all the same.
        let queued = wait(&self.runtime, async move {
            cluster
                .enqueue(NewWork {
                    kind: SEGMENT_RUN_WORK,
                    key: &row,
                    payload: &body,
                    routing_key: routing_key.as_deref(),
                    priority: PRIORITY,
                    // This node renders what no other takes itself,
                    // without the queue's round trip.
                    others_only: true,
                })
                .await
        })?;
        if let Err(e) = queued {
            tracing::warn!(key = %key, error = %e, "a run of segments could not be asked of the cluster");
            return None;
        }
        Some(Box::new(Asked {
            cluster: self.cluster.clone(),
            runtime: self.runtime.clone(),
            metrics: self.metrics.clone(),
            key,
            payload,
            taken: false,
            ended: false,
        }))
    }
}

struct Asked {
    cluster: Arc<dyn Coordinator>,
    runtime: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    key: String,
    payload: Vec<u8>,
    /// A live node held the row at a look: it is gone once none does.
    taken: bool,
    ended: bool,
}

impl Asked {
    /// Takes the row back unless a live node holds it (it renders the run
    /// and stores it, of use to the next render), so that no node renders
    /// a run the render now makes itself: claiming it takes it over if it
    /// is queued or its node's lease ran out, and finishing drops it.
    fn withdraw(&self) {
        let (cluster, key, payload) =
            (self.cluster.clone(), self.key.clone(), self.payload.clone());
        let withdrawn = wait(&self.runtime, async move {
            match cluster
                .claim(SEGMENT_RUN_WORK, &key, &payload, false)
                .await?
            {
                Claim::Mine { epoch, .. } => cluster.finish(SEGMENT_RUN_WORK, &key, epoch).await,
                Claim::Held { .. } => Ok(()),
            }
        });
        if let Some(Err(e)) = withdrawn {
            tracing::warn!(key = %self.key, error = %e, "a run of segments could not be withdrawn");
        }
    }
}

impl AskedRun for Asked {
    fn state(&mut self) -> RunState {
        let (cluster, key) = (self.cluster.clone(), self.key.clone());
        match wait(&self.runtime, async move {
            cluster.holder(SEGMENT_RUN_WORK, &key).await
        }) {
            Some(Ok(Some(_))) => {
                self.taken = true;
                RunState::Taken
            }
            // Queued and gone look alike (no live holder): gone once a
            // node was seen holding it.
            Some(Ok(None)) if self.taken => RunState::Gone,
            Some(Ok(None)) => RunState::Queued,
            // Asked again at the next look; the caller's limit bounds it.
            Some(Err(e)) => {
                tracing::warn!(key = %self.key, error = %e, "a run of segments could not be looked at");
                if self.taken {
                    RunState::Taken
                } else {
                    RunState::Queued
                }
            }
            None => RunState::Gone,
        }
    }

    fn end(&mut self, delivered: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let side = if delivered { "remote" } else { "fallback" };
        self.metrics
            .segment_runs
            .get_or_create(&vec![("side", side)])
            .inc();
        if !delivered {
            self.withdraw();
        }
    }
}

impl Drop for Asked {
    fn drop(&mut self) {
        self.end(false);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};
    use std::sync::Mutex;

    use clipstream_storage::cluster::{Held, OnChange, Work};
    use clipstream_storage::repo::BoxFuture;

    use super::*;

    /// A cluster whose holder of the run answers from a script (the last
    /// answer repeats), recording what this node did to the rows.
    #[derive(Default)]
    struct Scripted {
        holders: Mutex<VecDeque<Option<Claim>>>,
        /// What `claim` answers (withdrawing a run).
        claim: Mutex<Option<Claim>>,
        log: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn log(&self, entry: String) {
            self.log.lock().unwrap().push(entry);
        }
    }

    fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
        Box::pin(async move { value })
    }

    impl Coordinator for Scripted {
        fn owner(&self) -> &str {
            "me"
        }
        fn shared(&self) -> bool {
            true
        }
        fn claim<'a>(
            &'a self,
            kind: &'a str,
            key: &'a str,
            _: &'a [u8],
            _: bool,
        ) -> BoxFuture<'a, clipstream_storage::Result<Claim>> {
            self.log(format!("claim {kind} {key}"));
            let claim = self.claim.lock().unwrap().clone().unwrap_or(Claim::Mine {
                epoch: 7,
                background: false,
            });
            ready(Ok(claim))
        }
        fn holder<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, clipstream_storage::Result<Option<Claim>>> {
            let mut holders = self.holders.lock().unwrap();
            let next = if holders.len() > 1 {
                holders.pop_front().flatten()
            } else {
                holders.front().cloned().flatten()
            };
            ready(Ok(next))
        }
        fn enqueue<'a>(
            &'a self,
            work: NewWork<'a>,
        ) -> BoxFuture<'a, clipstream_storage::Result<bool>> {
            let payload: RunPayload = serde_json::from_slice(work.payload).unwrap();
            self.log(format!(
                "enqueue {} {} {} {:?} {} {}+{}",
                work.kind,
                work.key,
                work.priority,
                work.routing_key,
                payload.token,
                payload.first,
                payload.count
            ));
            ready(Ok(true))
        }
        fn take<'a>(
            &'a self,
            _: &'a [&'a str],
            _: usize,
        ) -> BoxFuture<'a, clipstream_storage::Result<Vec<Work>>> {
            ready(Ok(Vec::new()))
        }
        fn finish<'a>(
            &'a self,
            kind: &'a str,
            key: &'a str,
            epoch: i64,
        ) -> BoxFuture<'a, clipstream_storage::Result<()>> {
            self.log(format!("finish {kind} {key} {epoch}"));
            ready(Ok(()))
        }
        fn requeue<'a>(
            &'a self,
            kind: &'a str,
            key: &'a str,
            _: i64,
        ) -> BoxFuture<'a, clipstream_storage::Result<()>> {
            self.log(format!("requeue {kind} {key}"));
            ready(Ok(()))
        }
        fn cancel<'a>(
            &'a self,
            kind: &'a str,
            key: &'a str,
        ) -> BoxFuture<'a, clipstream_storage::Result<()>> {
            self.log(format!("cancel {kind} {key}"));
            ready(Ok(()))
        }
        fn heartbeat(&self) -> BoxFuture<'_, clipstream_storage::Result<HashSet<Held>>> {
            ready(Ok(HashSet::new()))
        }
        fn routing_keys(&self) -> BoxFuture<'_, clipstream_storage::Result<Vec<String>>> {
            ready(Ok(Vec::new()))
        }
        fn work_queued(&self) -> Arc<tokio::sync::Notify> {
            Arc::default()
        }
        fn announce<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
            ready(())
        }
        fn listen(&self, _: OnChange) {}
    }

    fn held() -> Option<Claim> {
        Some(Claim::Held {
            node: "node1".into(),
            url: "http://127.0.0.1:1".into(),
        })
    }

    fn runs(
        cluster: &Arc<Scripted>,
        runtime: &tokio::runtime::Runtime,
    ) -> (ClusterRuns, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let runs = ClusterRuns::new(
            cluster.clone(),
            runtime.handle().clone(),
            metrics.clone(),
            RunOf {
                token: "tok".into(),
                output: "mp4".into(),
                output_key: "out".into(),
                routing_key: Some("gpu".into()),
            },
        );
        (runs, metrics)
    }

    fn count(metrics: &Metrics, side: &'static str) -> u64 {
        metrics
            .segment_runs
            .get_or_create(&vec![("side", side)])
            .get()
    }

    #[test]
    fn a_run_is_queued_above_renders_taken_then_gone_once_its_holder_lets_go() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let cluster = Arc::new(Scripted::default());
        *cluster.holders.lock().unwrap() = VecDeque::from([None, held(), held(), None]);
        let (runs, metrics) = runs(&cluster, &runtime);
        let mut asked = runs.ask(4, 3).expect("asked");
        assert_eq!(
            cluster.log.lock().unwrap().clone(),
            vec!["enqueue segment_run out/4 2 Some(\"gpu\") tok 4+3"]
        );
        let states: Vec<RunState> = (0..4).map(|_| asked.state()).collect();
        assert_eq!(
            states,
            vec![
                RunState::Queued,
                RunState::Taken,
                RunState::Taken,
                RunState::Gone
            ]
        );
        asked.end(true);
        drop(asked);
        assert_eq!(cluster.log.lock().unwrap().len(), 1, "nothing to withdraw");
        assert_eq!(
            (count(&metrics, "remote"), count(&metrics, "fallback")),
            (1, 0)
        );
    }

    #[test]
    fn a_run_given_up_is_withdrawn_unless_a_live_node_renders_it() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let cluster = Arc::new(Scripted::default());
        let (runs, metrics) = runs(&cluster, &runtime);
        // Nobody took it: claimed back and dropped, once, even if dropped
        // without being ended.
        let asked = runs.ask(0, 2).expect("asked");
        drop(asked);
        assert_eq!(
            cluster.log.lock().unwrap()[1..].to_vec(),
            vec!["claim segment_run out/0", "finish segment_run out/0 7"]
        );
        // A live node renders it: left to it (its segments serve the next
        // render).
        *cluster.claim.lock().unwrap() = held();
        let mut asked = runs.ask(2, 2).expect("asked");
        asked.end(false);
        asked.end(false);
        drop(asked);
        assert_eq!(
            cluster.log.lock().unwrap()[3..].to_vec(),
            vec![
                "enqueue segment_run out/2 2 Some(\"gpu\") tok 2+2",
                "claim segment_run out/2"
            ]
        );
        assert_eq!(
            (count(&metrics, "remote"), count(&metrics, "fallback")),
            (0, 2)
        );
    }
}
