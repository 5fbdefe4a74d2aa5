//! The metadata repository: named collections of small records (JSON, a
//! few raw values) with the handful of atomic operations the store needs.
//!
//! The store's modules speak only this trait, so a repository other than
//! sled (PostgreSQL, issue 21) is one more implementation of it and no
//! route or actor changes. Each operation is chosen so that such a
//! repository does it in one statement or one transaction:
//! - a collection is a table, or `(collection, key)` the primary key of
//!   one table; keys are text, values bytes;
//! - [`Repo::scan_prefix`] is `key >= prefix AND key < successor(prefix)`
//!   ordered by key in byte order (`COLLATE "C"`; keys hold `_` and `%`,
//!   so not `LIKE`);
//! - [`Repo::compare_and_swap`] is an `UPDATE … WHERE value = old` (or an
//!   `INSERT … ON CONFLICT DO NOTHING`, or a `DELETE … WHERE value = old`);
//! - [`Repo::batch`] is one transaction that reads its requirements
//!   `FOR UPDATE`, then writes, and commits only if every one held.
//!
//! The methods are synchronous because the store's facade is (its readers
//! run in request handlers that expect an answer from memory); a network
//! repository runs its client on a runtime of its own and waits on a
//! channel (`block_in_place` panics on actix's current-thread runtimes). Writes are durable once [`Repo::flush`] returns; a
//! repository whose commits are durable makes it a no-op.

mod copy;
pub(crate) mod postgres;
pub(crate) mod sled;

use std::future::Future;
use std::pin::Pin;

use crate::Result;

pub use self::copy::{copy_records, Copied};
pub use self::postgres::PgRepo;
pub use self::sled::SledRepo;

/// A boxed future, for the async methods of trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The named collections of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// API key → its account and secret hash.
    Keys,
    Accounts,
    /// Project uid → project.
    Projects,
    /// `account/name` → project uid (raw), the unique-name index.
    ProjectNames,
    /// `uid/name` → asset metadata.
    Assets,
    /// `uid/name` → dynamic movie.
    Movies,
    /// Upload id → chunked upload state.
    Uploads,
    /// Render token → render request.
    Tokens,
    /// `uid/token` → empty: a project's tokens.
    ProjectTokens,
    /// Output key → cached render.
    RenderCache,
    /// Output key → render job.
    Jobs,
    /// `token/id` → upload task.
    UploadTasks,
    /// Hosted file id → hosted file.
    HostedFiles,
    /// `render-or-source id/file id` → empty: the files a render or a
    /// source produced.
    HostedByParent,
    /// Installation-wide values (raw): the token MAC key.
    Meta,
    /// Shotstack render id → its render (`shotstack_renders`).
    ShotstackRenders,
    /// `uid/movie` → a Shotstack template's name.
    ShotstackTemplates,
    /// Ingested source id → source (Shotstack Ingest API).
    Sources,
    /// `account/source id` → empty: an account's sources.
    AccountSources,
    /// Callback id → a callback not yet delivered (`callbacks`).
    PendingCallbacks,
    /// `uid/<newest-first time>/token` → empty: a project's tokens in
    /// the order the studio pages through them (`renders`).
    ProjectTokensByTime,
    /// Pixop user id → user (`pixop`).
    PixopUsers,
    /// Lowercased email → Pixop user id (raw), the unique-email index.
    PixopEmails,
    /// Team id (= account id) → Pixop team.
    PixopTeams,
    /// Team name → team id (raw), the unique-name index.
    PixopTeamNames,
    /// Project uid → when a Pixop client last renamed it (`pixop`).
    PixopProjectTimes,
    /// Pixop video id → video (`pixop_videos`).
    PixopVideos,
    /// `project uid/video id` → empty: a project's Pixop videos.
    PixopProjectVideos,
    /// Segment content key (hex) → cached segment (`segment_cache`).
    Segments,
}

impl Collection {
    pub const ALL: [Collection; 29] = [
        Collection::Keys,
        Collection::Accounts,
        Collection::Projects,
        Collection::ProjectNames,
        Collection::Assets,
        Collection::Movies,
        Collection::Uploads,
        Collection::Tokens,
        Collection::ProjectTokens,
        Collection::RenderCache,
        Collection::Jobs,
        Collection::UploadTasks,
        Collection::HostedFiles,
        Collection::HostedByParent,
        Collection::Meta,
        Collection::ShotstackRenders,
        Collection::ShotstackTemplates,
        Collection::Sources,
        Collection::AccountSources,
        Collection::PendingCallbacks,
        Collection::ProjectTokensByTime,
        Collection::PixopUsers,
        Collection::PixopEmails,
        Collection::PixopTeams,
        Collection::PixopTeamNames,
        Collection::PixopProjectTimes,
        Collection::PixopVideos,
        Collection::PixopProjectVideos,
        Collection::Segments,
    ];

