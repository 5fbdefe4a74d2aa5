//! The cluster's coordinator over PostgreSQL: the `nodes` and `work`
//! tables of `migrations/0002_cluster.sql`, on the repository's pool and
//! runtime, and a connection of its own that `LISTEN`s for queued work
//! and changed projects.
//!
//! Every statement runs READ COMMITTED (the repository's connections
//! default to serializable): claims are single `INSERT … ON CONFLICT DO
//! UPDATE … WHERE` or `UPDATE … FOR UPDATE SKIP LOCKED` statements, whose
//! row locks are what makes them exclusive, and a serializable snapshot
//! would only add aborts. Leases use the database's clock alone.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use super::{Claim, Coordinator, NewWork, NodeSettings, OnChange, Work};
use crate::repo::{BoxFuture, PgRepo};
use crate::{Error, Result};

/// The channel a queued work is announced on (its payload: the kind).
const WORK_CHANNEL: &str = "clipstream_work";
/// The channel a changed project is announced on (its payload: the uid).
const CHANGE_CHANNEL: &str = "clipstream_change";

/// How long the listening connection waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub struct PgCoordinator {
    owner: String,
    settings: NodeSettings,
    runtime: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    queued: Arc<tokio::sync::Notify>,
    listening: OnceLock<()>,
}

fn db(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Db(Box::new(e))
}

impl PgCoordinator {
    /// Joins the cluster of `repo`'s database: registers this run as a
    /// node and lets the claims of this node's previous run lapse at once
    /// (a node id names one process at a time).
    pub fn join(repo: &PgRepo, settings: NodeSettings) -> Result<PgCoordinator> {
        let (runtime, pool, config) = repo
            .parts()
            .ok_or_else(|| Error::Db("the PostgreSQL repository has stopped".into()))?;
        let run = crate::ids::hex(&crate::ids::random_bytes::<4>());
        let coordinator = PgCoordinator {
            owner: format!("{}-{run}", settings.node_id),
            settings,
            runtime,
            pool,
            config,
            queued: Arc::default(),
            listening: OnceLock::new(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (pool, owner, node_id) = (
            coordinator.pool.clone(),
            coordinator.owner.clone(),
            coordinator.settings.node_id.clone(),
        );
        coordinator.runtime.spawn(async move {
            let lapsed = async {
                let client = pool.get().await.map_err(db)?;
                client
                    .execute(
                        "UPDATE work SET expires = now()
                         WHERE state = 'running' AND owner <> $1
                           AND left(owner, length($2) + 1) = $2 || '-'",
                        &[&owner, &node_id],
                    )
                    .await
                    .map_err(db)
            };
            let _ = tx.send(lapsed.await);
        });
        let lapsed = rx
            .recv()
            .map_err(|_| Error::Db("the PostgreSQL repository has stopped".into()))??;
        if lapsed > 0 {
            tracing::info!(
                works = lapsed,
                "the previous run of this node held work: it is free for any node now"
            );
        }
        coordinator.wait_on_runtime(coordinator.beat())?;
        Ok(coordinator)
    }

    fn lease_secs(&self) -> f64 {
        self.settings.lease.as_secs_f64()
    }

    /// Runs `work` on the repository's runtime (whose connections these
    /// are) and waits for it there, from any runtime.
    async fn on_runtime<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.runtime
            .spawn(work)
            .await
            .map_err(|e| Error::Db(format!("a cluster query stopped: {e}").into()))?
    }

    fn wait_on_runtime<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .map_err(|_| Error::Db("the PostgreSQL repository has stopped".into()))?
    }

    /// The heartbeat's statements, as a future that owns what it needs.
    fn beat(&self) -> impl std::future::Future<Output = Result<HashSet<(String, String)>>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let node_id = self.settings.node_id.clone();
        let url = self.settings.url.clone();
        let keys = self.settings.routing_keys.clone();
        let lease = self.lease_secs();
        async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = read_committed(&mut client).await?;
            tx.execute(
                "INSERT INTO nodes (id, node_id, url, routing_keys, heartbeat)
                 VALUES ($1, $2, $3, $4, now())
                 ON CONFLICT (id) DO UPDATE
                 SET url = excluded.url, routing_keys = excluded.routing_keys,
                     heartbeat = now()",
                &[&owner, &node_id, &url, &keys],
            )
            .await
            .map_err(db)?;
            let held = tx
                .query(
                    "UPDATE work SET expires = now() + make_interval(secs => $2)
                     WHERE owner = $1 AND state = 'running'
                     RETURNING kind, key",
                    &[&owner, &lease],
                )
                .await
                .map_err(db)?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            // A viewer's render whose node died is nobody's job: its
            // viewers ask again. Nodes gone for a day are forgotten.
            tx.execute(
                "DELETE FROM work WHERE NOT background AND state = 'running'
                   AND expires < now() - make_interval(secs => $1::float8 * 6)",
                &[&lease],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "DELETE FROM nodes WHERE heartbeat < now() - interval '1 day'",
                &[],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(held)
        }
    }
}

