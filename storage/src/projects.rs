//! Projects: an account's named containers of assets and dynamic movies.

use crate::{
    child_prefix, ids, AccountId, Asset, BatchOutcome, Collection, Error, Result, Step, Store,
};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub uid: String,
    pub name: String,
    pub account: AccountId,
    pub created: u64,
    #[serde(default)]
    pub published: Vec<Publication>,
}

/// A cluster the project was published to, and how that went.
///
/// Publishing to this installation's own cluster only records it; to a
/// peer installation it is a background job that copies the project,
/// which this record also is: it survives a restart and is resumed then.
/// Records written before publish copied anything read as done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    pub cluster: String,
    /// Unix seconds of the last publish request.
    pub at: u64,
    #[serde(default)]
    pub state: PublishState,
    /// Why the last attempt failed (also while a retry waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Steps of the current copy done, of `total`.
    #[serde(default)]
    pub done: u32,
    #[serde(default)]
    pub total: u32,
    /// Attempts of the current copy (transient failures are retried).
    #[serde(default)]
    pub attempts: u32,
    /// The project's uid on the peer, once found or created there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_uid: Option<String>,
    /// Assets the peer is known to hold: name → BLAKE3 of the body. What
    /// is here and no longer in the project is deleted at the peer.
    #[serde(default)]
    pub sent_assets: BTreeMap<String, String>,
    /// Dynamic movies the peer is known to hold: name → BLAKE3 of the text.
    #[serde(default)]
    pub sent_movies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PublishState {
    Queued,
    Running,
    #[default]
    Done,
    Failed,
}

impl PublishState {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishState::Queued => "queued",
            PublishState::Running => "running",
            PublishState::Done => "done",
            PublishState::Failed => "failed",
        }
    }

    pub fn finished(self) -> bool {
        matches!(self, PublishState::Done | PublishState::Failed)
    }
}

pub(crate) fn name_key(account: &AccountId, name: &str) -> String {
    format!("{}/{}", account.0, name)
}

impl Store {
    /// Creates a project; the name must be unique within the account.
    /// The caller has checked that `name` is a plain name.
    pub async fn create_project(&self, account: &AccountId, name: &str) -> Result<Project> {
        let project = Project {
            uid: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            account: account.clone(),
            created: ids::unix_now(),
            published: Vec::new(),
        };
        let record = serde_json::to_vec(&project)?;
        let name_key = name_key(account, name);
        // Name index and record in one batch: two concurrent creates of one
        // name cannot both win.
        let steps = [
            Step::require_absent(Collection::ProjectNames, name_key.as_str()),
            Step::insert(
                Collection::ProjectNames,
                name_key.as_str(),
                project.uid.as_bytes().to_vec(),
            ),
            Step::insert(Collection::Projects, project.uid.as_str(), record),
        ];
        if let BatchOutcome::Unmet(_) = self.repo.batch(&steps)? {
            return Err(Error::ProjectExists(name.to_owned()));
        }
        self.flush().await?;
        Ok(project)
    }

    /// The account's project named `name`, created if it does not exist
    /// yet: where an API without projects (Shotstack's) keeps its work.
    /// Two first uses at once get the same project.
    pub async fn project_named(&self, account: &AccountId, name: &str) -> Result<Project> {
        loop {
            if let Some(uid) = self
                .repo
                .get(Collection::ProjectNames, &name_key(account, name))?
            {
                let uid = String::from_utf8(uid)
                    .map_err(|_| Error::Corrupt("a project name points at no uid".into()))?;
                if let Some(project) = self.record::<Project>(Collection::Projects, &uid)? {
                    return Ok(project);
                }
            }
            match self.create_project(account, name).await {
                // Another request created it meanwhile: read it again.
                Err(Error::ProjectExists(_)) => continue,
                other => return other,
            }
        }
    }

