//! `POST edit/{stage}/render` and `GET edit/{stage}/render/{id}`: a
//! Shotstack Edit rendered on the ordinary pipeline.
//!
//! The Edit is stored as the movie `render-<id>` of the account's
//! `shotstack` project (hidden from the templates list) and gets an
//! ordinary render request, so it runs on the same queue, cache and job
//! records as every token. A record (`storage::shotstack_renders`) keeps
//! what Shotstack's answers need; a background task per render waits for
//! the output (and poster and thumbnail), hosts them on the Serve API
//! (the `shotstack` destination), waits for the `s3` and `mux` uploads,
//! records how it ended and calls the `callback` URL.

use std::collections::HashSet;
use std::future::{ready, Ready};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use clipstream_actors::engine::edit::{Destination, Format, Tpl};
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::{
    unix_now_ms, AccountId, JobState, MovieChoice, RenderOutcome, ShotstackRender,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::auth::ApiKey;
use super::callback::{Callbacks, Notice};
use super::edit_input::{self, Checked};
use super::envelope::{created, iso_date, ok, Failure};
use super::hosting::{self, Hosting};
use crate::cluster;
use crate::delivery::Renders;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::upload::Uploads;

/// Movies holding a render's Edit are named this and the render id; the
/// templates list leaves them out.
pub const MOVIE_PREFIX: &str = "render-";

/// Longest wait for a render's uploads after its output is ready:
/// the upload service's own retries end long before.
const UPLOAD_WAIT: Duration = Duration::from_secs(6 * 3600);

/// What a render's request and its background task use.
#[derive(Clone)]
pub struct Services {
    pub state: web::Data<AppState>,
    pub renders: Arc<Renders>,
    pub uploads: Arc<Uploads>,
    pub callbacks: Arc<Callbacks>,
}

impl FromRequest for Services {
    type Error = Failure;
    type Future = Ready<Result<Services, Failure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let missing = || {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the render services are not set up",
            )
        };
        let services = (|| {
            Some(Services {
                state: req.app_data::<web::Data<AppState>>()?.clone(),
                renders: req.app_data::<web::Data<Arc<Renders>>>()?.get_ref().clone(),
                uploads: req.app_data::<web::Data<Arc<Uploads>>>()?.get_ref().clone(),
                callbacks: req
                    .app_data::<web::Data<Arc<Callbacks>>>()?
                    .get_ref()
                    .clone(),
            })
        })();
        ready(services.ok_or_else(missing))
    }
}

/// A 201 in Shotstack's envelope.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    key: ApiKey,
    services: Services,
) -> Result<HttpResponse, Failure> {
    let text = edit_input::read_text(&req, payload, &services.state).await?;
    let base = crate::http::base_url(&req, &services.state.config);
    let id = queue(
        &services,
        &key.0 .0,
        &base,
        Submission {
            data: text.clone(),
            movie: text,
            params: Map::new(),
        },
    )
    .await?;
    Ok(created(queued(&id)))
}

pub fn queued(id: &str) -> Value {
    json!({ "message": "Render Successfully Queued", "id": id })
}

/// A render to queue.
pub struct Submission {
    /// The Edit as the client sent it, for `data`.
    pub data: String,
    /// The movie to store: the Edit, placeholders and merge fields and all.
    pub movie: String,
    /// Merge fields given beside the movie (a template render's), over
    /// its own.
    pub params: Map<String, Value>,
}