async fn read_committed(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(db)
}

/// The holder of `(kind, key)`: `None` when no row is left.
async fn holder_of(pool: &Pool, owner: &str, kind: &str, key: &str) -> Result<Option<Claim>> {
    let client = pool.get().await.map_err(db)?;
    let row = client
        .query_opt(
            "SELECT w.owner, n.node_id, n.url, w.state, w.expires > now()
             FROM work w LEFT JOIN nodes n ON n.id = w.owner
             WHERE w.kind = $1 AND w.key = $2",
            &[&kind, &key],
        )
        .await
        .map_err(db)?;
    Ok(row.and_then(|row| {
        let holder: Option<String> = row.get(0);
        let state: String = row.get(3);
        let live: Option<bool> = row.get(4);
        if state != "running" || live != Some(true) {
            return None;
        }
        match holder {
            Some(h) if h == owner => Some(Claim::Mine),
            Some(h) => Some(Claim::Held {
                node: row.get::<_, Option<String>>(1).unwrap_or(h),
                url: row.get::<_, Option<String>>(2).unwrap_or_default(),
            }),
            None => None,
        }
    }))
}

impl Coordinator for PgCoordinator {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim<'a>(
        &'a self,
        kind: &'a str,
        key: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Claim>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let (kind, key, payload) = (kind.to_owned(), key.to_owned(), payload.to_vec());
        let lease = self.lease_secs();
        Box::pin(self.on_runtime(async move {
            // The row may go between the two statements (its holder
            // finished): then claiming again will find it free.
            for _ in 0..5 {
                let client = pool.get().await.map_err(db)?;
                let won = client
                    .query_opt(
                        "INSERT INTO work AS w
                             (kind, key, payload, background, state, owner, epoch, expires)
                         VALUES ($1, $2, $3, false, 'running', $4, 1,
                                 now() + make_interval(secs => $5))
                         ON CONFLICT (kind, key) DO UPDATE
                         SET state = 'running', owner = $4, epoch = w.epoch + 1,
                             expires = now() + make_interval(secs => $5)
                         WHERE w.state = 'queued' OR w.owner = $4 OR w.expires < now()
                         RETURNING w.owner",
                        &[&kind, &key, &payload, &owner, &lease],
                    )
                    .await
                    .map_err(db)?;
                drop(client);
                if won.is_some() {
                    return Ok(Claim::Mine);
                }
                if let Some(claim) = holder_of(&pool, &owner, &kind, &key).await? {
                    return Ok(claim);
                }
            }
            Err(Error::Db(
                format!("{kind} {key} changed hands too often to be claimed").into(),
            ))
        }))
    }

    fn holder<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Claim>>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let (kind, key) = (kind.to_owned(), key.to_owned());
        Box::pin(self.on_runtime(async move { holder_of(&pool, &owner, &kind, &key).await }))
    }

    fn enqueue<'a>(&'a self, work: NewWork<'a>) -> BoxFuture<'a, Result<bool>> {
        let pool = self.pool.clone();
        let kind = work.kind.to_owned();
        let key = work.key.to_owned();
        let payload = work.payload.to_vec();
        let routing_key = work.routing_key.map(str::to_owned);
        let priority = work.priority;
        Box::pin(self.on_runtime(async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = read_committed(&mut client).await?;
            // A viewer's render becomes a job too: if its node dies, the
            // job is taken over rather than dropped.
            let row = tx
                .query_opt(
                    "INSERT INTO work AS w
                         (kind, key, payload, routing_key, priority, background, state)
                     VALUES ($1, $2, $3, $4, $5, true, 'queued')
                     ON CONFLICT (kind, key) DO UPDATE
                     SET background = true, routing_key = $4
                     WHERE NOT w.background
                     RETURNING (xmax = 0)",
                    &[&kind, &key, &payload, &routing_key, &priority],
                )
                .await
                .map_err(db)?;
            let fresh = row.is_some_and(|r| r.get::<_, bool>(0));
            if fresh {
                tx.execute("SELECT pg_notify($1, $2)", &[&WORK_CHANNEL, &kind])
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(fresh)
        }))
    }

    fn take<'a>(&'a self, kinds: &'a [&'a str], n: usize) -> BoxFuture<'a, Result<Vec<Work>>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let keys = self.settings.routing_keys.clone();
        let lease = self.lease_secs();
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Box::pin(self.on_runtime(async move {
            if n == 0 {
                return Ok(Vec::new());
            }
            let mut client = pool.get().await.map_err(db)?;
            let tx = read_committed(&mut client).await?;
            let rows = tx
                .query(
                    "UPDATE work AS w
                     SET state = 'running', owner = $1, epoch = w.epoch + 1,
                         expires = now() + make_interval(secs => $2)
                     FROM (SELECT kind, key FROM work
                           WHERE kind = ANY($3) AND background
                             AND (state = 'queued' OR expires < now())
                             AND (routing_key IS NULL OR routing_key = ANY($4))
                           ORDER BY priority DESC, created
                           LIMIT $5
                           FOR UPDATE SKIP LOCKED) AS t
                     WHERE w.kind = t.kind AND w.key = t.key
                     RETURNING w.kind, w.key, w.payload, w.routing_key",
                    &[&owner, &lease, &kinds, &keys, &n],
                )
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|row| Work {
                    kind: row.get(0),
                    key: row.get(1),
                    payload: row.get(2),
                    routing_key: row.get(3),
                })
                .collect())
        }))
    }

    fn finish<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let (kind, key) = (kind.to_owned(), key.to_owned());
        Box::pin(self.on_runtime(async move {
            let client = pool.get().await.map_err(db)?;
            client
                .execute(
                    "DELETE FROM work WHERE kind = $1 AND key = $2 AND owner = $3",
                    &[&kind, &key, &owner],
                )
                .await
                .map_err(db)?;
            Ok(())
        }))
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<HashSet<(String, String)>>> {
        Box::pin(self.on_runtime(self.beat()))
    }

    fn routing_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        let pool = self.pool.clone();
        let own = self.settings.routing_keys.clone();
        Box::pin(self.on_runtime(async move {
            let client = pool.get().await.map_err(db)?;
            let rows = client
                .query(
                    "SELECT DISTINCT unnest(routing_keys) FROM nodes
                     WHERE heartbeat > now() - interval '1 day'",
                    &[],
                )
                .await
                .map_err(db)?;
            let mut keys: Vec<String> = rows.into_iter().map(|r| r.get(0)).collect();
            keys.extend(own);
            keys.sort();
            keys.dedup();
            Ok(keys)
        }))
    }

    fn work_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    fn announce<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        let pool = self.pool.clone();
        let uid = uid.to_owned();
        Box::pin(async move {
            let sent = self
                .on_runtime(async move {
                    let client = pool.get().await.map_err(db)?;
                    client
                        .execute("SELECT pg_notify($1, $2)", &[&CHANGE_CHANNEL, &uid])
                        .await
                        .map_err(db)
                })
                .await;
            // The others then serve what they derived before the change
            // until their memo expires; worth a warning, not a failure of
            // the write that is already durable.
            if let Err(e) = sent {
                tracing::warn!(error = %e, "a change could not be announced to the other nodes");
            }
        })
    }

    fn listen(&self, on_change: OnChange) {
        if self.listening.set(()).is_err() {
            return;
        }
        let config = self.config.clone();
        let queued = self.queued.clone();
        self.runtime
            .spawn(listen_forever(config, queued, on_change));
    }
}

/// Follows the two channels on a connection of its own, connecting again
/// whenever it drops; after each (re)connection everything may have
/// changed unseen, so every memo is told so.
async fn listen_forever(
    config: tokio_postgres::Config,
    queued: Arc<tokio::sync::Notify>,
    on_change: OnChange,
) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                        match message {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if tx
                                    .send((n.channel().to_owned(), n.payload().to_owned()))
                                    .is_err()
                                {
                                    break;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the cluster's listening connection failed");
                                break;
                            }
                            None => break,
                        }
                    }
                });
                let listened = client
                    .batch_execute(&format!("LISTEN {WORK_CHANNEL}; LISTEN {CHANGE_CHANNEL}"))
                    .await;
                if let Err(e) = listened {
                    tracing::warn!(error = %e, "the cluster's channels could not be followed");
                } else {
                    on_change(None);
                    queued.notify_waiters();
                    while let Some((channel, payload)) = rx.recv().await {
                        if channel == WORK_CHANNEL {
                            queued.notify_waiters();
                        } else {
                            on_change(Some(&payload));
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's listening connection could not open");
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
