//! The Shotstack API's records beside the ordinary ones: a render of an
//! Edit (what the client sent, where its outputs went, how it ended) and
//! a template's display name. The Edit itself is a movie of the account's
//! `shotstack` project and renders through an ordinary render request
//! (token); these records only hold what Shotstack's answers need and the
//! ImpossibleFX model has no place for.

use crate::{child_key, child_prefix, ids, Collection, Result, Store};
use serde::{Deserialize, Serialize};

/// How a render ended, once its background task has hosted, uploaded and
/// called back; `None` in [`ShotstackRender::outcome`] while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenderOutcome {
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotstackRender {
    /// UUID v4: the render id Shotstack's clients hold.
    pub id: String,
    pub account: String,
    /// The `shotstack` project's uid.
    pub project: String,
    /// The movie holding the Edit, and the token rendering it.
    pub movie: String,
    pub token: String,
    /// The main output's extension (`mp4`, `gif`, …).
    pub extension: String,
    pub poster: bool,
    pub thumbnail: bool,
    /// The Edit exactly as the client sent it (`data`), JSON text.
    pub data: String,
    /// The Edit with its merge fields filled in (`data` with `merged`),
    /// JSON text.
    pub merged: String,
    pub callback: Option<String>,
    /// The scheme and host answers and callbacks build URLs on.
    pub base_url: String,
    /// Host the outputs on the Serve API (the `shotstack` destination).
    pub hosted: bool,
    /// For each upload task of the render request (`s3` and `mux`
    /// destinations), in order, its index in `output.destinations`.
    #[serde(default)]
    pub uploads: Vec<usize>,
    pub outcome: Option<RenderOutcome>,
    pub error: Option<String>,
    /// Seconds of output.
    pub duration: Option<f64>,
    /// Milliseconds from the request to the output in the cache.
    pub render_ms: Option<f64>,
    pub url: Option<String>,
    pub poster_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// A template's name, beside its movie (`project/movie` → this). A movie
/// without one (made through the ImpossibleFX API) is named by its movie
/// name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateName {
    pub name: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Store {
    /// Records a render (new, or changed by its background task).
    pub async fn put_shotstack_render(&self, render: &ShotstackRender) -> Result<()> {
        self.put_record(Collection::ShotstackRenders, &render.id, render)?;
        self.flush().await
    }

    /// The render `id`, if there is one.
    pub fn shotstack_render(&self, id: &str) -> Result<Option<ShotstackRender>> {
        self.record(Collection::ShotstackRenders, id)
    }

    /// Renders whose background task has not ended (run again after a
    /// restart).
    pub fn unfinished_shotstack_renders(&self) -> Result<Vec<ShotstackRender>> {
        let all: Vec<ShotstackRender> = self.records(Collection::ShotstackRenders, "")?;
        Ok(all.into_iter().filter(|r| r.outcome.is_none()).collect())
    }

    /// Stores the template `id` of `project`: its Edit as the movie `id`,
    /// then its name (a name without its movie is never listed: listing
    /// goes by movies).
    pub async fn put_template(
        &self,
        project: &str,
        id: &str,
        name: &str,
        body: String,
    ) -> Result<TemplateName> {
        let now = ids::unix_now_ms();
        let key = child_key(project, id);
        let created_ms = self
            .record::<TemplateName>(Collection::ShotstackTemplates, &key)?
            .filter(|_| self.movie(project, id).is_ok())
            .map_or(now, |t| t.created_ms);
        let record = TemplateName {
            name: name.to_owned(),
            created_ms,
            updated_ms: now,
        };
        self.put_movie(project, id, body).await?;
        self.put_record(Collection::ShotstackTemplates, &key, &record)?;
        self.flush().await?;
        Ok(record)
    }

    /// The names of the templates of `project` that have one, by movie name.
    pub fn template_names(&self, project: &str) -> Result<Vec<(String, TemplateName)>> {
        let prefix = child_prefix(project);
        self.repo
            .scan_prefix(Collection::ShotstackTemplates, &prefix)?
            .into_iter()
            .map(|(k, v)| {
                let id = k.strip_prefix(&prefix).unwrap_or(&k).to_owned();
                Ok((id, serde_json::from_slice(&v)?))
            })
            .collect()
    }

    pub fn template_name(&self, project: &str, id: &str) -> Result<Option<TemplateName>> {
        self.record(Collection::ShotstackTemplates, &child_key(project, id))
    }

    /// Deletes the template `id` (its movie and its name).
    pub async fn delete_template(&self, project: &str, id: &str) -> Result<()> {
        self.delete_movie(project, id).await?;
        self.repo
            .remove(Collection::ShotstackTemplates, &child_key(project, id))?;
        self.flush().await
    }
}
