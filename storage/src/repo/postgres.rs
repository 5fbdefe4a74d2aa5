//! The PostgreSQL repository (issue 21): every collection in one table,
//! `records(collection, key, value)`, so that several `clipstream serve`
//! processes share one repository.
//!
//! The trait is synchronous; the client is not. A `PgRepo` owns a small
//! tokio runtime of its own that runs the client's connections, and each
//! method sends its work there and waits on a channel (as
//! `server/src/segment_store.rs` does): `block_in_place` would panic on
//! actix's current-thread runtimes, and a runtime of our own keeps the
//! connections alive whatever runtime the caller is on.
//!
//! Every statement runs SERIALIZABLE (the connections' default), so that
//! a check-then-write (a batch's `Require`, a CAS that expects a key to be
//! absent, which has no row to lock) is atomic with respect to every other
//! write; a transaction PostgreSQL aborts as a serialization failure is
//! run again, a bounded number of times.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use super::{BatchOutcome, BoxFuture, Collection, Repo, Step};
use crate::{Error, Result};

/// The schema's versions, in order: each is applied once, in one
/// transaction, and recorded in `schema_migrations`.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_cluster.sql")),
    (3, include_str!("../../migrations/0003_asker.sql")),
];

/// The advisory lock that serialises migrations when several nodes start
/// at once (any constant; this one spells "clipstrm" in ASCII).
const MIGRATION_LOCK: i64 = 0x636c_6970_7374_726d;

/// How many times a transaction aborted by a serialization failure or a
/// deadlock is run again before the error is returned.
const RETRIES: u32 = 30;

/// How long opening a connection may take before the repository gives up
/// (when the connection string does not say).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection: past it, a stuck
/// database is an error to the caller rather than a thread blocked for
/// good.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

type PgError = tokio_postgres::Error;

pub struct PgRepo {
    /// `Some` until drop, which shuts it down without waiting (dropping a
    /// runtime inside another one's worker would panic).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// For the cluster's own connection (`LISTEN` needs one of its own).
    config: tokio_postgres::Config,
}

/// One operation of the trait, as data, so that a retry can run it again.
enum Op {
    Get(Collection, String),
    Contains(Collection, String),
    Insert(Collection, String, Vec<u8>),
    Remove(Collection, String),
    Scan {
        collection: Collection,
        prefix: String,
        after: Option<String>,
        limit: Option<usize>,
    },
    Count(Collection),
    Cas {
        collection: Collection,
        key: String,
        old: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
    Batch(Vec<Step>),
}

/// What an [`Op`] answers.
enum Out {
    Value(Option<Vec<u8>>),
    Bool(bool),
    Rows(Vec<(String, Vec<u8>)>),
    Count(usize),
    Batch(BatchOutcome),
}

impl PgRepo {
    /// Connects to the database of `url` (a libpq connection string,
    /// `host=… port=… user=… dbname=…` or `postgresql://…`) with at most
    /// `max_connections` connections, and brings its schema up to date.
    pub fn open(url: &str, max_connections: usize) -> Result<PgRepo> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Db(format!("the PostgreSQL connection string: {e}").into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // The session default, so that single statements are serializable
        // too (see the module's notes).
        let options = match config.get_options() {
            Some(o) => format!("{o} -c default_transaction_isolation=serializable"),
            None => "-c default_transaction_isolation=serializable".to_owned(),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("clipstream");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clipstream-pg")
            .enable_all()
            .build()?;
        let pool = {
            // The pool's timeouts need the runtime it runs on.
            let _guard = runtime.enter();
            Pool::builder(manager)
                .max_size(max_connections.max(1))
                .wait_timeout(Some(POOL_WAIT_TIMEOUT))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| Error::Db(Box::new(e)))?
        };
        let repo = PgRepo {
            runtime: Some(runtime),
            pool,
            config,
        };
        let pool = repo.pool.clone();
        repo.wait(async move { migrate(&pool).await })??;
        Ok(repo)
    }

    /// Runs `work` on the repository's runtime and waits for its answer.
    fn wait<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let stopped = || Error::Db("the PostgreSQL repository's runtime has stopped".into());
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| stopped())
    }

    /// What the cluster's coordinator shares with the repository: its
    /// runtime, its pool and its connection settings.
    pub(crate) fn parts(&self) -> Option<(tokio::runtime::Handle, Pool, tokio_postgres::Config)> {
        let runtime = self.runtime.as_ref()?;
        Some((
            runtime.handle().clone(),
            self.pool.clone(),
            self.config.clone(),
        ))
    }

    fn run(&self, op: Op) -> Result<Out> {
        let pool = self.pool.clone();
        self.wait(async move { run(&pool, &op).await })?
    }
}

