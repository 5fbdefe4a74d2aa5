//! The cluster's coordinator over PostgreSQL: the `nodes` and `work`
//! tables of `migrations/0002_cluster.sql`, on the repository's pool and
//! runtime, and a connection of its own that `LISTEN`s for queued work
//! and changed projects.
//!
//! Every statement runs in a READ COMMITTED transaction (the repository's
//! connections default to serializable): claims are single `INSERT … ON
//! CONFLICT DO UPDATE … WHERE` or `UPDATE … FOR UPDATE SKIP LOCKED`
//! statements, whose row locks are what makes them exclusive, and a
//! serializable snapshot would only add aborts (30 viewers claiming one
//! render at once failed a third of the time). Leases use the database's
//! clock alone.
//!
//! The heartbeat renews only the claims this process made and has not
//! finished (`held`): a claim whose work ended without a finish (a
//! request dropped between claim and render) lapses rather than living
//! as long as the node.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use super::{Claim, Coordinator, Held, NewWork, NodeSettings, OnChange, Work};
use crate::repo::{BoxFuture, PgRepo};
use crate::{Error, Result};

/// The channel a queued work is announced on (its payload: the kind).
const WORK_CHANNEL: &str = "clipstream_work";
/// The channel a changed project is announced on (its payload: the uid).
const CHANGE_CHANNEL: &str = "clipstream_change";

/// How long the listening connection waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// TCP keepalives of the listening connection, which is idle most of the
/// time: a connection the network dropped silently is noticed within
/// about 25 s (then reconnected, and every memo told to start over).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// This process's unfinished claims: work and the epoch it holds.
type HeldMap = Arc<Mutex<HashMap<(String, String), i64>>>;

