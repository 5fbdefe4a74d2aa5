//! What happens to a source after its request is answered: its bytes are
//! fetched (or were uploaded), read with libavformat, hosted byte for byte
//! as a file of the account's `shotstack` project, and then each
//! rendition is made by the render pipeline itself — one core: a
//! rendition is a Shotstack Edit of one clip of the source, stored as a
//! dynamic movie of that project (`ingest-<rendition id>`) and rendered
//! through a render request like any other, its output then hosted.
//!
//! Statuses follow the seed's enum: a source goes `queued → importing →
//! ready | failed`; a rendition `queued` (the prose's "waiting" and
//! "queued") → `importing` (the prose's "processing") → `ready | failed`.
//! The SDKs check the enum, which has no `waiting` nor `processing`.
//!
//! Work a stopped process left unfinished starts again at the next start
//! ([`resume`]): a fetch from the start, an upload's reading and hosting,
//! renditions not yet made (each is the same Edit and render request, so
//! a render already in the cache is not made again).

use std::sync::Arc;
use std::time::Instant;

use actix_web::web;
use clipstream_actors::engine::edit;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::{AccountId, MovieChoice, Source, SourceStatus};
use serde_json::Map;

use super::super::callback::{Callbacks, Notice};
use super::super::hosting::{self, Hosting};
use super::facts::{self, read, Read};
use super::rendition::rendition_edit;
use super::request::{Format, RenditionSpec};
use super::NAME_PREFIX;
use crate::cluster;
use crate::delivery::Renders;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// What the background work needs; cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub renders: web::Data<Arc<Renders>>,
    pub callbacks: web::Data<Arc<Callbacks>>,
}

/// A storage error as a status's `error` shows it: paths and database
/// details are logged here, not shown to the account.
fn public(e: clipstream_storage::Error) -> String {
    tracing::error!(error = %e, "ingest storage error");
    ApiError::from(e).public_message()
}

/// A render's error as a status's `error` shows it (see [`public`]).
fn delivery_public(e: crate::delivery::DeliveryError) -> String {
    match e {
        crate::delivery::DeliveryError::Store(e) => public(e),
        other => other.to_string(),
    }
}

/// The project asset holding a source's bytes.
pub fn source_asset(id: &str) -> String {
    format!("{NAME_PREFIX}{id}-source")
}

/// Sources worked on at once: as many as the renderers, so that ingests
/// never fill the render queue (a rendition would fail as busy) nor open
/// downloads without bound; the others stay `queued` until a slot frees.
static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();