/// Checks, stores and starts a render; returns its id.
pub async fn queue(
    services: &Services,
    account: &AccountId,
    base: &str,
    submission: Submission,
) -> Result<String, Failure> {
    let state = &services.state;
    let checked = edit_input::check(state, &submission.movie, &submission.params, "")?;
    let id = uuid::Uuid::new_v4().to_string();
    let ext = checked.format.extension();
    let plan = destinations(&checked, &id, ext, &state.config.upload.aws_s3host)?;
    let tasks = if plan.uploads.is_empty() {
        Vec::new()
    } else {
        let list = Value::Array(plan.uploads.iter().map(|(_, t)| t.clone()).collect());
        services.uploads.parse(&list).map_err(|e| {
            // `upload[i].destination.<field>` → the destination it came from.
            let index = e
                .path
                .strip_prefix("upload[")
                .and_then(|rest| rest.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| plan.uploads.get(i))
                .map_or(0, |(at, _)| *at);
            edit_input::bad(format!("output.destinations[{index}]"), e.message)
        })?
    };
    let merged = serde_json::to_string(&checked.filled).map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the Edit could not be written: {e}"),
        )
    })?;
    let project = hosting::project(state, account).await?;
    let movie = format!("{MOVIE_PREFIX}{id}");
    let store = &state.store;
    store
        .put_movie(&project.uid, &movie, submission.movie)
        .await
        .map_err(ApiError::from)?;
    let request = store
        .put_render_request(
            &project.uid,
            MovieChoice::One(movie.clone()),
            submission.params,
            // The server's default: segments one per core.
            0,
            None,
        )
        .await
        .map_err(ApiError::from)?;
    let now = unix_now_ms();
    let callback = checked
        .filled
        .callback
        .as_ref()
        .and_then(Tpl::value)
        .cloned();
    let record = ShotstackRender {
        id: id.clone(),
        account: account.0.clone(),
        project: project.uid.clone(),
        movie,
        token: request.token.clone(),
        extension: ext.to_owned(),
        poster: checked.poster,
        thumbnail: checked.thumbnail,
        data: submission.data,
        merged,
        callback,
        base_url: base.to_owned(),
        hosted: plan.hosted,
        uploads: plan.uploads.iter().map(|(at, _)| *at).collect(),
        outcome: None,
        error: None,
        duration: Some(checked.duration),
        render_ms: None,
        url: None,
        poster_url: None,
        thumbnail_url: None,
        created_ms: now,
        updated_ms: now,
    };
    // The output first, so that an upload joins its render rather than
    // the other way round; then the uploads, then the record, which makes
    // the render known. A failure on the way (a full queue is a 503)
    // leaves nothing behind: no record, no movie, no render running.
    let started = async {
        services
            .renders
            .prerender(&request.token, Deliverable::Movie(checked.format))
            .await
            .map_err(ApiError::from)?;
        if !tasks.is_empty() {
            services.uploads.submit(&request, &tasks).await?;
        }
        store.put_shotstack_render(&record).await?;
        Ok::<(), ApiError>(())
    };
    if let Err(e) = started.await {
        abandon(services, &project.uid, &record.movie, &request.token).await;
        return Err(e.into());
    }
    tracing::info!(render = %id, token = %request.token, format = ext, uploads = tasks.len(), "shotstack render queued");
    spawn(services.clone(), id.clone());
    Ok(id)
}

/// Undoes a render that could not be queued whole: its render is
/// stopped and any output dropped; without its movie its token resolves
/// to nothing, so its uploads cannot send anything.
async fn abandon(services: &Services, project: &str, movie: &str, token: &str) {
    // The render first: it is found through the movie.
    if let Err(e) = services.renders.forget(token).await {
        tracing::warn!(error = %e, "the render of a render that was not queued was not stopped");
    }
    if let Err(e) = services.state.store.delete_movie(project, movie).await {
        tracing::warn!(movie, error = %e, "the movie of a render that was not queued stays");
    }
}

/// Where a render's outputs go.
struct Destinations {
    /// The `shotstack` destination: hosted on the Serve API.
    hosted: bool,
    /// ImpossibleFX upload tasks (`s3`, `mux`), each with its index in
    /// `output.destinations`.
    uploads: Vec<(usize, Value)>,
}