    /// The account's projects, by name.
    pub fn projects(&self, account: &AccountId) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        let prefix = format!("{}/", account.0);
        for (_, uid) in self.repo.scan_prefix(Collection::ProjectNames, &prefix)? {
            let uid = String::from_utf8(uid)
                .map_err(|_| Error::Corrupt("a project name points at no uid".into()))?;
            if let Some(p) = self.record::<Project>(Collection::Projects, &uid)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The project `uid` if `account` owns it: 404 when it does not exist,
    /// 403 when another account owns it.
    pub fn project(&self, account: &AccountId, uid: &str) -> Result<Project> {
        let project = self.project_any(uid)?;
        if &project.account != account {
            return Err(Error::ProjectForbidden(uid.to_owned()));
        }
        Ok(project)
    }

    /// The project `uid` whoever owns it: for capabilities such as render
    /// tokens, which carry their own authority.
    pub fn project_any(&self, uid: &str) -> Result<Project> {
        self.record(Collection::Projects, uid)?
            .ok_or_else(|| Error::ProjectNotFound(uid.to_owned()))
    }

    /// Deletes a project with its assets, movies and unfinished uploads.
    ///
    /// The project record goes first, so the project is gone for every
    /// reader at once; if the process dies before the rest is removed, the
    /// next start's sweep removes the orphans.
    pub async fn delete_project(&self, account: &AccountId, uid: &str) -> Result<()> {
        let project = self.project(account, uid)?;
        let steps = [
            // A concurrent delete got there first: the project is gone.
            Step::require_present(Collection::Projects, uid),
            Step::remove(Collection::Projects, uid),
            Step::remove(Collection::ProjectNames, name_key(account, &project.name)),
        ];
        if let BatchOutcome::Unmet(_) = self.repo.batch(&steps)? {
            return Err(Error::ProjectNotFound(uid.to_owned()));
        }
        self.flush().await?;
        self.changed(uid).await;

        let assets: Vec<Asset> = self.records(Collection::Assets, &child_prefix(uid))?;
        for collection in [Collection::Assets, Collection::Movies] {
            for key in self.record_keys(collection, &child_prefix(uid))? {
                self.repo.remove(collection, &key)?;
            }
        }
        self.remove_tokens_of(uid).await?;
        self.remove_uploads_of(uid).await?;
        self.remove_pixop_videos_of(uid).await?;
        self.flush().await?;
        for asset in assets {
            self.blobs.remove(asset.blob_id()).await;
        }
        Ok(())
    }

    /// Records a publish of the project to `cluster`: done at once when
    /// nothing is copied (`copy` false: the own cluster), queued otherwise
    /// for the job that copies it. What an earlier copy sent is kept, so
    /// the next copy sends only what changed.
    pub async fn publish(
        &self,
        account: &AccountId,
        uid: &str,
        cluster: &str,
        copy: bool,
    ) -> Result<Project> {
        self.project(account, uid)?;
        let now = ids::unix_now();
        let project = self.update_record(
            Collection::Projects,
            uid,
            || Error::ProjectNotFound(uid.to_owned()),
            |p: &mut Project| {
                let earlier = p
                    .published
                    .iter()
                    .position(|x| x.cluster == cluster)
                    .map(|i| p.published.remove(i));
                let mut publication = earlier.unwrap_or_else(|| Publication {
                    cluster: cluster.to_owned(),
                    at: now,
                    state: PublishState::Done,
                    error: None,
                    done: 0,
                    total: 0,
                    attempts: 0,
                    peer_uid: None,
                    sent_assets: BTreeMap::new(),
                    sent_movies: BTreeMap::new(),
                });
                publication.at = now;
                publication.error = None;
                publication.done = 0;
                publication.total = 0;
                publication.attempts = 0;
                publication.state = if copy {
                    PublishState::Queued
                } else {
                    PublishState::Done
                };
                p.published.push(publication);
                Ok::<_, Error>(())
            },
        )?;
        self.flush().await?;
        Ok(project)
    }

    /// Changes the publication of project `uid` to `cluster` (a publish
    /// job's progress). None when the project or the publication is gone:
    /// the job has nothing left to do.
    pub fn update_publication(
        &self,
        uid: &str,
        cluster: &str,
        mut change: impl FnMut(&mut Publication),
    ) -> Result<Option<Publication>> {
        let mut found = None;
        let updated = self.update_record(
            Collection::Projects,
            uid,
            || Error::ProjectNotFound(uid.to_owned()),
            |p: &mut Project| {
                found = p
                    .published
                    .iter_mut()
                    .find(|x| x.cluster == cluster)
                    .map(|x| {
                        change(x);
                        x.clone()
                    });
                Ok::<_, Error>(())
            },
        );
        match updated {
            Ok(_) => Ok(found),
            Err(Error::ProjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Publications a stop cut off (queued or running), as (project uid,
    /// cluster), for the start to run again.
    pub fn unfinished_publications(&self) -> Result<Vec<(String, String)>> {
        let projects: Vec<Project> = self.records(Collection::Projects, "")?;
        Ok(projects
            .into_iter()
            .flat_map(|p| {
                p.published
                    .into_iter()
                    .filter(|x| !x.state.finished())
                    .map(move |x| (p.uid.clone(), x.cluster))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::store;
    use crate::{AccountId, Error};

    #[tokio::test]
    async fn names_are_unique_per_account_only() {
        let (_dir, store) = store();
        let a = AccountId("a".into());
        let b = AccountId("b".into());
        store.create_project(&a, "demo").await.unwrap();
        assert!(matches!(
            store.create_project(&a, "demo").await,
            Err(Error::ProjectExists(_))
        ));
        store.create_project(&b, "demo").await.unwrap();
        assert_eq!(store.projects(&a).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn another_accounts_project_is_forbidden() {
        let (_dir, store) = store();
        let a = AccountId("a".into());
        let b = AccountId("b".into());
        let p = store.create_project(&a, "demo").await.unwrap();
        assert!(matches!(
            store.project(&b, &p.uid),
            Err(Error::ProjectForbidden(_))
        ));
        assert!(matches!(
            store.project(&a, "nope"),
            Err(Error::ProjectNotFound(_))
        ));
        assert!(matches!(
            store.delete_project(&b, &p.uid).await,
            Err(Error::ProjectForbidden(_))
        ));
    }

    #[tokio::test]
    async fn a_publish_keeps_what_was_sent_and_is_resumed_until_finished() {
        use crate::projects::PublishState;
        let (_dir, store) = store();
        let a = AccountId("a".into());
        let p = store.create_project(&a, "demo").await.unwrap();
        store.publish(&a, &p.uid, "local", false).await.unwrap();
        assert!(store.unfinished_publications().unwrap().is_empty());
        let q = store.publish(&a, &p.uid, "peer", true).await.unwrap();
        assert_eq!(q.published[1].state, PublishState::Queued);
        assert_eq!(
            store.unfinished_publications().unwrap(),
            vec![(p.uid.clone(), "peer".to_owned())]
        );
        store
            .update_publication(&p.uid, "peer", |x| {
                x.state = PublishState::Done;
                x.sent_assets.insert("a.png".into(), "h".into());
            })
            .unwrap()
            .unwrap();
        assert!(store.unfinished_publications().unwrap().is_empty());
        let again = store.publish(&a, &p.uid, "peer", true).await.unwrap();
        let x = &again.published[1];
        assert_eq!((x.state, x.sent_assets.len()), (PublishState::Queued, 1));
        assert!(store
            .update_publication(&p.uid, "nowhere", |_| {})
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_deleted_name_can_be_used_again() {
        let (_dir, store) = store();
        let a = AccountId("a".into());
        let p = store.create_project(&a, "demo").await.unwrap();
        store.delete_project(&a, &p.uid).await.unwrap();
        assert!(store.projects(&a).unwrap().is_empty());
        let again = store.create_project(&a, "demo").await.unwrap();
        assert_ne!(again.uid, p.uid);
    }
}
