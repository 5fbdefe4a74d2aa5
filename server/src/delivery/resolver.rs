//! How a render's `src` values become files: project assets by name.

use std::path::PathBuf;

use clipstream_actors::pipeline::{FetchError, Resolve, Resolved};
use clipstream_storage::{Error as StoreError, Store};

pub struct ProjectSources {
    pub store: Store,
    pub project: String,
}

impl Resolve for ProjectSources {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            if src.starts_with("http://") || src.starts_with("https://") {
                return Err(FetchError::Permanent {
                    src: src.to_owned(),
                    reason: "fetching URLs is not enabled in this build yet; upload the file to the project".into(),
                });
            }
            match self.store.asset_file(&self.project, src) {
                Ok(path) => Ok::<PathBuf, FetchError>(path),
                Err(StoreError::AssetNotFound(_)) => Err(FetchError::Permanent {
                    src: src.to_owned(),
                    reason: "no such asset in the project".into(),
                }),
                Err(e) => Err(FetchError::Transient {
                    src: src.to_owned(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