/// `output.destinations`: `shotstack` unless excluded; `s3` and `mux`
/// through the upload service with the server's own credentials
/// (`upload.aws_*`, `upload.mux_*`).
fn destinations(
    checked: &Checked,
    id: &str,
    ext: &str,
    own_s3host: &str,
) -> Result<Destinations, Failure> {
    let mut plan = Destinations {
        hosted: true,
        uploads: Vec::new(),
    };
    let output = checked.filled.output.value();
    let Some(list) = output
        .and_then(|o| o.destinations.as_ref())
        .and_then(Tpl::value)
    else {
        return Ok(plan);
    };
    let path = |i: usize| format!("output.destinations[{i}]");
    for (i, d) in list.iter().enumerate() {
        let d = d
            .value()
            .ok_or_else(|| edit_input::bad(path(i), "the destination is still a placeholder"))?;
        match d {
            Destination::Shotstack(s) => {
                let exclude = s.exclude.as_ref().and_then(Tpl::value).copied();
                if exclude == Some(true) {
                    plan.hosted = false;
                }
            }
            Destination::Mux(mux) => {
                // A Mux direct upload with the server's own token
                // (`upload.mux_*`), through the upload service.
                let mut destination = json!({ "type": "mux" });
                if let Some(options) = mux.options.as_ref().and_then(Tpl::value) {
                    if let Some(list) = options.playback_policy.as_ref().and_then(Tpl::value) {
                        let policies: Vec<Value> = list
                            .iter()
                            .filter_map(Tpl::value)
                            .map(|p| json!(p))
                            .collect();
                        destination["playback_policy"] = Value::Array(policies);
                    }
                    if let Some(pass) = options.passthrough.as_ref().and_then(Tpl::value) {
                        destination["passthrough"] = json!(pass);
                    }
                }
                plan.uploads
                    .push((i, json!({ "extension": ext, "destination": destination })));
            }
            Destination::S3(s3) => {
                let options =
                    s3.options.as_ref().and_then(Tpl::value).ok_or_else(|| {
                        edit_input::bad(format!("{}.options", path(i)), "required")
                    })?;
                let text = |t: &Option<Tpl<String>>| t.as_ref().and_then(Tpl::value).cloned();
                let bucket = options.bucket.value().cloned().unwrap_or_default();
                let region = options.region.value().cloned().unwrap_or_default();
                // Shotstack's key: `<prefix>/<filename or render id>.<ext>`.
                let name = text(&options.filename).unwrap_or_else(|| id.to_owned());
                let key = match text(&options.prefix) {
                    Some(prefix) if !prefix.is_empty() => {
                        format!("{}/{name}.{ext}", prefix.trim_end_matches('/'))
                    }
                    _ => format!("{name}.{ext}"),
                };
                let mut destination = json!({
                    "type": "s3",
                    "bucket": bucket,
                    "filename": key,
                    "aws_use_policy": true,
                    "acl": text(&options.acl).unwrap_or_else(|| "private".to_owned()),
                    "contenttype": checked.format.content_type(),
                });
                // Without an S3 host of the server's own, the region's AWS
                // endpoint; with one, that host decides, and a region it
                // is not in is refused rather than ignored.
                if own_s3host.is_empty() {
                    if !region.is_empty() {
                        destination["s3host"] = json!(format!("s3.{region}.amazonaws.com"));
                    }
                } else {
                    let served = crate::upload::task::region_of_s3host(own_s3host);
                    if !region.is_empty() && region != served {
                        return Err(edit_input::bad(
                            format!("{}.options.region", path(i)),
                            format!("this server sends S3 files to {own_s3host} (upload.aws_s3host), in region {served}; give that region"),
                        ));
                    }
                }
                let task = json!({ "extension": ext, "destination": destination });
                plan.uploads.push((i, task));
            }
        }
    }
    // Shotstack sends a poster and a thumbnail to S3 beside the video;
    // here they are hosted only, so asking for one where it cannot go is
    // a 501, not a file silently missing from the bucket.
    let to_s3 = list
        .iter()
        .any(|d| matches!(d.value(), Some(Destination::S3(_))));
    if (!plan.hosted || to_s3) && (checked.poster || checked.thumbnail) {
        let what = if checked.poster {
            "poster"
        } else {
            "thumbnail"
        };
        let why = if to_s3 {
            "is not sent to S3 here (only the video is); leave out output.{what} or the s3 destination"
        } else {
            "is hosted on the shotstack destination only; do not exclude it, or leave out output.{what}"
        };
        return Err(Failure::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("a {what} {}", why.replace("{what}", what)),
        )
        .with_param(format!("output.{what}")));
    }
    Ok(plan)
}