impl Ctx {
    /// A slot of [`SLOTS`], held for the whole of one source's work.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'static>> {
        let workers = self.state.config.render_workers().max(1);
        let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(workers));
        // Never closed, so `acquire` only fails if it were; then work goes
        // on without a slot rather than not at all.
        slots.acquire().await.ok()
    }

    fn account(source: &Source) -> AccountId {
        AccountId(source.account.clone())
    }

    /// Marks the source failed, with its renditions, and says so.
    async fn fail(&self, id: &str, action: &str, error: String) {
        tracing::warn!(source = id, error = %error, "ingest failed");
        let updated = self
            .state
            .store
            .update_source(id, |s| {
                if s.status != SourceStatus::Deleted {
                    s.status = SourceStatus::Failed;
                    s.error = Some(error.clone());
                    for r in &mut s.renditions {
                        r.status = SourceStatus::Failed;
                        r.error = Some("the source failed".into());
                    }
                }
                Ok(())
            })
            .await;
        match updated {
            // A source deleted meanwhile has nothing more to tell.
            Ok(s) if s.status == SourceStatus::Deleted => {}
            Ok(s) => self.callback(&s, action, &s.id, s.status, None, Some(&error)),
            Err(e) => {
                tracing::error!(source = id, error = %e, "a failed source could not be recorded")
            }
        }
    }

    /// The source's callback, if it has one: Shotstack's fields, those
    /// with no value left out.
    fn callback(
        &self,
        source: &Source,
        action: &str,
        id: &str,
        status: SourceStatus,
        url: Option<&str>,
        error: Option<&str>,
    ) {
        let Some(callback) = &source.callback else {
            return;
        };
        let body = Notice {
            kind: "ingest",
            action,
            id,
            owner: &source.account,
            status: status.name(),
            url,
            error,
            source: (id != source.id).then_some(source.id.as_str()),
            completed_ms: clipstream_storage::unix_now_ms(),
        }
        .body();
        self.callbacks.send(callback.clone(), body);
    }

    /// `POST sources`: fetch, then read and host as an upload is.
    pub async fn fetch(self, id: String, url: String, specs: Vec<RenditionSpec>) {
        let store = self.state.store.clone();
        if let Some(epoch) = cluster::hold(&store, cluster::SOURCE, &id).await {
            self.fetch_held(id.clone(), url, specs).await;
            cluster::release(&store, cluster::SOURCE, &id, epoch).await;
        }
    }

    async fn fetch_held(self, id: String, url: String, specs: Vec<RenditionSpec>) {
        let _slot = self.slot().await;
        let store = &self.state.store;
        let started = store
            .update_source(&id, |s| {
                if s.status != SourceStatus::Deleted {
                    s.status = SourceStatus::Importing;
                }
                Ok(())
            })
            .await;
        match started {
            // Deleted while it waited for a slot: nothing to fetch.
            Ok(s) if s.status == SourceStatus::Deleted => return,
            Ok(_) => {}
            Err(e) => return self.fail(&id, "fetch", public(e)).await,
        }
        let (dir, path) = match self.renders.download(&url).await {
            Ok(got) => got,
            Err(e) => return self.fail(&id, "fetch", e.to_string()).await,
        };
        let hint = url::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        let read = {
            let (path, hint) = (path.clone(), hint.clone());
            web::block(move || read(&path, &hint)).await
        };
        let read = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => return self.fail(&id, "fetch", e).await,
            Err(e) => return self.fail(&id, "fetch", e.to_string()).await,
        };
        let Ok(Some(source)) = store.source(&id) else {
            return self
                .fail(&id, "fetch", "the source record is gone".into())
                .await;
        };
        let filename = format!("source.{}", read.extension);
        let asset = source_asset(&id);
        let hosted = hosting::host_path(
            &self.state,
            &Self::account(&source),
            Hosting {
                asset: &asset,
                filename: &filename,
                render: None,
                source: Some(&id),
            },
            &path,
        )
        .await;
        drop(dir);
        match hosted {
            Ok(file) => self.ready(id, "fetch", file, read, specs).await,
            Err(e) => self.fail(&id, "fetch", e.to_string()).await,
        }
    }

    /// A signed upload's bytes, already the source's project asset: read
    /// and hosted, as a fetched file is. Bytes that end up in no hosted
    /// file (the source failed or was deleted) are removed.
    pub async fn uploaded(self, id: String, project: String) {
        let store = self.state.store.clone();
        if let Some(epoch) = cluster::hold(&store, cluster::SOURCE, &id).await {
            self.uploaded_held(id.clone(), project).await;
            cluster::release(&store, cluster::SOURCE, &id, epoch).await;
        }
    }

    async fn uploaded_held(self, id: String, project: String) {
        let _slot = self.slot().await;
        let asset = source_asset(&id);
        let outcome = self.host_upload(&id, &project, &asset).await;
        if !matches!(outcome, Ok(Some(_))) {
            if let Err(e) = self.state.store.delete_asset(&project, &asset).await {
                tracing::warn!(source = %id, error = %e, "an unhosted upload's bytes were not removed");
            }
        }
        match outcome {
            Ok(Some((file, read))) => self.ready(id, "upload", file, read, Vec::new()).await,
            // Deleted before it was read: nothing to tell.
            Ok(None) => {}
            Err(e) => self.fail(&id, "upload", e).await,
        }
    }

    /// Reads and hosts an uploaded source; `None` if it was deleted.
    async fn host_upload(
        &self,
        id: &str,
        project: &str,
        asset: &str,
    ) -> Result<Option<(clipstream_storage::HostedFile, Read)>, String> {
        let store = &self.state.store;
        let source = match store.source(id) {
            Ok(Some(source)) => source,
            Ok(None) => return Err("the source record is gone".into()),
            Err(e) => return Err(public(e)),
        };
        if source.status == SourceStatus::Deleted {
            return Ok(None);
        }
        let path = store
            .asset_local_path(project, asset)
            .await
            .map_err(public)?;
        let read = web::block(move || read(&path, ""))
            .await
            .map_err(|e| e.to_string())??;
        let filename = format!("source.{}", read.extension);
        let file = hosting::host_existing(
            &self.state,
            &Self::account(&source),
            Hosting {
                asset,
                filename: &filename,
                render: None,
                source: Some(id),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(Some((file, read)))
    }

    /// Whether the owner deleted source `id` (re-read: work in flight
    /// checks before each step that would make something).
    fn is_deleted(&self, id: &str) -> bool {
        matches!(
            self.state.store.source(id),
            Ok(Some(s)) if s.status == SourceStatus::Deleted
        )
    }

    /// Removes rendition `rid`'s Edit, made after its source was deleted
    /// (the delete removed those it saw).
    async fn drop_movie(&self, source: &Source, rid: &str) {
        let project = match hosting::project(&self.state, &Self::account(source)).await {
            Ok(project) => project,
            Err(e) => {
                return tracing::warn!(rendition = rid, error = %e, "a deleted rendition's Edit stays")
            }
        };
        match self
            .state
            .store
            .delete_movie(&project.uid, &format!("{NAME_PREFIX}{rid}"))
            .await
        {
            Ok(()) | Err(clipstream_storage::Error::MovieNotFound(_)) => {}
            Err(e) => {
                tracing::warn!(rendition = rid, error = %e, "a deleted rendition's Edit stays")
            }
        }
    }

    /// Marks the source's unfinished renditions failed and tells each.
    async fn fail_renditions(&self, id: &str, error: &str) {
        tracing::warn!(source = id, error, "renditions failed");
        let mut failed = Vec::new();
        let updated = self
            .state
            .store
            .update_source(id, |s| {
                failed.clear();
                if s.status == SourceStatus::Deleted {
                    return Ok(());
                }
                for r in &mut s.renditions {
                    if matches!(r.status, SourceStatus::Queued | SourceStatus::Importing) {
                        r.status = SourceStatus::Failed;
                        r.error = Some(error.to_owned());
                        failed.push(r.id.clone());
                    }
                }
                Ok(())
            })
            .await;
        match updated {
            Ok(source) => {
                for rid in &failed {
                    self.callback(
                        &source,
                        "rendition",
                        rid,
                        SourceStatus::Failed,
                        None,
                        Some(error),
                    );
                }
            }
            Err(e) => {
                tracing::error!(source = id, error = %e, "failed renditions could not be recorded")
            }
        }
    }

    async fn ready(
        self,
        id: String,
        action: &str,
        file: clipstream_storage::HostedFile,
        read: Read,
        specs: Vec<RenditionSpec>,
    ) {
        let store = &self.state.store;
        let mut deleted = false;
        let updated = store
            .update_source(&id, |s| {
                deleted = s.status == SourceStatus::Deleted;
                if !deleted {
                    s.status = SourceStatus::Ready;
                    s.hosted = Some(file.id.clone());
                    s.url = Some(hosting::url(&s.base, &file));
                    s.kind = Some(read.kind.to_owned());
                    s.width = read.width;
                    s.height = read.height;
                    s.duration = read.duration;
                    s.fps = read.fps;
                }
                Ok(())
            })
            .await;
        let source = match updated {
            Ok(s) => s,
            Err(e) => return self.fail(&id, action, public(e)).await,
        };
        let account = Self::account(&source);
        if deleted {
            // Deleted while it was being fetched: what was just hosted goes.
            let _ = store.delete_hosted_file(&account, &file.id).await;
            return;
        }
        tracing::info!(source = %id, kind = read.kind, "source ingested");
        self.callback(
            &source,
            action,
            &id,
            SourceStatus::Ready,
            source.url.as_deref(),
            None,
        );
        for (spec, rendition) in specs.iter().zip(source.renditions.iter()) {
            // A delete stops the renditions not begun.
            if self.is_deleted(&id) {
                return;
            }
            self.rendition(&source, &read, spec, &rendition.id).await;
        }
    }

    /// The renditions of a ready source not made yet (after a restart).
    async fn renditions(self, source: Source, specs: Vec<RenditionSpec>) {
        let store = self.state.store.clone();
        let id = source.id.clone();
        if let Some(epoch) = cluster::hold(&store, cluster::SOURCE, &id).await {
            self.renditions_held(source, specs).await;
            cluster::release(&store, cluster::SOURCE, &id, epoch).await;
        }
    }

    async fn renditions_held(self, source: Source, specs: Vec<RenditionSpec>) {
        let _slot = self.slot().await;
        let Some(kind) = source.kind.as_deref().and_then(|k| {
            ["video", "image", "audio", "font"]
                .into_iter()
                .find(|known| *known == k)
        }) else {
            let kind = source.kind.as_deref().unwrap_or("none");
            return self
                .fail_renditions(
                    &source.id,
                    &format!("the source's kind ({kind}) is unknown"),
                )
                .await;
        };
        let extension = source
            .url
            .as_deref()
            .and_then(|u| u.rsplit_once('.'))
            .map(|(_, ext)| ext.to_owned())
            .unwrap_or_default();
        let read = Read {
            kind,
            extension,
            width: source.width,
            height: source.height,
            duration: source.duration,
            fps: source.fps,
        };
        for (spec, rendition) in specs.iter().zip(source.renditions.iter()) {
            if self.is_deleted(&source.id) {
                return;
            }
            if matches!(
                rendition.status,
                SourceStatus::Queued | SourceStatus::Importing
            ) {
                self.rendition(&source, &read, spec, &rendition.id).await;
            }
        }
    }

    async fn rendition(&self, source: &Source, read: &Read, spec: &RenditionSpec, rid: &str) {
        let store = &self.state.store;
        let started = Instant::now();
        let set = |status: SourceStatus, error: Option<String>| {
            store.update_source(&source.id, move |s| {
                if let Some(r) = s.renditions.iter_mut().find(|r| r.id == rid) {
                    if r.status != SourceStatus::Deleted {
                        r.status = status;
                        r.error = error.clone();
                    }
                }
                Ok(())
            })
        };
        let outcome = match set(SourceStatus::Importing, None).await {
            Ok(_) => self.make_rendition(source, read, spec, rid).await,
            Err(e) => Err(public(e)),
        };
        let execution_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, url, error) = match outcome {
            Ok((file, facts)) => {
                let url = hosting::url(&source.base, &file);
                let mut deleted = false;
                let done = store
                    .update_source(&source.id, |s| {
                        deleted = s.status == SourceStatus::Deleted;
                        if let Some(r) = s.renditions.iter_mut().find(|r| r.id == rid) {
                            if !deleted {
                                r.status = SourceStatus::Ready;
                                r.hosted = Some(file.id.clone());
                                r.url = Some(url.clone());
                                r.execution_ms = Some(execution_ms);
                                r.width = facts.width;
                                r.height = facts.height;
                                r.duration = facts.duration;
                                r.fps = facts.fps;
                            }
                        }
                        Ok(())
                    })
                    .await;
                if deleted {
                    let _ = store
                        .delete_hosted_file(&Self::account(source), &file.id)
                        .await;
                    self.drop_movie(source, rid).await;
                    return;
                }
                if let Err(e) = done {
                    // Hosted but not recorded: nothing is told (a `failed`
                    // now would contradict the `ready` the next start
                    // sends when it finds the file hosted).
                    tracing::error!(rendition = rid, error = %e, "a made rendition could not be recorded; the next start finishes it");
                    return;
                }
                (SourceStatus::Ready, Some(url), None)
            }
            Err(e) => {
                // Deleted meanwhile: its Edit, if made after the delete
                // removed those it saw, goes too; nothing is told.
                if self.is_deleted(&source.id) {
                    self.drop_movie(source, rid).await;
                    return;
                }
                if let Err(failed) = set(SourceStatus::Failed, Some(e.clone())).await {
                    // Told only once recorded; the next start tries again.
                    tracing::error!(rendition = rid, error = %failed, "a failed rendition could not be recorded");
                    return;
                }
                (SourceStatus::Failed, None, Some(e))
            }
        };
        tracing::info!(rendition = rid, ?status, "rendition finished");
        self.callback(
            source,
            "rendition",
            rid,
            status,
            url.as_deref(),
            error.as_deref(),
        );
    }

    /// Renders the rendition's Edit and hosts its output.
    async fn make_rendition(
        &self,
        source: &Source,
        read: &Read,
        spec: &RenditionSpec,
        rid: &str,
    ) -> Result<(clipstream_storage::HostedFile, Read), String> {
        let state = &self.state;
        let format = spec.format.unwrap_or(match read.kind {
            "image" if read.extension == "png" => Format::Png,
            "image" => Format::Jpg,
            "audio" => Format::Mp3,
            _ => Format::Mp4,
        });
        if read.kind != format.kind() {
            return Err(format!(
                "a {} source cannot be encoded as {}: video becomes video, image image, audio audio",
                read.kind,
                format.extension()
            ));
        }
        // The format was known only now (the source's kind decided it).
        if let Some(field) = spec.unused_by(format) {
            return Err(format!("{field} does not apply to {}", format.extension()));
        }
        let limits = state.config.edit_limits();
        let max = match format {
            Format::Jpg | Format::Png => (limits.max_image_width, limits.max_image_height),
            _ => (limits.max_video_width, limits.max_video_height),
        };
        let edit = rendition_edit(&source_asset(&source.id), read, spec, format, max);
        let text = edit.to_string();
        edit::parse_template(&text, &limits)
            .map_err(|e| format!("the rendition is not valid: {e}"))?;
        let account = Self::account(source);
        let project = hosting::project(state, &account)
            .await
            .map_err(|e| e.to_string())?;
        let movie = format!("{NAME_PREFIX}{rid}");
        // Checked again on both sides of making the Edit: a delete that
        // ran meanwhile did not see it (the caller removes it).
        let deleted = || "the source was deleted".to_owned();
        if self.is_deleted(&source.id) {
            return Err(deleted());
        }
        state
            .store
            .put_movie(&project.uid, &movie, text)
            .await
            .map_err(public)?;
        if self.is_deleted(&source.id) {
            return Err(deleted());
        }
        let request = state
            .store
            .put_render_request(&project.uid, MovieChoice::One(movie), Map::new(), 0, None)
            .await
            .map_err(public)?;
        let engine_format = match format {
            Format::Mp4 => edit::Format::Mp4,
            Format::Mp3 => edit::Format::Mp3,
            Format::Jpg => edit::Format::Jpg,
            Format::Png => edit::Format::Png,
        };
        let (_, finished) = self
            .renders
            .finished(&request.token, Deliverable::Movie(engine_format))
            .await
            .map_err(delivery_public)?;
        let open = finished.map_err(|e| format!("the render failed: {}", e.message))?;
        let name = spec.filename.clone().unwrap_or_else(|| rid.to_owned());
        let filename = format!("{name}.{}", format.extension());
        let asset = format!("{NAME_PREFIX}{rid}");
        let file = hosting::host_bytes(
            state,
            &account,
            Hosting {
                asset: &asset,
                filename: &filename,
                render: None,
                source: Some(&source.id),
            },
            &open.bytes,
        )
        .await
        .map_err(|e| e.to_string())?;
        let path = state
            .store
            .asset_local_path(&project.uid, &asset)
            .await
            .map_err(public)?;
        let facts = web::block(move || facts::read(&path, &filename))
            .await
            .map_err(|e| e.to_string())??;
        Ok((file, facts))
    }
}

