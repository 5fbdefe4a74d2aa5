//! Projects: an account's named containers of assets and dynamic movies.

use crate::{
    child_prefix, ids, AccountId, Asset, BatchOutcome, Collection, Error, Result, Step, Store,
};
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

/// A cluster the project was published to, and when last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    pub cluster: String,
    pub at: u64,
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

    /// Records that the project was published to `cluster`.
    pub async fn publish(&self, account: &AccountId, uid: &str, cluster: &str) -> Result<Project> {
        self.project(account, uid)?;
        let now = ids::unix_now();
        let project = self.update_record(
            Collection::Projects,
            uid,
            || Error::ProjectNotFound(uid.to_owned()),
            |p: &mut Project| {
                p.published.retain(|x| x.cluster != cluster);
                p.published.push(Publication {
                    cluster: cluster.to_owned(),
                    at: now,
                });
                Ok::<_, Error>(())
            },
        )?;
        self.flush().await?;
        Ok(project)
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
