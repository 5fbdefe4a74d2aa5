//! How a render's `src` values become files: project assets by name and
//! files hosted for the project by their URL (the very versions its
//! output key was derived from), and other http(s) URLs downloaded once
//! per render into a directory that goes away with the render.

use std::collections::HashMap;
use std::sync::Arc;

use clipstream_actors::{FetchError, Resolve, Resolved};
use clipstream_storage::{Error as StoreError, Store};

use super::fetch::UrlFetcher;

pub struct ProjectSources {
    pub store: Store,
    pub project: String,
    /// The content digest of each asset when the output key was made.
    pub assets: HashMap<String, String>,
    pub urls: Arc<UrlFetcher>,
    /// Downloads of this render; removed when the render is dropped.
    pub downloads: tempfile::TempDir,
}

impl Resolve for ProjectSources {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            let permanent = |reason: &str| FetchError::Permanent {
                src: src.to_owned(),
                reason: reason.to_owned(),
            };
            let asset = if src.contains("://") {
                // A URL keyed as a hosted file (see `content_key`) is read
                // from the store; every other one is downloaded.
                if !self.assets.contains_key(src) {
                    return self.urls.fetch(src, self.downloads.path()).await;
                }
                match self.store.hosted_asset_at(&self.project, src) {
                    Ok(Some(asset)) => Ok(asset),
                    Ok(None) => Err(StoreError::AssetNotFound(src.to_owned())),
                    Err(e) => Err(e),
                }
            } else {
                self.store.asset(&self.project, src)
            };
            match asset {
                // An asset replaced since the key was made would cache the
                // new content under the old key: fail this render instead;
                // the next GET derives the new key.
                Ok(asset) if self.assets.get(src) != Some(&asset.hash) => Err(permanent(
                    "the asset changed while the render started; ask again",
                )),
                Ok(asset) => {
                    self.store
                        .body_local_path(&asset)
                        .await
                        .map_err(|e| FetchError::Transient {
                            src: src.to_owned(),
                            reason: e.to_string(),
                        })
                }
                Err(StoreError::AssetNotFound(_) | StoreError::InvalidName(_)) => {
                    Err(permanent("no such asset in the project"))
                }
                Err(e) => Err(FetchError::Transient {
                    src: src.to_owned(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