fn held_lock(held: &HeldMap) -> MutexGuard<'_, HashMap<(String, String), i64>> {
    // A plain map: consistent whatever panicked while holding it.
    held.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct PgCoordinator {
    owner: String,
    settings: NodeSettings,
    runtime: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    queued: Arc<tokio::sync::Notify>,
    listening: OnceLock<()>,
    held: HeldMap,
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
            held: HeldMap::default(),
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
                         WHERE state = 'running'
                           AND owner IN (SELECT id FROM nodes
                                         WHERE node_id = $2 AND id <> $1)",
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
    fn beat(&self) -> impl std::future::Future<Output = Result<HashSet<Held>>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let node_id = self.settings.node_id.clone();
        let url = self.settings.url.clone();
        let keys = self.settings.routing_keys.clone();
        let lease = self.lease_secs();
        let held = self.held.clone();
        let claimed: Vec<((String, String), i64)> = held_lock(&held)
            .iter()
            .map(|(k, e)| (k.clone(), *e))
            .collect();
        async move {
            let kinds: Vec<&str> = claimed.iter().map(|((k, _), _)| k.as_str()).collect();
            let names: Vec<&str> = claimed.iter().map(|((_, k), _)| k.as_str()).collect();
            let epochs: Vec<i64> = claimed.iter().map(|(_, e)| *e).collect();
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
            let renewed: HashSet<Held> = tx
                .query(
                    "UPDATE work AS w SET expires = now() + make_interval(secs => $2)
                     FROM unnest($3::text[], $4::text[], $5::int8[]) AS h(kind, key, epoch)
                     WHERE w.kind = h.kind AND w.key = h.key AND w.epoch = h.epoch
                       AND w.owner = $1 AND w.state = 'running'
                     RETURNING w.kind, w.key, w.background",
                    &[&owner, &lease, &kinds, &names, &epochs],
                )
                .await
                .map_err(db)?
                .into_iter()
                .map(|row| Held {
                    kind: row.get(0),
                    key: row.get(1),
                    background: row.get(2),
                })
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
            // Claims another node took over are no longer this node's to
            // renew (unless claimed again since).
            let mut map = held_lock(&held);
            for ((kind, key), epoch) in claimed {
                let kept = renewed.iter().any(|h| h.kind == kind && h.key == key);
                if !kept && map.get(&(kind.clone(), key.clone())) == Some(&epoch) {
                    map.remove(&(kind, key));
                }
            }
            Ok(renewed)
        }
    }

    /// Runs one statement about `(kind, key)` with this node's name as $3
    /// and `epoch` as $4, READ COMMITTED.
    fn statement(
        &self,
        sql: &'static str,
        kind: &str,
        key: &str,
        epoch: Option<i64>,
    ) -> BoxFuture<'static, Result<()>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let (kind, key) = (kind.to_owned(), key.to_owned());
        let runtime = self.runtime.clone();
        Box::pin(async move {
            runtime
                .spawn(async move {
                    let mut client = pool.get().await.map_err(db)?;
                    let tx = read_committed(&mut client).await?;
                    tx.execute(sql, &[&kind, &key, &owner, &epoch])
                        .await
                        .map_err(db)?;
                    tx.commit().await.map_err(db)
                })
                .await
                .map_err(|e| Error::Db(format!("a cluster query stopped: {e}").into()))?
        })
    }

    /// Remembers claim `epoch` on `(kind, key)` for the heartbeat.
    fn note(&self, kind: &str, key: &str, epoch: i64) {
        let mut map = held_lock(&self.held);
        let entry = map
            .entry((kind.to_owned(), key.to_owned()))
            .or_insert(epoch);
        *entry = (*entry).max(epoch);
    }

    /// Forgets claim `epoch` (or any, when `None`) on `(kind, key)`.
    fn forget(&self, kind: &str, key: &str, epoch: Option<i64>) {
        let mut map = held_lock(&self.held);
        let k = (kind.to_owned(), key.to_owned());
        if epoch.is_none() || map.get(&k).copied() == epoch {
            map.remove(&k);
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
    let mut client = pool.get().await.map_err(db)?;
    let tx = read_committed(&mut client).await?;
    let row = tx
        .query_opt(
            "SELECT w.owner, n.node_id, n.url, w.state, w.expires > now(),
                    w.epoch, w.background
             FROM work w LEFT JOIN nodes n ON n.id = w.owner
             WHERE w.kind = $1 AND w.key = $2",
            &[&kind, &key],
        )
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(row.and_then(|row| {
        let holder: Option<String> = row.get(0);
        let state: String = row.get(3);
        let live: Option<bool> = row.get(4);
        if state != "running" || live != Some(true) {
            return None;
        }
        match holder {
            Some(h) if h == owner => Some(Claim::Mine {
                epoch: row.get(5),
                background: row.get(6),
            }),
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
        background: bool,
    ) -> BoxFuture<'a, Result<Claim>> {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let (kind_, key_) = (kind, key);
        let (kind, key, payload) = (kind.to_owned(), key.to_owned(), payload.to_vec());
        let lease = self.lease_secs();
        let claimed = self.on_runtime(async move {
            // The row may go between the two statements (its holder
            // finished): then claiming again will find it free.
            for _ in 0..5 {
                let mut client = pool.get().await.map_err(db)?;
                let tx = read_committed(&mut client).await?;
                let won = tx
                    .query_opt(
                        "INSERT INTO work AS w
                             (kind, key, payload, background, state, owner, epoch, expires)
                         VALUES ($1, $2, $3, $6, 'running', $4, 1,
                                 now() + make_interval(secs => $5))
                         ON CONFLICT (kind, key) DO UPDATE
                         SET state = 'running', owner = $4, epoch = w.epoch + 1,
                             expires = now() + make_interval(secs => $5),
                             background = w.background OR $6
                         WHERE w.state = 'queued' OR w.owner = $4 OR w.expires < now()
                         RETURNING w.epoch, w.background",
                        &[&kind, &key, &payload, &owner, &lease, &background],
                    )
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                drop(client);
                if let Some(row) = won {
                    return Ok(Claim::Mine {
                        epoch: row.get(0),
                        background: row.get(1),
                    });
                }
                if let Some(claim) = holder_of(&pool, &owner, &kind, &key).await? {
                    return Ok(claim);
                }
            }
            Err(Error::Db(
                format!("{kind} {key} changed hands too often to be claimed").into(),
            ))
        });
        Box::pin(async move {
            let claim = claimed.await?;
            if let Claim::Mine { epoch, .. } = claim {
                self.note(kind_, key_, epoch);
            }
            Ok(claim)
        })
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
        let asker = work.others_only.then(|| self.owner.clone());
        Box::pin(self.on_runtime(async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = read_committed(&mut client).await?;
            // A viewer's render becomes a job too: if its node dies, the
            // job is taken over rather than dropped.
            let row = tx
                .query_opt(
                    "INSERT INTO work AS w
                         (kind, key, payload, routing_key, priority, background, state, asker)
                     VALUES ($1, $2, $3, $4, $5, true, 'queued', $6)
                     ON CONFLICT (kind, key) DO UPDATE
                     SET background = true, routing_key = $4
                     WHERE NOT w.background
                     RETURNING (xmax = 0)",
                    &[&kind, &key, &payload, &routing_key, &priority, &asker],
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
        let taken = self.on_runtime(async move {
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
                             AND (asker IS NULL OR asker <> $1)
                           ORDER BY priority DESC, created
                           LIMIT $5
                           FOR UPDATE SKIP LOCKED) AS t
                     WHERE w.kind = t.kind AND w.key = t.key
                     RETURNING w.kind, w.key, w.payload, w.routing_key, w.epoch",
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
                    epoch: row.get(4),
                })
                .collect::<Vec<Work>>())
        });
        Box::pin(async move {
            let works = taken.await?;
            for work in &works {
                self.note(&work.kind, &work.key, work.epoch);
            }
            Ok(works)
        })
    }

    fn finish<'a>(&'a self, kind: &'a str, key: &'a str, epoch: i64) -> BoxFuture<'a, Result<()>> {
        self.forget(kind, key, Some(epoch));
        self.statement(
            "DELETE FROM work WHERE kind = $1 AND key = $2 AND owner = $3 AND epoch = $4",
            kind,
            key,
            Some(epoch),
        )
    }

    fn requeue<'a>(&'a self, kind: &'a str, key: &'a str, epoch: i64) -> BoxFuture<'a, Result<()>> {
        self.forget(kind, key, Some(epoch));
        self.statement(
            "UPDATE work SET state = 'queued', owner = NULL, expires = NULL
             WHERE kind = $1 AND key = $2 AND owner = $3 AND epoch = $4",
            kind,
            key,
            Some(epoch),
        )
    }

    fn cancel<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>> {
        self.forget(kind, key, None);
        self.statement(
            "DELETE FROM work WHERE kind = $1 AND key = $2 AND $3::text IS NOT NULL
               AND ($4::int8 IS NULL OR epoch = $4)",
            kind,
            key,
            None,
        )
    }

    fn heartbeat(&self) -> BoxFuture<'_, Result<HashSet<Held>>> {
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
            // until their listening connection is next re-established;
            // worth a warning, not a failure of a write already durable.
            if let Err(e) = sent {
                tracing::warn!(error = %e, "a change could not be announced to the other nodes");
            }
        })
    }

    fn listen(&self, on_change: OnChange) {
        if self.listening.set(()).is_err() {
            return;
        }
        let mut config = self.config.clone();
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
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
                    queued.notify_one();
                    while let Some((channel, payload)) = rx.recv().await {
                        if channel == WORK_CHANNEL {
                            queued.notify_one();
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
