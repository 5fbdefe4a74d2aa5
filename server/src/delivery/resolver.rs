//! How a render's `src` values become files: project assets by name, and
//! http(s) URLs downloaded once per render into a directory that goes away
//! with the render.

use std::sync::Arc;

use clipstream_actors::pipeline::{FetchError, Resolve, Resolved};
use clipstream_storage::{Error as StoreError, Store};

use super::fetch::UrlFetcher;

pub struct ProjectSources {
    pub store: Store,
    pub project: String,
    pub urls: Arc<UrlFetcher>,
    /// Downloads of this render; removed when the render is dropped.
    pub downloads: tempfile::TempDir,
}

impl Resolve for ProjectSources {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            if src.contains("://") {
                return self.urls.fetch(src, self.downloads.path()).await;
            }
            match self.store.asset_file(&self.project, src) {
                Ok(path) => Ok(path),
                Err(StoreError::AssetNotFound(_) | StoreError::InvalidName(_)) => {
                    Err(FetchError::Permanent {
                        src: src.to_owned(),
                        reason: "no such asset in the project".into(),
                    })
                }
                Err(e) => Err(FetchError::Transient {
                    src: src.to_owned(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
