//! Ingested sources of the Shotstack Ingest API (CONTRACT section 7,
//! issue 17): a file fetched from a URL or sent to a signed upload URL,
//! kept as a hosted file of the account's `shotstack` project, with its
//! renditions (transcodes of it) and where each stands.
//!
//! A source is never removed: deleting it removes its files and marks it
//! `deleted`, as Shotstack shows it. Records are keyed by id (a UUID v4,
//! the public name); `account/id` indexes an account's sources for the
//! list.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{child_key, child_prefix, BatchOutcome, Collection, Error, Result, Step, Store};

/// The seed's `SourceResponseAttributes.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    Queued,
    Importing,
    Ready,
    Failed,
    Deleted,
}

impl SourceStatus {
    /// The seed's word for it, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            SourceStatus::Queued => "queued",
            SourceStatus::Importing => "importing",
            SourceStatus::Ready => "ready",
            SourceStatus::Failed => "failed",
            SourceStatus::Deleted => "deleted",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            SourceStatus::Ready | SourceStatus::Failed | SourceStatus::Deleted
        )
    }
}

/// Where a signed upload URL stands: it is used once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantState {
    /// Issued; no PUT yet (or only failed ones).
    Waiting,
    /// A PUT is streaming in.
    Receiving,
    /// A PUT completed: the URL accepts nothing more.
    Used,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadGrant {
    /// Unix milliseconds after which the URL is refused.
    pub expires_ms: u64,
    pub state: GrantState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub id: String,
    /// The seed's enum (`queued`, `importing`, `ready`, `failed`,
    /// `deleted`); see the server's `ingest` module for why not the
    /// prose's `waiting` and `processing`.
    pub status: SourceStatus,
    /// The rendition as the client sent it, echoed as `transformation`.
    pub transformation: Value,
    /// The hosted file's id once ready.
    pub hosted: Option<String>,
    pub url: Option<String>,
    pub execution_ms: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<f64>,
    pub fps: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: String,
    pub account: String,
    /// The server's base URL when the source was asked for, for URLs
    /// given without a request (callbacks, later answers).
    pub base: String,
    /// The URL fetched; `None` for a direct upload.
    pub input: Option<String>,
    pub callback: Option<String>,
    pub status: SourceStatus,
    /// The hosted file holding the source's bytes.
    pub hosted: Option<String>,
    pub url: Option<String>,
    /// `video`, `image`, `audio` or `font`, once read.
    pub kind: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<f64>,
    pub fps: Option<f64>,
    pub error: Option<String>,
    pub renditions: Vec<Rendition>,
    /// Only for a direct upload.
    pub upload: Option<UploadGrant>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Source {
    /// Whether the account sees it: a direct upload appears once its PUT
    /// has begun.
    /// A new source, queued, with nothing known of it yet.
    pub fn queued(id: String, account: String, base: String, now_ms: u64) -> Source {
        Source {
            id,
            account,
            base,
            input: None,
            callback: None,
            status: SourceStatus::Queued,
            hosted: None,
            url: None,
            kind: None,
            width: None,
            height: None,
            duration: None,
            fps: None,
            error: None,
            renditions: Vec::new(),
            upload: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    pub fn is_visible(&self) -> bool {
        self.upload
            .as_ref()
            .is_none_or(|g| g.state != GrantState::Waiting)
    }
}

/// A new id for a source or a rendition: a UUID v4.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What claiming a signed upload found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The caller now streams the body; it must end with
    /// [`Store::release_upload`] or by marking the grant used.
    Granted(Box<Source>),
    NotFound,
    Expired,
    /// Another PUT is streaming, or one completed.
    AlreadyUsed,
    /// The owner deleted the source: its URL takes nothing more.
    Deleted,
}

/// What one sweep of signed uploads did (see [`Store::sweep_signed_uploads`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// PUTs still `receiving` past their URL's expiry and a grace: their
    /// handler is gone (a PUT's body is bounded by the expiry).
    pub released: usize,
    /// Upload URLs that expired unused, forgotten.
    pub removed: usize,
}

impl Store {
    /// Records a new source and indexes it under its account, in one step.
    pub async fn insert_source(&self, source: &Source) -> Result<()> {
        let steps = [
            Step::require_absent(Collection::Sources, source.id.as_str()),
            Step::insert(
                Collection::Sources,
                source.id.as_str(),
                serde_json::to_vec(source)?,
            ),
            Step::insert(
                Collection::AccountSources,
                child_key(&source.account, &source.id),
                Vec::new(),
            ),
        ];
        match self.repo.batch(&steps)? {
            BatchOutcome::Applied(_) => {
                self.flush().await?;
                Ok(())
            }
            BatchOutcome::Unmet(_) => {
                Err(Error::Corrupt(format!("source id {} is taken", source.id)))
            }
        }
    }

    /// Forgets a source entirely: only for an upload URL that expired
    /// unused, which no one ever saw as a source.
    pub async fn remove_source(&self, source: &Source) -> Result<()> {
        let steps = [
            Step::Remove {
                collection: Collection::Sources,
                key: source.id.clone(),
            },
            Step::Remove {
                collection: Collection::AccountSources,
                key: child_key(&source.account, &source.id),
            },
        ];
        self.repo.batch(&steps)?;
        self.flush().await
    }

    /// The source `id`, whoever owns it.
    pub fn source(&self, id: &str) -> Result<Option<Source>> {
        self.record(Collection::Sources, id)
    }

    /// Every source of every account, for the work a restart resumes.
    pub fn all_sources(&self) -> Result<Vec<Source>> {
        self.records(Collection::Sources, "")
    }

    /// The account's sources, newest first.
    pub fn sources_of(&self, account: &str) -> Result<Vec<Source>> {
        let mut sources = Vec::new();
        for key in self.record_keys(Collection::AccountSources, &child_prefix(account))? {
            if let Some(id) = key.get(account.len() + 1..) {
                if let Some(source) = self.source(id)? {
                    sources.push(source);
                }
            }
        }
        sources.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(sources)
    }

    /// Changes source `id` without lost updates (see `update_record`),
    /// stamping `updated_ms`.
    pub async fn update_source(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Source) -> Result<()>,
    ) -> Result<Source> {
        let source = self.update_record(
            Collection::Sources,
            id,
            || Error::Corrupt(format!("source {id} is missing")),
            |s: &mut Source| {
                change(s)?;
                s.updated_ms = crate::ids::unix_now_ms();
                Ok::<(), Error>(())
            },
        )?;
        self.flush().await?;
        Ok(source)
    }

    /// Claims the signed upload of source `id` for one PUT: only one PUT
    /// streams at a time, and none after one completed.
    pub async fn claim_upload(&self, id: &str, now: u64) -> Result<Claim> {
        let Some(source) = self.source(id)? else {
            return Ok(Claim::NotFound);
        };
        let Some(grant) = &source.upload else {
            return Ok(Claim::NotFound);
        };
        if source.status == SourceStatus::Deleted {
            return Ok(Claim::Deleted);
        }
        if grant.state != GrantState::Waiting {
            return Ok(Claim::AlreadyUsed);
        }
        if now > grant.expires_ms {
            return Ok(Claim::Expired);
        }
        let mut outcome = None;
        let source = self
            .update_source(id, |s| {
                outcome = match &mut s.upload {
                    _ if s.status == SourceStatus::Deleted => Some(false),
                    Some(g) if g.state == GrantState::Waiting => {
                        g.state = GrantState::Receiving;
                        s.status = SourceStatus::Importing;
                        Some(true)
                    }
                    _ => Some(false),
                };
                Ok(())
            })
            .await?;
        Ok(match outcome {
            Some(true) => Claim::Granted(Box::new(source)),
            _ if source.status == SourceStatus::Deleted => Claim::Deleted,
            _ => Claim::AlreadyUsed,
        })
    }

    /// A PUT that failed gives the URL back, so the client may try again
    /// until it expires; the source disappears from view again. A source
    /// the owner deleted meanwhile stays deleted and its URL spent.
    pub async fn release_upload(&self, id: &str) -> Result<Source> {
        self.update_source(id, |s| {
            let deleted = s.status == SourceStatus::Deleted;
            if let Some(g) = &mut s.upload {
                if deleted {
                    g.state = GrantState::Used;
                } else if g.state == GrantState::Receiving {
                    g.state = GrantState::Waiting;
                    s.status = SourceStatus::Queued;
                }
            }
            Ok(())
        })
        .await
    }

    /// The account's upload URLs issued and neither used nor expired, for
    /// the cap on how many may wait at once.
    pub fn waiting_uploads_of(&self, account: &str, now: u64) -> Result<usize> {
        Ok(self
            .sources_of(account)?
            .iter()
            .filter(|s| {
                s.status == SourceStatus::Queued
                    && s.upload
                        .as_ref()
                        .is_some_and(|g| g.state == GrantState::Waiting && now <= g.expires_ms)
            })
            .count())
    }

    /// Releases PUTs left `receiving` more than `grace_ms` past their
    /// URL's expiry (their handler is gone: a body is bounded by the
    /// expiry) and forgets upload URLs that expired unused.
    pub async fn sweep_signed_uploads(&self, now: u64, grace_ms: u64) -> Result<Swept> {
        let mut swept = Swept::default();
        for source in self.all_sources()? {
            let Some(grant) = &source.upload else {
                continue;
            };
            match grant.state {
                GrantState::Receiving if now > grant.expires_ms.saturating_add(grace_ms) => {
                    self.release_upload(&source.id).await?;
                    swept.released += 1;
                }
                GrantState::Waiting
                    if source.status == SourceStatus::Queued && now > grant.expires_ms =>
                {
                    self.remove_source(&source).await?;
                    swept.removed += 1;
                }
                _ => {}
            }
        }
        Ok(swept)
    }

    /// Sets the content type of asset `name` of project `uid`: a signed
    /// upload's body is stored before it is read, and its type is known
    /// only once libavformat has read it. The body is unchanged, so no
    /// render keyed by it changes.
    pub async fn set_asset_content_type(
        &self,
        uid: &str,
        name: &str,
        content_type: &str,
    ) -> Result<crate::Asset> {
        let asset = self.update_record(
            Collection::Assets,
            &child_key(uid, name),
            || Error::AssetNotFound(name.to_owned()),
            |a: &mut crate::Asset| {
                a.content_type = content_type.to_owned();
                Ok::<(), Error>(())
            },
        )?;
        self.flush().await?;
        Ok(asset)
    }

    /// The key of the signed upload URLs' MAC, made at first use and kept
    /// in the repository (not the token key: one leaked never forges the
    /// other).
    pub fn ingest_upload_key(&self) -> Result<[u8; 32]> {
        const KEY: &str = "ingest_upload_key";
        let fresh = crate::ids::random_bytes::<32>();
        // Set only if absent, so URLs survive restarts.
        self.repo
            .compare_and_swap(Collection::Meta, KEY, None, Some(fresh.to_vec()))?;
        let stored = self
            .repo
            .get(Collection::Meta, KEY)?
            .ok_or_else(|| Error::Corrupt("the ingest upload key is missing".into()))?;
        stored
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("the ingest upload key has the wrong length".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;

    fn source(id: &str, account: &str, created_ms: u64, upload: Option<UploadGrant>) -> Source {
        Source {
            upload,
            ..Source::queued(id.into(), account.into(), "http://x".into(), created_ms)
        }
    }

    #[tokio::test]
    async fn an_accounts_sources_list_newest_first_and_no_other_accounts() {
        let (_dir, store) = store();
        store
            .insert_source(&source("a", "acc", 1, None))
            .await
            .unwrap();
        store
            .insert_source(&source("b", "acc", 2, None))
            .await
            .unwrap();
        store
            .insert_source(&source("c", "other", 3, None))
            .await
            .unwrap();
        let ids: Vec<String> = store
            .sources_of("acc")
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        let changed = store
            .update_source("a", |s| {
                s.status = SourceStatus::Ready;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(changed.status, SourceStatus::Ready);
        assert!(changed.updated_ms > 1);
    }

    #[tokio::test]
    async fn a_signed_upload_is_claimed_once_and_not_after_it_expires() {
        let (_dir, store) = store();
        let grant = |expires_ms| UploadGrant {
            expires_ms,
            state: GrantState::Waiting,
        };
        store
            .insert_source(&source("u", "acc", 1, Some(grant(1000))))
            .await
            .unwrap();
        store
            .insert_source(&source("old", "acc", 1, Some(grant(10))))
            .await
            .unwrap();
        assert!(!store.source("u").unwrap().unwrap().is_visible());
        assert!(matches!(
            store.claim_upload("u", 500).await.unwrap(),
            Claim::Granted(_)
        ));
        assert_eq!(
            store.claim_upload("u", 500).await.unwrap(),
            Claim::AlreadyUsed
        );
        store.release_upload("u").await.unwrap();
        assert!(matches!(
            store.claim_upload("u", 500).await.unwrap(),
            Claim::Granted(_)
        ));
        assert_eq!(
            store.claim_upload("old", 500).await.unwrap(),
            Claim::Expired
        );
        assert_eq!(
            store.claim_upload("nope", 500).await.unwrap(),
            Claim::NotFound
        );
        let old = store.source("old").unwrap().unwrap();
        store.remove_source(&old).await.unwrap();
        assert_eq!(store.source("old").unwrap(), None);
        assert_eq!(store.sources_of("acc").unwrap().len(), 1);
        let key = store.ingest_upload_key().unwrap();
        assert_eq!(key, store.ingest_upload_key().unwrap(), "kept");
    }

    fn grant(expires_ms: u64) -> Option<UploadGrant> {
        Some(UploadGrant {
            expires_ms,
            state: GrantState::Waiting,
        })
    }

    async fn delete(store: &Store, id: &str) {
        store
            .update_source(id, |s| {
                s.status = SourceStatus::Deleted;
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failed_put_does_not_bring_a_deleted_source_back() {
        let (_dir, store) = store();
        store
            .insert_source(&source("u", "acc", 1, grant(1000)))
            .await
            .unwrap();
        assert!(matches!(
            store.claim_upload("u", 500).await.unwrap(),
            Claim::Granted(_)
        ));
        delete(&store, "u").await;
        let released = store.release_upload("u").await.unwrap();
        assert_eq!(released.status, SourceStatus::Deleted);
        assert_eq!(released.upload.unwrap().state, GrantState::Used);
        assert_eq!(store.claim_upload("u", 500).await.unwrap(), Claim::Deleted);
        // Deleted before any PUT: the URL is refused too.
        store
            .insert_source(&source("w", "acc", 1, grant(1000)))
            .await
            .unwrap();
        delete(&store, "w").await;
        assert_eq!(store.claim_upload("w", 500).await.unwrap(), Claim::Deleted);
    }

    #[tokio::test]
    async fn the_sweep_releases_stale_puts_and_forgets_expired_urls() {
        let (_dir, store) = store();
        for (id, expires) in [
            ("stale", 100),
            ("live", 10_000),
            ("old", 100),
            ("new", 10_000),
        ] {
            store
                .insert_source(&source(id, "acc", 1, grant(expires)))
                .await
                .unwrap();
        }
        for id in ["stale", "live"] {
            assert!(matches!(
                store.claim_upload(id, 50).await.unwrap(),
                Claim::Granted(_)
            ));
        }
        assert_eq!(store.waiting_uploads_of("acc", 50).unwrap(), 2);
        assert_eq!(
            store.waiting_uploads_of("acc", 500).unwrap(),
            1,
            "old expired"
        );
        let swept = store.sweep_signed_uploads(500, 100).await.unwrap();
        assert_eq!(
            swept,
            Swept {
                released: 1,
                removed: 1
            }
        );
        let stale = store.source("stale").unwrap().unwrap();
        assert_eq!(stale.upload.unwrap().state, GrantState::Waiting);
        assert_eq!(stale.status, SourceStatus::Queued);
        assert_eq!(store.source("old").unwrap(), None);
        let live = store.source("live").unwrap().unwrap();
        assert_eq!(live.upload.unwrap().state, GrantState::Receiving);
        // The released one, expired, goes at the next sweep.
        let swept = store.sweep_signed_uploads(500, 100).await.unwrap();
        assert_eq!(
            swept,
            Swept {
                released: 0,
                removed: 1
            }
        );
        assert!(store.source("new").unwrap().is_some());
    }
}
