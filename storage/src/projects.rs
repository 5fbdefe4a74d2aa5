//! Projects: an account's named containers of assets and dynamic movies.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::{child_prefix, ids, json_tree, AccountId, Asset, Error, Result, Store};

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

fn name_key(account: &AccountId, name: &str) -> String {
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
        // Name index and record in one transaction: two concurrent creates of
        // one name cannot both win.
        (&self.projects, &self.project_names)
            .transaction(|(projects, names)| {
                if names.get(name_key.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                names.insert(name_key.as_bytes(), project.uid.as_bytes())?;
                projects.insert(project.uid.as_bytes(), record.clone())?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => Error::ProjectExists(name.to_owned()),
                TransactionError::Storage(e) => e.into(),
            })?;
        self.flush().await?;
        Ok(project)
    }

    /// The account's projects, by name.
    pub fn projects(&self, account: &AccountId) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for uid in self
            .project_names
            .scan_prefix(format!("{}/", account.0))
            .values()
        {
            if let Some(p) = json_tree::get::<Project>(&self.projects, uid?)? {
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
        json_tree::get(&self.projects, uid)?.ok_or_else(|| Error::ProjectNotFound(uid.to_owned()))
    }

    /// Deletes a project with its assets, movies and unfinished uploads.
    ///
    /// The project record goes first, so the project is gone for every
    /// reader at once; if the process dies before the rest is removed, the
    /// next start's sweep removes the orphans.
    pub async fn delete_project(&self, account: &AccountId, uid: &str) -> Result<()> {
        let project = self.project(account, uid)?;
        (&self.projects, &self.project_names)
            .transaction(|(projects, names)| {
                projects.remove(uid.as_bytes())?;
                names.remove(name_key(account, &project.name).as_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => Error::ProjectNotFound(uid.to_owned()),
                TransactionError::Storage(e) => e.into(),
            })?;
        self.flush().await?;
        self.generations.bump(uid);

        let assets: Vec<Asset> = json_tree::scan(&self.assets, child_prefix(uid))?;
        for key in self.assets.scan_prefix(child_prefix(uid)).keys() {
            self.assets.remove(key?)?;
        }
        for key in self.movies.scan_prefix(child_prefix(uid)).keys() {
            self.movies.remove(key?)?;
        }
        self.remove_tokens_of(uid).await?;
        self.remove_uploads_of(uid).await?;
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
        let project = json_tree::update(
            &self.projects,
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