/// Starts again what a stopped process left unfinished; returns how many
/// sources it took up. A PUT cut off by the stop gives its URL back; an
/// upload URL that expired unused is forgotten.
pub async fn resume(ctx: Ctx) -> Result<usize, clipstream_storage::Error> {
    let store = &ctx.state.store;
    let limits = ctx.state.config.edit_limits();
    let sizes = super::request::SizeLimits {
        video: (limits.max_video_width, limits.max_video_height),
        image: (limits.max_image_width, limits.max_image_height),
    };
    let mut resumed = 0;
    for source in store.all_sources()? {
        // In a cluster, most are some live node's work.
        if cluster::held_elsewhere(store, cluster::SOURCE, &source.id).await {
            continue;
        }
        resumed += usize::from(resume_one(&ctx, sizes, source).await?);
    }
    Ok(resumed)
}

/// Starts source `id` again on this node: its node stopped.
pub async fn take_over(ctx: Ctx, id: String) {
    let limits = ctx.state.config.edit_limits();
    let sizes = super::request::SizeLimits {
        video: (limits.max_video_width, limits.max_video_height),
        image: (limits.max_image_width, limits.max_image_height),
    };
    let source = match ctx.state.store.source(&id) {
        Ok(Some(source)) => source,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(source = %id, error = %e, "a source to take over could not be read");
            return;
        }
    };
    if let Err(e) = resume_one(&ctx, sizes, source).await {
        tracing::error!(source = %id, error = %e, "a source could not be taken over");
    }
}

