//! The Pixop API's videos: items of a project (an ordinary project of the
//! team's account) that hold an uploaded original or a processed result.
//!
//! The upload, ingestion and processing parts are kept as the JSON the API
//! shows (the server owns their shape); storage knows the media file a
//! video holds, so that deleting it, or a sweep, treats it right.

use serde::{Deserialize, Serialize};

use crate::{ids, AccountId, BatchOutcome, Collection, Error, Result, Step, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixopVideo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub project: String,
    pub team: AccountId,
    /// The user who uploaded or processed it.
    pub user: String,
    /// The original a processed video was made from.
    pub parent: Option<String>,
    pub upload: Option<serde_json::Value>,
    pub ingestion: Option<serde_json::Value>,
    pub processing: Option<serde_json::Value>,
    /// The media file: the upload of an original, the result of a
    /// processed video.
    pub media: Option<PixopMedia>,
    /// The upload asked for light ingestion (no `idet`): kept so that an
    /// ingestion a restart cut off runs again the same way.
    #[serde(default)]
    pub light: bool,
    /// Unix milliseconds.
    pub created: u64,
    pub updated: u64,
}

impl PixopVideo {
    pub fn new(team: AccountId, project: &str, user: &str, name: &str) -> PixopVideo {
        let now = ids::unix_now_ms();
        PixopVideo {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            description: String::new(),
            project: project.to_owned(),
            team,
            user: user.to_owned(),
            light: false,
            parent: None,
            upload: None,
            ingestion: None,
            processing: None,
            media: None,
            created: now,
            updated: now,
        }
    }
}

/// A video's media file in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixopMedia {
    pub blob: String,
    pub size: u64,
    /// BLAKE3, hex: the download's ETag.
    pub hash: String,
    pub file_name: String,
    pub content_type: String,
    /// Unix seconds.
    pub modified: u64,
}

fn member_key(project: &str, video: &str) -> String {
    format!("{project}/{video}")
}

impl Store {
    /// Stores a new video, in one batch with the check that its project
    /// still exists.
    pub async fn create_pixop_video(&self, video: &PixopVideo) -> Result<()> {
        let mut steps = vec![
            Step::require_present(Collection::Projects, video.project.as_str()),
            Step::insert(
                Collection::PixopVideos,
                video.id.as_str(),
                serde_json::to_vec(video)?,
            ),
            Step::insert(
                Collection::PixopProjectVideos,
                member_key(&video.project, &video.id),
                Vec::new(),
            ),
        ];
        // A processed video's source deleted meanwhile: no orphan child.
        if let Some(parent) = &video.parent {
            steps.push(Step::require_present(
                Collection::PixopVideos,
                parent.as_str(),
            ));
        }
        match self.repo.batch(&steps)? {
            BatchOutcome::Unmet(0) => return Err(Error::ProjectNotFound(video.project.clone())),
            BatchOutcome::Unmet(_) => {
                return Err(Error::PixopVideoNotFound(
                    video.parent.clone().unwrap_or_default(),
                ))
            }
            BatchOutcome::Applied(_) => {}
        }
        self.flush().await
    }

    pub fn pixop_video(&self, id: &str) -> Result<Option<PixopVideo>> {
        self.record(Collection::PixopVideos, id)
    }

    /// The team's videos, oldest first.
    pub fn pixop_videos(&self, team: &AccountId) -> Result<Vec<PixopVideo>> {
        let mut all: Vec<PixopVideo> = self.records(Collection::PixopVideos, "")?;
        all.retain(|v| &v.team == team);
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(all)
    }

    /// Every team's videos: what a restart looks through.
    pub fn all_pixop_videos(&self) -> Result<Vec<PixopVideo>> {
        self.records(Collection::PixopVideos, "")
    }

    pub fn project_has_pixop_videos(&self, project: &str) -> Result<bool> {
        Ok(!self
            .record_keys(Collection::PixopProjectVideos, &format!("{project}/"))?
            .is_empty())
    }