#[derive(Deserialize)]
pub struct Flags {
    data: Option<String>,
    merged: Option<String>,
}

/// A boolean query flag in any case (`True`, `false`).
fn flag(name: &str, value: &Option<String>) -> Result<bool, Failure> {
    match value.as_deref() {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{name} must be true or false, not {v:?}"),
        )
        .with_param(name)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderResponse<'a> {
    id: &'a str,
    owner: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    render_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    // Always present, null until there is one: the seed's `string¦null`.
    poster: Option<String>,
    thumbnail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<RawValue>>,
    created: String,
    updated: String,
}

pub async fn get(
    req: HttpRequest,
    key: ApiKey,
    services: Services,
    id: web::Path<String>,
    flags: web::Query<Flags>,
) -> Result<HttpResponse, Failure> {
    let id = id.into_inner();
    let data = flag("data", &flags.data)?;
    let merged = flag("merged", &flags.merged)?;
    let record = owned(&services, &key.0 .0, &id)?;
    let (status, error) = match record.outcome {
        Some(RenderOutcome::Done) => ("done", None),
        Some(RenderOutcome::Failed) => ("failed", record.error.clone()),
        None => {
            // A restart ends the task; whoever looks next starts it again.
            spawn(services.clone(), record.id.clone());
            running_status(&services, &record)?
        }
    };
    let echoed = if !data {
        None
    } else {
        let text = if merged { &record.merged } else { &record.data };
        Some(RawValue::from_string(text.clone()).map_err(|e| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the stored Edit is unreadable: {e}"),
            )
        })?)
    };
    let done = record.outcome == Some(RenderOutcome::Done);
    // This server's URLs are told on the base of the request asking, which
    // may differ from the one the render was asked on (another name, a
    // new port); an S3 URL is left as it is.
    let base = crate::http::base_url(&req, &services.state.config);
    let here = |url: &Option<String>| -> Option<String> {
        let url = url.as_deref().filter(|_| done)?;
        Some(match url.strip_prefix(record.base_url.as_str()) {
            Some(rest) if rest.starts_with('/') => format!("{base}{rest}"),
            _ => url.to_owned(),
        })
    };
    Ok(ok(
        "OK",
        RenderResponse {
            id: &record.id,
            owner: &record.account,
            status,
            error,
            duration: record.duration,
            render_time: record.render_ms.filter(|_| done),
            url: here(&record.url),
            poster: here(&record.poster_url),
            thumbnail: here(&record.thumbnail_url),
            data: echoed,
            created: iso_date(record.created_ms),
            updated: iso_date(record.updated_ms),
        },
    ))
}

/// The render `id` if `account` made it; anything else is not found, so
/// another account's ids are indistinguishable from unknown ones.
fn owned(services: &Services, account: &AccountId, id: &str) -> Result<ShotstackRender, Failure> {
    let not_found = || Failure::not_found("render", id);
    let record = services
        .state
        .store
        .shotstack_render(id)
        .map_err(ApiError::from)?
        .ok_or_else(not_found)?;
    if record.account != account.0 {
        return Err(not_found());
    }
    Ok(record)
}