/// Takes up unfinished source `source` where it stopped; `true` when a
/// task was started for it.
async fn resume_one(
    ctx: &Ctx,
    sizes: super::request::SizeLimits,
    source: Source,
) -> Result<bool, clipstream_storage::Error> {
    use clipstream_storage::GrantState;
    let store = &ctx.state.store;
    let mut resumed = false;
    {
        let grant = source.upload.as_ref().map(|g| g.state);
        let unfinished = source
            .renditions
            .iter()
            .any(|r| matches!(r.status, SourceStatus::Queued | SourceStatus::Importing));
        let specs = || -> Result<Vec<RenditionSpec>, String> {
            source
                .renditions
                .iter()
                .map(|r| {
                    super::request::stored_rendition(&r.transformation, sizes)
                        .map_err(|e| e.message)
                })
                .collect()
        };
        let expired = source
            .upload
            .as_ref()
            .is_some_and(|g| g.expires_ms < clipstream_storage::unix_now_ms());
        match (source.status, grant) {
            (SourceStatus::Queued | SourceStatus::Importing, Some(GrantState::Receiving)) => {
                store.release_upload(&source.id).await?;
            }
            (SourceStatus::Queued, Some(GrantState::Waiting)) if expired => {
                store.remove_source(&source).await?;
            }
            (SourceStatus::Queued | SourceStatus::Importing, Some(GrantState::Used)) => {
                let account = Ctx::account(&source);
                match hosting::project(&ctx.state, &account).await {
                    Ok(project) => {
                        actix_web::rt::spawn(ctx.clone().uploaded(source.id.clone(), project.uid));
                        resumed = true;
                    }
                    Err(e) => ctx.fail(&source.id, "upload", e.to_string()).await,
                }
            }
            (SourceStatus::Queued | SourceStatus::Importing, None) => {
                let (Some(input), Ok(specs)) = (source.input.clone(), specs()) else {
                    ctx.fail(
                        &source.id,
                        "fetch",
                        "the source cannot be fetched again".into(),
                    )
                    .await;
                    return Ok(false);
                };
                actix_web::rt::spawn(ctx.clone().fetch(source.id.clone(), input, specs));
                resumed = true;
            }
            (SourceStatus::Ready, _) if unfinished => match specs() {
                Ok(specs) => {
                    actix_web::rt::spawn(ctx.clone().renditions(source, specs));
                    resumed = true;
                }
                Err(e) => {
                    tracing::error!(source = %source.id, error = %e, "stored renditions unreadable");
                    ctx.fail_renditions(
                        &source.id,
                        "the rendition's stored settings cannot be read",
                    )
                    .await;
                }
            },
            _ => {}
        }
    }
    Ok(resumed)
}