    /// Changes video `id` with `change` (without lost updates), stamping
    /// `updated`; `None` when the video is gone (deleted meanwhile).
    pub async fn update_pixop_video(
        &self,
        id: &str,
        mut change: impl FnMut(&mut PixopVideo),
    ) -> Result<Option<PixopVideo>> {
        let now = ids::unix_now_ms();
        let result = self.update_record(
            Collection::PixopVideos,
            id,
            || Error::Corrupt(format!("the Pixop video {id} vanished")),
            |video: &mut PixopVideo| {
                change(video);
                video.updated = now;
                Ok::<_, Error>(())
            },
        );
        match result {
            Ok(video) => {
                self.flush().await?;
                Ok(Some(video))
            }
            Err(Error::Corrupt(_)) if self.pixop_video(id)?.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes video `id` and, transitively, every video processed from
    /// it, with their bodies. Returns the ids deleted, `id` first.
    pub async fn delete_pixop_video(&self, id: &str) -> Result<Vec<String>> {
        let all: Vec<PixopVideo> = self.records(Collection::PixopVideos, "")?;
        let mut doomed = vec![id.to_owned()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                all.iter()
                    .filter(|v| v.parent.as_deref() == Some(parent.as_str()))
                    .map(|v| v.id.clone()),
            );
            i += 1;
        }
        let mut deleted = Vec::new();
        let mut blobs = Vec::new();
        for id in &doomed {
            if let Some(bytes) = self.repo.remove(Collection::PixopVideos, id)? {
                let video: PixopVideo = serde_json::from_slice(&bytes)?;
                self.repo.remove(
                    Collection::PixopProjectVideos,
                    &member_key(&video.project, id),
                )?;
                blobs.extend(video.media.map(|m| m.blob));
                deleted.push(id.clone());
            }
        }
        self.flush().await?;
        for blob in blobs {
            self.blobs.remove(&blob).await;
        }
        Ok(deleted)
    }

    /// Lands a finished body in the blob store; the caller records it in
    /// the video's `blobs` (or removes it with [`Store::remove_pixop_blob`]).
    pub async fn commit_pixop_body(&self, body: crate::BlobWriter) -> Result<crate::BlobInfo> {
        self.blobs.commit(body).await
    }

    pub async fn open_pixop_blob(&self, id: &str) -> Result<Option<tokio::fs::File>> {
        self.blobs.open(id).await
    }

    /// A path to read the body from (the decoders want a file).
    pub async fn pixop_blob_path(&self, id: &str) -> Result<std::path::PathBuf> {
        self.blobs.local_path(id).await
    }

    pub async fn remove_pixop_blob(&self, id: &str) {
        self.blobs.remove(id).await
    }

    /// Deletes every Pixop video of project `uid` (the project is being
    /// deleted through another API).
    pub(crate) async fn remove_pixop_videos_of(&self, uid: &str) -> Result<()> {
        for key in self.record_keys(Collection::PixopProjectVideos, &format!("{uid}/"))? {
            if let Some((_, video)) = key.split_once('/') {
                self.delete_pixop_video(video).await?;
            }
        }
        Ok(())
    }

    /// Every body a Pixop video holds: kept by the sweep.
    pub(crate) fn pixop_blobs(&self) -> Result<Vec<String>> {
        let all: Vec<PixopVideo> = self.records(Collection::PixopVideos, "")?;
        Ok(all
            .into_iter()
            .filter_map(|v| v.media.map(|m| m.blob))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::store;
    use crate::{AccountId, PixopVideo};

    #[tokio::test]
    async fn a_video_goes_with_its_project_and_a_source_with_its_children() {
        let (_dir, store) = store();
        let team = AccountId("t".into());
        let p = store.create_project(&team, "p").await.unwrap();
        let source = PixopVideo::new(team.clone(), &p.uid, "u", "a");
        store.create_pixop_video(&source).await.unwrap();
        let mut child = PixopVideo::new(team.clone(), &p.uid, "u", "b");
        child.parent = Some(source.id.clone());
        store.create_pixop_video(&child).await.unwrap();
        assert!(store.project_has_pixop_videos(&p.uid).unwrap());
        let gone = store.delete_pixop_video(&source.id).await.unwrap();
        assert_eq!(gone, vec![source.id.clone(), child.id.clone()]);
        assert!(!store.project_has_pixop_videos(&p.uid).unwrap());

        let again = PixopVideo::new(team.clone(), &p.uid, "u", "c");
        store.create_pixop_video(&again).await.unwrap();
        store.delete_project(&team, &p.uid).await.unwrap();
        assert!(store.pixop_video(&again.id).unwrap().is_none());
        assert!(
            store.create_pixop_video(&again).await.is_err(),
            "no video in a deleted project"
        );
        let p = store.create_project(&team, "q").await.unwrap();
        let mut orphan = PixopVideo::new(team.clone(), &p.uid, "u", "d");
        orphan.parent = Some("gone".into());
        assert!(
            store.create_pixop_video(&orphan).await.is_err(),
            "no child of a deleted source"
        );
    }
}