impl Drop for PgRepo {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn db(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Db(Box::new(e))
}

fn unexpected() -> Error {
    Error::Db("the PostgreSQL repository answered an operation with another's result".into())
}

/// Applies the migrations the database lacks. The advisory lock makes
/// nodes starting together take turns; the transaction is READ COMMITTED
/// so that the one that waited sees the versions the other just applied
/// (a serializable snapshot would be taken before the lock was granted).
async fn migrate(pool: &Pool) -> Result<()> {
    let mut client = pool.get().await.map_err(db)?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version int PRIMARY KEY,
             applied timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(Error::Db(
            format!(
                "the database's schema is version {current}, newer than this \
                 Clipstream's {newest}: run the newer Clipstream"
            )
            .into(),
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
        tracing::info!(version, "applied a PostgreSQL schema migration");
    }
    tx.commit().await.map_err(db)
}

/// Runs `op`, again after a serialization failure or a deadlock.
async fn run(pool: &Pool, op: &Op) -> Result<Out> {
    let mut client = pool.get().await.map_err(db)?;
    let mut attempt = 0;
    loop {
        match exec(&mut client, op).await {
            Ok(out) => return Ok(out),
            Err(e) if retryable(&e) && attempt < RETRIES => {
                attempt += 1;
                // A short, growing pause spreads the contenders apart.
                let ms = u64::from(attempt.min(10)) * (1 + u64::from(rand_below(5)));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => return Err(db(e)),
        }
    }
}

fn retryable(e: &PgError) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// A small pseudo-random number: jitter needs no quality.
fn rand_below(n: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos % n.max(1)
}

/// The least string greater than every string that starts with `prefix`
/// (`None` when there is none: `prefix` is empty or all `char::MAX`). The
/// scans' upper bound: keys hold `_` and `%`, so `LIKE` would need
/// escaping, and a range is what the primary key's index serves. Code
/// point order is UTF-8 byte order, which COLLATE "C" compares.
pub(crate) fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

async fn exec(
    client: &mut deadpool_postgres::Object,
    op: &Op,
) -> std::result::Result<Out, PgError> {
    match op {
        Op::Get(c, key) => {
            let st = client
                .prepare_cached("SELECT value FROM records WHERE collection = $1 AND key = $2")
                .await?;
            let row = client.query_opt(&st, &[&c.name(), key]).await?;
            Ok(Out::Value(row.map(|r| r.get(0))))
        }
        Op::Contains(c, key) => {
            let st = client
                .prepare_cached("SELECT 1 FROM records WHERE collection = $1 AND key = $2")
                .await?;
            let row = client.query_opt(&st, &[&c.name(), key]).await?;
            Ok(Out::Bool(row.is_some()))
        }
        Op::Insert(c, key, value) => {
            let tx = client.transaction().await?;
            let old = upsert(&tx, *c, key, value).await?;
            tx.commit().await?;
            Ok(Out::Value(old))
        }
        Op::Remove(c, key) => {
            let st = client
                .prepare_cached(
                    "DELETE FROM records WHERE collection = $1 AND key = $2 RETURNING value",
                )
                .await?;
            let row = client.query_opt(&st, &[&c.name(), key]).await?;
            Ok(Out::Value(row.map(|r| r.get(0))))
        }
        Op::Scan {
            collection,
            prefix,
            after,
            limit,
        } => {
            // A NULL bound is no bound; the limit is all rows when absent.
            let upper = successor(prefix);
            let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            let st = client
                .prepare_cached(
                    "SELECT key, value FROM records
                     WHERE collection = $1 AND key >= $2
                       AND ($3::text IS NULL OR key < $3)
                       AND ($4::text IS NULL OR key > $4)
                     ORDER BY key
                     LIMIT $5",
                )
                .await?;
            let rows = client
                .query(&st, &[&collection.name(), prefix, &upper, after, &limit])
                .await?;
            Ok(Out::Rows(
                rows.into_iter().map(|r| (r.get(0), r.get(1))).collect(),
            ))
        }
        Op::Count(c) => {
            let st = client
                .prepare_cached("SELECT count(*) FROM records WHERE collection = $1")
                .await?;
            let n: i64 = client.query_one(&st, &[&c.name()]).await?.get(0);
            Ok(Out::Count(usize::try_from(n).unwrap_or(usize::MAX)))
        }
        Op::Cas {
            collection,
            key,
            old,
            new,
        } => {
            let name = collection.name();
            let sql = match (old, new) {
                (None, None) => "SELECT 1 FROM records WHERE collection = $1 AND key = $2",
                (None, Some(_)) => {
                    "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (collection, key) DO NOTHING"
                }
                (Some(_), Some(_)) => {
                    "UPDATE records SET value = $4
                     WHERE collection = $1 AND key = $2 AND value = $3"
                }
                (Some(_), None) => {
                    "DELETE FROM records WHERE collection = $1 AND key = $2 AND value = $3"
                }
            };
            let st = client.prepare_cached(sql).await?;
            let swapped = match (old, new) {
                // Nothing to write: it "swaps" when the key is absent.
                (None, None) => client.query_opt(&st, &[&name, key]).await?.is_none(),
                (None, Some(new)) => client.execute(&st, &[&name, key, new]).await? == 1,
                (Some(old), Some(new)) => client.execute(&st, &[&name, key, old, new]).await? == 1,
                (Some(old), None) => client.execute(&st, &[&name, key, old]).await? == 1,
            };
            Ok(Out::Bool(swapped))
        }
        Op::Batch(steps) => {
            let tx = client.transaction().await?;
            let mut olds = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                let old = match step {
                    Step::Require {
                        collection,
                        key,
                        present,
                    } => {
                        // FOR UPDATE holds a present row until commit; an
                        // absent one has no row to lock, which SERIALIZABLE
                        // covers (a concurrent insert aborts one of the two).
                        let st = tx
                            .prepare_cached(
                                "SELECT 1 FROM records
                                 WHERE collection = $1 AND key = $2 FOR UPDATE",
                            )
                            .await?;
                        let found = tx.query_opt(&st, &[&collection.name(), key]).await?;
                        if found.is_some() != *present {
                            tx.rollback().await?;
                            return Ok(Out::Batch(BatchOutcome::Unmet(i)));
                        }
                        None
                    }
                    Step::Insert {
                        collection,
                        key,
                        value,
                    } => upsert(&tx, *collection, key, value).await?,
                    Step::Remove { collection, key } => {
                        let st = tx
                            .prepare_cached(
                                "DELETE FROM records WHERE collection = $1 AND key = $2
                                 RETURNING value",
                            )
                            .await?;
                        tx.query_opt(&st, &[&collection.name(), key])
                            .await?
                            .map(|r| r.get(0))
                    }
                };
                olds.push(old);
            }
            tx.commit().await?;
            Ok(Out::Batch(BatchOutcome::Applied(olds)))
        }
    }
}

/// Sets a record inside `tx`, returning the value it replaced: the old
/// value is read (and locked) first, since `RETURNING` gives only the new.
async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    collection: Collection,
    key: &str,
    value: &[u8],
) -> std::result::Result<Option<Vec<u8>>, PgError> {
    let read = tx
        .prepare_cached("SELECT value FROM records WHERE collection = $1 AND key = $2 FOR UPDATE")
        .await?;
    let old: Option<Vec<u8>> = tx
        .query_opt(&read, &[&collection.name(), &key])
        .await?
        .map(|r| r.get(0));
    let write = tx
        .prepare_cached(
            "INSERT INTO records (collection, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
        )
        .await?;
    tx.execute(&write, &[&collection.name(), &key, &value])
        .await?;
    Ok(old)
}

impl Repo for PgRepo {
    fn get(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>> {
        match self.run(Op::Get(collection, key.to_owned()))? {
            Out::Value(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    fn contains(&self, collection: Collection, key: &str) -> Result<bool> {
        match self.run(Op::Contains(collection, key.to_owned()))? {
            Out::Bool(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    fn insert(&self, collection: Collection, key: &str, value: Vec<u8>) -> Result<Option<Vec<u8>>> {
        match self.run(Op::Insert(collection, key.to_owned(), value))? {
            Out::Value(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    fn remove(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>> {
        match self.run(Op::Remove(collection, key.to_owned()))? {
            Out::Value(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    fn scan_prefix(&self, collection: Collection, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let op = Op::Scan {
            collection,
            prefix: prefix.to_owned(),
            after: None,
            limit: None,
        };
        match self.run(op)? {
            Out::Rows(rows) => Ok(rows),
            _ => Err(unexpected()),
        }
    }

    fn scan_page(
        &self,
        collection: Collection,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let op = Op::Scan {
            collection,
            prefix: prefix.to_owned(),
            after: after.map(str::to_owned),
            limit: Some(limit),
        };
        match self.run(op)? {
            Out::Rows(rows) => Ok(rows),
            _ => Err(unexpected()),
        }
    }

    fn count(&self, collection: Collection) -> Result<usize> {
        match self.run(Op::Count(collection))? {
            Out::Count(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool> {
        let op = Op::Cas {
            collection,
            key: key.to_owned(),
            old: old.map(<[u8]>::to_vec),
            new,
        };
        match self.run(op)? {
            Out::Bool(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    fn batch(&self, steps: &[Step]) -> Result<BatchOutcome> {
        if steps.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        match self.run(Op::Batch(steps.to_vec()))? {
            Out::Batch(outcome) => Ok(outcome),
            _ => Err(unexpected()),
        }
    }

    /// Commits are durable when they return: nothing to do.
    fn flush(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn flush_blocking(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn the_successor_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(successor("b/"), Some("b0".to_owned()));
        assert_eq!(successor("a_%"), Some("a_&".to_owned()));
        assert_eq!(successor(""), None);
        assert_eq!(successor("x\u{10FFFF}"), Some("y".to_owned()));
        assert_eq!(successor("\u{D7FF}"), Some("\u{E000}".to_owned()));
        assert_eq!(successor("\u{10FFFF}"), None);
    }
}