/// Where a render whose task has not ended stands: its main output's job,
/// and `saving` once that is done while the outputs are hosted and sent.
fn running_status(
    services: &Services,
    record: &ShotstackRender,
) -> Result<(&'static str, Option<String>), Failure> {
    let what = deliverable(record);
    match services.renders.status(&record.token, what) {
        Ok(s) => Ok(match s.state {
            JobState::Queued => ("queued", None),
            JobState::Fetching => ("fetching", None),
            JobState::Rendering => ("rendering", None),
            JobState::Saving | JobState::Done => ("saving", None),
            JobState::Failed => ("failed", s.error.map(|e| e.message)),
        }),
        // The store could not be read: not an answer about the render.
        Err(crate::delivery::DeliveryError::Store(e)) => Err(ApiError::from(e).into()),
        // The Edit cannot be planned any more (an asset it reads is gone):
        // the render cannot end well.
        Err(e) => Ok(("failed", Some(ApiError::from(e).public_message()))),
    }
}

fn deliverable(record: &ShotstackRender) -> Deliverable {
    Deliverable::Movie(Format::from_extension(&record.extension).unwrap_or(Format::Mp4))
}

/// Renders with a background task in this process.
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

fn running() -> std::sync::MutexGuard<'static, HashSet<String>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the background task of the render `id` unless one runs.
fn spawn(services: Services, id: String) {
    if !running().insert(id.clone()) {
        return;
    }
    tokio::spawn(async move {
        let store = services.state.store.clone();
        if let Some(epoch) = cluster::hold(&store, cluster::SHOTSTACK_RENDER, &id).await {
            // Read again: a caller may hold a copy read before another
            // task recorded the end (and let go of the id), and a render
            // is delivered and called back once.
            match store.shotstack_render(&id) {
                Ok(Some(fresh)) if fresh.outcome.is_none() => finish(&services, fresh).await,
                Ok(_) => {}
                Err(e) => tracing::error!(render = %id, error = %e, "a render could not be read"),
            }
            cluster::release(&store, cluster::SHOTSTACK_RENDER, &id, epoch).await;
        }
        running().remove(&id);
    });
}

/// Starts again render `id` of a node that stopped.
pub fn take_over(services: &Services, id: String) {
    spawn(services.clone(), id);
}

/// At start: the tasks of renders the last process did not finish (their
/// jobs are resumed by `Renders::resume`, their uploads by
/// `Uploads::resume`; these wait for both, host, and call back).
pub fn resume(services: &Services) -> Result<usize, ApiError> {
    let pending = services.state.store.unfinished_shotstack_renders()?;
    let n = pending.len();
    for record in pending {
        spawn(services.clone(), record.id);
    }
    Ok(n)
}

/// Waits for the outputs, delivers them, records the end and calls back.
async fn finish(services: &Services, mut record: ShotstackRender) {
    let outcome = deliver(services, &mut record).await;
    let now = unix_now_ms();
    match outcome {
        Ok(()) => {
            record.outcome = Some(RenderOutcome::Done);
            record.error = None;
        }
        Err(message) => {
            tracing::warn!(render = %record.id, error = %message, "shotstack render failed");
            record.outcome = Some(RenderOutcome::Failed);
            record.error = Some(message);
        }
    }
    record.updated_ms = now;
    if let Err(e) = services.state.store.put_shotstack_render(&record).await {
        // Left unfinished: the next look at it runs the task again.
        tracing::error!(render = %record.id, error = %e, "a render's end could not be recorded");
        return;
    }
    if let Some(url) = &record.callback {
        services
            .callbacks
            .send(url.clone(), callback_body(&record, now));
    }
}

/// The callback's body: Shotstack's documented fields, none empty.
fn callback_body(record: &ShotstackRender, completed_ms: u64) -> Value {
    let done = record.outcome == Some(RenderOutcome::Done);
    Notice {
        kind: "edit",
        action: "render",
        id: &record.id,
        owner: &record.account,
        status: if done { "done" } else { "failed" },
        url: record.url.as_deref().filter(|_| done),
        error: record.error.as_deref(),
        source: None,
        completed_ms,
    }
    .body()
}

