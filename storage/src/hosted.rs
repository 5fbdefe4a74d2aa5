//! Hosted files: a project asset given a public, unguessable id, so that
//! it is served without credentials at `/hosted/<id>/<filename>` (the
//! Shotstack API's Serve assets, ingested sources and their renditions).
//!
//! The bytes are the asset's; the record adds the id, what produced the
//! file (a render, a source) and its status. Deleting a hosted file
//! removes its asset and keeps the record, marked `deleted`, as Shotstack
//! answers for a deleted asset.

use serde::{Deserialize, Serialize};

use crate::{ids, AccountId, Collection, Error, Result, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostedStatus {
    Importing,
    Ready,
    Failed,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostedFile {
    /// A UUID v4: the file's public capability.
    pub id: String,
    pub account: String,
    pub project: String,
    /// The project asset holding the bytes.
    pub asset: String,
    /// The name in the file's URL, e.g. `<renderId>.mp4`.
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub status: HostedStatus,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// The key of a file in the index of what produced it.
fn parent_key(parent: &str, id: &str) -> String {
    format!("{parent}/{id}")
}

impl Store {
    /// Hosts asset `asset` of `project` (which must exist) as `filename`.
    pub async fn host_asset(
        &self,
        account: &AccountId,
        project: &str,
        asset: &str,
        filename: &str,
        render: Option<&str>,
        source: Option<&str>,
    ) -> Result<HostedFile> {
        self.asset(project, asset)?;
        let now = ids::unix_now_ms();
        let file = HostedFile {
            id: uuid::Uuid::new_v4().to_string(),
            account: account.0.clone(),
            project: project.to_owned(),
            asset: asset.to_owned(),
            filename: filename.to_owned(),
            render: render.map(str::to_owned),
            source: source.map(str::to_owned),
            status: HostedStatus::Ready,
            created_ms: now,
            updated_ms: now,
        };
        self.put_record(Collection::HostedFiles, &file.id, &file)?;
        if let Some(parent) = render.or(source) {
            self.repo.insert(
                Collection::HostedByParent,
                &parent_key(parent, &file.id),
                Vec::new(),
            )?;
        }
        self.flush().await?;
        Ok(file)
    }

    /// The hosted file `id`, whoever owns it (the id is the capability).
    pub fn hosted_file(&self, id: &str) -> Result<HostedFile> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(Error::HostedNotFound(id.to_owned()));
        }
        self.record(Collection::HostedFiles, id)?
            .ok_or_else(|| Error::HostedNotFound(id.to_owned()))
    }

    /// The hosted file `id` if `account` owns it; another account's is
    /// not found, so that ids tell nothing across accounts.
    pub fn hosted_file_of(&self, account: &AccountId, id: &str) -> Result<HostedFile> {
        let file = self.hosted_file(id)?;
        if file.account != account.0 {
            return Err(Error::HostedNotFound(id.to_owned()));
        }
        Ok(file)
    }

    /// The files hosted for a render or a source, oldest first.
    pub fn hosted_files_of(&self, parent: &str) -> Result<Vec<HostedFile>> {
        let mut files = Vec::new();
        for key in self.record_keys(Collection::HostedByParent, &format!("{parent}/"))? {
            let id = &key[parent.len() + 1..];
            if let Some(file) = self.record::<HostedFile>(Collection::HostedFiles, id)? {
                files.push(file);
            }
        }
        files.sort_by_key(|f| f.created_ms);
        Ok(files)
    }

    /// Stops serving `id`: its asset goes, its record stays as `deleted`.
    pub async fn delete_hosted_file(&self, account: &AccountId, id: &str) -> Result<HostedFile> {
        self.hosted_file_of(account, id)?;
        let file = self.update_record(
            Collection::HostedFiles,
            id,
            || Error::HostedNotFound(id.to_owned()),
            |f: &mut HostedFile| {
                f.status = HostedStatus::Deleted;
                f.updated_ms = ids::unix_now_ms();
                Ok::<(), Error>(())
            },
        )?;
        match self.delete_asset(&file.project, &file.asset).await {
            Ok(()) | Err(Error::AssetNotFound(_) | Error::ProjectNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.flush().await?;
        Ok(file)
    }

    /// The asset behind a hosted file that is still served: ready, and
    /// its asset still there.
    pub fn hosted_asset(&self, file: &HostedFile) -> Result<crate::Asset> {
        if file.status != HostedStatus::Ready {
            return Err(Error::HostedNotFound(file.id.clone()));
        }
        self.asset(&file.project, &file.asset).map_err(|e| match e {
            Error::AssetNotFound(_) => Error::HostedNotFound(file.id.clone()),
            other => other,
        })
    }
}

impl Store {
    /// The asset behind `src` when it is the URL of a file hosted in
    /// `project` and still served: a render reads it from the store
    /// rather than over HTTP from this very server. Another project's
    /// hosted file is `None` here, and is fetched like any URL.
    pub fn hosted_asset_at(&self, project: &str, src: &str) -> Result<Option<crate::Asset>> {
        let Some((id, filename)) = url_path(src).and_then(parse_hosted_path) else {
            return Ok(None);
        };
        let file = match self.hosted_file(id) {
            Ok(file) => file,
            Err(Error::HostedNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // The name travels percent-encoded in the URL (`hosting::url`).
        let filename = percent_encoding::percent_decode_str(filename).decode_utf8_lossy();
        if file.project != project || file.filename != filename {
            return Ok(None);
        }
        match self.hosted_asset(&file) {
            Ok(asset) => Ok(Some(asset)),
            Err(Error::HostedNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The path of an absolute http(s) URL, without query or fragment.
fn url_path(src: &str) -> Option<&str> {
    let rest = src
        .strip_prefix("http://")
        .or_else(|| src.strip_prefix("https://"))?;
    let path = &rest[rest.find('/')?..];
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

/// The id and file name of a hosted file's URL path,
/// `/hosted/<id>/<filename>`, if `path` has that shape.
pub fn parse_hosted_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/hosted/")?;
    let (id, filename) = rest.split_once('/')?;
    if id.len() != 36 || filename.is_empty() || filename.contains('/') {
        return None;
    }
    Some((id, filename))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;

    #[tokio::test]
    async fn a_hosted_file_is_found_by_id_and_parent_and_deleted_with_its_asset() {
        let (_dir, store) = store();
        let account = AccountId("a".into());
        let project = store.project_named(&account, "shotstack").await.unwrap();
        assert_eq!(
            store.project_named(&account, "shotstack").await.unwrap(),
            project,
            "the second use finds the first"
        );
        let mut body = store.new_body(1 << 20).await.unwrap();
        body.write(b"bytes").await.unwrap();
        store
            .put_asset(&project.uid, "r.mp4", "video/mp4", body)
            .await
            .unwrap();
        let file = store
            .host_asset(&account, &project.uid, "r.mp4", "r.mp4", Some("r"), None)
            .await
            .unwrap();
        assert_eq!(store.hosted_file(&file.id).unwrap(), file);
        assert_eq!(store.hosted_files_of("r").unwrap(), vec![file.clone()]);
        assert!(store.hosted_asset(&file).is_ok());
        let at = format!("http://127.0.0.1:9/hosted/{}/r.mp4?x=1", file.id);
        assert_eq!(
            store
                .hosted_asset_at(&project.uid, &at)
                .unwrap()
                .map(|a| a.name),
            Some("r.mp4".to_owned())
        );
        assert!(store.hosted_asset_at("another", &at).unwrap().is_none());
        let encoded = format!("http://127.0.0.1:9/hosted/{}/r%2Emp4", file.id);
        assert!(
            store
                .hosted_asset_at(&project.uid, &encoded)
                .unwrap()
                .is_some(),
            "the name as a URL carries it"
        );
        let renamed = format!("http://127.0.0.1:9/hosted/{}/s.mp4", file.id);
        assert!(store
            .hosted_asset_at(&project.uid, &renamed)
            .unwrap()
            .is_none());
        let other = AccountId("b".into());
        assert!(matches!(
            store.hosted_file_of(&other, &file.id),
            Err(Error::HostedNotFound(_))
        ));
        let deleted = store.delete_hosted_file(&account, &file.id).await.unwrap();
        assert_eq!(deleted.status, HostedStatus::Deleted);
        assert!(store.asset(&project.uid, "r.mp4").is_err());
        assert!(matches!(
            store.hosted_asset(&deleted),
            Err(Error::HostedNotFound(_))
        ));
        assert!(matches!(
            store.hosted_file("../x"),
            Err(Error::HostedNotFound(_))
        ));
    }

    #[test]
    fn hosted_paths_are_an_id_and_a_plain_name() {
        let id = "0b5e6a8e-3f44-4bb5-9d1e-6c3b7a1f2d90";
        assert_eq!(
            parse_hosted_path(&format!("/hosted/{id}/a.mp4")),
            Some((id, "a.mp4"))
        );
        assert_eq!(parse_hosted_path(&format!("/hosted/{id}/a/b")), None);
        assert_eq!(parse_hosted_path("/hosted/x/a.mp4"), None);
        assert_eq!(parse_hosted_path("/render/x.mp4"), None);
    }
}