    /// A stable name: a sled tree's, a table's.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Keys => "keys",
            Collection::Accounts => "accounts",
            Collection::Projects => "projects",
            Collection::ProjectNames => "project_names",
            Collection::Assets => "assets",
            Collection::Movies => "movies",
            Collection::Uploads => "uploads",
            Collection::Tokens => "tokens",
            Collection::ProjectTokens => "project_tokens",
            Collection::RenderCache => "render_cache",
            Collection::Jobs => "jobs",
            Collection::UploadTasks => "upload_tasks",
            Collection::HostedFiles => "hosted_files",
            Collection::HostedByParent => "hosted_by_parent",
            Collection::Meta => "meta",
            Collection::ShotstackRenders => "shotstack_renders",
            Collection::ShotstackTemplates => "shotstack_templates",
            Collection::Sources => "sources",
            Collection::AccountSources => "account_sources",
            Collection::PendingCallbacks => "pending_callbacks",
            Collection::ProjectTokensByTime => "project_tokens_by_time",
            Collection::PixopUsers => "pixop_users",
            Collection::PixopEmails => "pixop_emails",
            Collection::PixopTeams => "pixop_teams",
            Collection::PixopTeamNames => "pixop_team_names",
            Collection::PixopProjectTimes => "pixop_project_times",
            Collection::PixopVideos => "pixop_videos",
            Collection::PixopProjectVideos => "pixop_project_videos",
            Collection::Segments => "segments",
        }
    }
}

/// One step of a [`Repo::batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The batch goes ahead only if `key` is present (`present: true`) or
    /// absent (`false`) when it commits.
    Require {
        collection: Collection,
        key: String,
        present: bool,
    },
    Insert {
        collection: Collection,
        key: String,
        value: Vec<u8>,
    },
    Remove {
        collection: Collection,
        key: String,
    },
}

impl Step {
    pub fn require_present(collection: Collection, key: impl Into<String>) -> Step {
        Step::Require {
            collection,
            key: key.into(),
            present: true,
        }
    }

    pub fn require_absent(collection: Collection, key: impl Into<String>) -> Step {
        Step::Require {
            collection,
            key: key.into(),
            present: false,
        }
    }

    pub fn insert(collection: Collection, key: impl Into<String>, value: Vec<u8>) -> Step {
        Step::Insert {
            collection,
            key: key.into(),
            value,
        }
    }

    pub fn remove(collection: Collection, key: impl Into<String>) -> Step {
        Step::Remove {
            collection,
            key: key.into(),
        }
    }

    pub fn collection(&self) -> Collection {
        match self {
            Step::Require { collection, .. }
            | Step::Insert { collection, .. }
            | Step::Remove { collection, .. } => *collection,
        }
    }
}

/// What a [`Repo::batch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every step took effect. One entry per step: the value an `Insert`
    /// replaced or a `Remove` removed, `None` for a `Require`.
    Applied(Vec<Option<Vec<u8>>>),
    /// The requirement at this index of the steps did not hold; nothing
    /// was written.
    Unmet(usize),
}

/// A metadata repository (see the module's notes).
pub trait Repo: Send + Sync {
    fn get(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>>;

    fn contains(&self, collection: Collection, key: &str) -> Result<bool>;

    /// Sets `key` to `value`; returns the value it replaced.
    fn insert(&self, collection: Collection, key: &str, value: Vec<u8>) -> Result<Option<Vec<u8>>>;

    /// Removes `key`; returns the value it had.
    fn remove(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>>;

    /// Every record whose key starts with `prefix` (all of them for `""`),
    /// in byte order of the keys.
    fn scan_prefix(&self, collection: Collection, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// At most `limit` records whose key starts with `prefix` and sorts
    /// after `after` (from the first when `None`), in byte order of the
    /// keys: one page of a listing, read without the rest.
    fn scan_page(
        &self,
        collection: Collection,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut all = self.scan_prefix(collection, prefix)?;
        all.retain(|(k, _)| after.is_none_or(|a| k.as_str() > a));
        all.truncate(limit);
        Ok(all)
    }

    /// How many records the collection holds.
    fn count(&self, collection: Collection) -> Result<usize>;

    /// Sets `key` to `new` (`None`: removes it) only if its value is
    /// still `old` (`None`: absent). Returns whether it did.
    fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool>;

    /// All of `steps` or none, atomically with respect to every other
    /// write: the requirements are checked and the writes made as one.
    fn batch(&self, steps: &[Step]) -> Result<BatchOutcome>;

    /// Makes every write so far durable.
    fn flush(&self) -> BoxFuture<'_, Result<()>>;

    /// The blocking twin of [`Repo::flush`], for the CLI, opening and
    /// shutdown.
    fn flush_blocking(&self) -> Result<()>;
}

// The trait's contract is checked on every implementation, sled and
// PostgreSQL alike, by `tests/tests/repo_conformance.rs`.
