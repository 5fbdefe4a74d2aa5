//! Dynamic movies: a project's Edit templates, stored as the client sent them.

use serde::{Deserialize, Serialize};

use crate::{child_key, child_prefix, ids, Collection, Error, Result, Store};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Movie {
    pub name: String,
    /// The Edit JSON exactly as stored (validated by the caller).
    pub body: String,
    pub modified: u64,
}

impl Store {
    /// Stores a movie, replacing any earlier version; returns whether it is new.
    pub async fn put_movie(&self, uid: &str, name: &str, body: String) -> Result<(Movie, bool)> {
        let movie = Movie {
            name: name.to_owned(),
            body,
            modified: ids::unix_now(),
        };
        let old = self
            .insert_child(Collection::Movies, uid, name, serde_json::to_vec(&movie)?)
            .await?;
        self.changed(uid).await;
        Ok((movie, old.is_none()))
    }

    pub fn movies(&self, uid: &str) -> Result<Vec<Movie>> {
        self.records(Collection::Movies, &child_prefix(uid))
    }

    pub fn movie(&self, uid: &str, name: &str) -> Result<Movie> {
        self.record(Collection::Movies, &child_key(uid, name))?
            .ok_or_else(|| Error::MovieNotFound(name.to_owned()))
    }

    pub async fn delete_movie(&self, uid: &str, name: &str) -> Result<()> {
        self.repo
            .remove(Collection::Movies, &child_key(uid, name))?
            .ok_or_else(|| Error::MovieNotFound(name.to_owned()))?;
        self.flush().await?;
        self.changed(uid).await;
        Ok(())
    }
}