async fn deliver(services: &Services, record: &mut ShotstackRender) -> Result<(), String> {
    let main = deliverable(record);
    let bytes = output(services, record, main).await?;
    record.render_ms = Some(unix_now_ms().saturating_sub(record.created_ms) as f64);
    let account = AccountId(record.account.clone());
    if record.hosted {
        let filename = format!("{}.{}", record.id, record.extension);
        record.url = Some(host(services, record, &account, &filename, &bytes).await?);
        if record.poster {
            let poster = output(services, record, Deliverable::Poster).await?;
            let name = format!("{}-poster.jpg", record.id);
            record.poster_url = Some(host(services, record, &account, &name, &poster).await?);
        }
        if record.thumbnail {
            let thumb = output(services, record, Deliverable::Thumbnail).await?;
            let name = format!("{}-thumb.jpg", record.id);
            record.thumbnail_url = Some(host(services, record, &account, &name, &thumb).await?);
        }
    }
    if !record.uploads.is_empty() {
        let sent = uploads_done(services, record).await?;
        // Without hosting, the first upload's URL is where the file is.
        if record.url.is_none() {
            record.url = sent;
        }
    }
    // Neither hosted nor at a URL of an upload (Mux names an asset): the
    // render's own token URL, served from the cache (and rendered again
    // should it leave it), as Shotstack's temporary URL is.
    if record.url.is_none() {
        record.url = Some(format!(
            "{}/render/{}.{}",
            record.base_url, record.token, record.extension
        ));
    }
    Ok(())
}

/// The bytes of `what`, rendered if need be.
async fn output(
    services: &Services,
    record: &ShotstackRender,
    what: Deliverable,
) -> Result<bytes::Bytes, String> {
    match services.renders.finished(&record.token, what).await {
        Ok((_, Ok(open))) => Ok(open.bytes.clone()),
        Ok((_, Err(failure))) => Err(failure.message),
        Err(e) => Err(ApiError::from(e).public_message()),
    }
}

async fn host(
    services: &Services,
    record: &ShotstackRender,
    account: &AccountId,
    filename: &str,
    bytes: &[u8],
) -> Result<String, String> {
    let asset = format!("{MOVIE_PREFIX}{filename}");
    let file = hosting::host_bytes(
        &services.state,
        account,
        Hosting {
            asset: &asset,
            filename,
            render: Some(&record.id),
            source: None,
        },
        bytes,
    )
    .await
    .map_err(|e| format!("{filename} could not be hosted: {e}"))?;
    Ok(hosting::url(&record.base_url, &file))
}

/// Waits until every upload of the render has ended; the first URL one
/// answered (S3's; Mux names an asset, not a URL), or the first failure
/// named by its destination.
async fn uploads_done(
    services: &Services,
    record: &ShotstackRender,
) -> Result<Option<String>, String> {
    let deadline = std::time::Instant::now() + UPLOAD_WAIT;
    loop {
        let statuses = services
            .uploads
            .statuses(&record.token)
            .map_err(|e| format!("the uploads could not be read: {e}"))?;
        let ended = statuses
            .iter()
            .all(|s| s["state"] == "done" || s["state"] == "failed");
        if ended && statuses.len() >= record.uploads.len() {
            for (s, at) in statuses.iter().zip(&record.uploads) {
                if s["state"] == "failed" {
                    let why = s["error"].as_str().unwrap_or("failed");
                    let kind = s["type"].as_str().unwrap_or("upload");
                    return Err(format!("output.destinations[{at}] ({kind}): {why}"));
                }
            }
            return Ok(statuses
                .iter()
                .find_map(|s| s["url"].as_str())
                .map(str::to_owned));
        }
        if std::time::Instant::now() > deadline {
            return Err("the uploads did not end in time".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
