//! Render requests (CONTRACT section 4): `POST /v2/render/{uid}` checks the
//! movie(s) and params and answers the token that `GET /render/<token>.<ext>`
//! plays.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::edit::{self, Format};
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::MovieChoice;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::owned_project;
use crate::delivery::Renders;
use crate::http::auth::Account;
use crate::http::body::read_limited;
use crate::http::error::ApiError;
use crate::http::names::plain_name;
use crate::http::resource;
use crate::http::state::AppState;
use crate::upload::Uploads;

/// The file extensions a render can be asked for, and `*` for "any other".
pub const EXTENSIONS: &[&str] = &["mp4", "webm", "gif", "jpg", "png", "bmp", "mp3", "m3u8"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    // POST with a project uid asks for a render; GET with `<token>.<ext>`
    // is the video (the route shape is ImpossibleFX's).
    // DELETE with a token drops the token's outputs.
    cfg.service(
        resource("/v2/render/{uid}", "GET, HEAD, POST, DELETE")
            .route(web::post().to(create))
            .route(web::get().to(super::render::get))
            .route(web::head().to(super::render::get))
            .route(web::delete().to(delete)),
    )
    // The studio's renders page: the tokens a project has issued.
    .service(resource("/v1/list/render/{uid}", "GET").route(web::get().to(list)));
}

/// A page of the renders list unless the client asks for another size.
const LIST_LIMIT: usize = 50;
/// The largest page: a page is read whole, so its size is bounded.
const LIST_MAX: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// A project's render requests, newest first, as they were asked, a page
/// at a time (`?limit=`, `?cursor=` the `next` of the page before), with
/// how many there are in all.
async fn list(
    state: web::Data<AppState>,
    account: Account,
    uid: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    owned_project(&state, &account, &uid)?;
    let limit = match query.limit.as_deref() {
        None => LIST_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::bad_param(
                    "limit",
                    format!("limit={raw:?} is not a number from 1 to {LIST_MAX}"),
                )
            })?,
    };
    let cursor = query.cursor.as_deref();
    if let Some(c) = cursor {
        if !clipstream_storage::renders::is_cursor_shaped(c) {
            return Err(ApiError::bad_param(
                "cursor",
                "cursor is not the `next` of an earlier page",
            ));
        }
    }
    let page = state.store.render_requests_page(&uid, cursor, limit)?;
    let renders: Vec<Value> = page
        .requests
        .into_iter()
        .map(|r| {
            json!({
                "token": r.token,
                "movie": r.movie,
                "params": r.params,
                "created": r.created,
                "uploads": r.uploads.len(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "renders": renders,
        "count": state.store.render_request_count(&uid)?,
        "next": page.next,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    movie: MovieChoice,
    #[serde(default)]
    params: Map<String, Value>,
    /// Segments rendered at once; not given: one per core.
    #[serde(default)]
    parallel: Option<u32>,
    #[serde(default)]
    routingkey: Option<String>,
    #[serde(default)]
    upload: Option<Value>,
    /// A Clipstream extension: render the `.mp4` output now, in the
    /// background, rather than on the first GET.
    #[serde(default)]
    prerender: bool,
}

async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
    uploads: web::Data<Arc<Uploads>>,
    account: Account,
    uid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    owned_project(&state, &account, &uid)?;
    let body = read_limited(&req, payload, state.config.limits.max_json_bytes).await?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let request: Request =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::BadBody {
            message: format!("{}: {}", e.path(), e.inner()),
        })?;
    if request.parallel == Some(0) {
        return Err(ApiError::bad_param(
            "parallel",
            "parallel must be at least 1",
        ));
    }
    check_extensions(&request.movie)?;
    if let Some(key) = &request.routingkey {
        let known = renders.routing_keys().await?;
        if !known.contains(key) {
            let message = if known.is_empty() {
                format!("routing key {key:?} is not known: no node of this installation has routing keys (cluster.routing_keys)")
            } else {
                format!(
                    "routing key {key:?} is not known; known keys: {}",
                    known.join(", ")
                )
            };
            return Err(ApiError::bad_param("routingkey", message));
        }
    }
    // Every movie the token can play must accept these params, so that a
    // mistake is a 400 now and not a failed video in someone's inbox.
    let mut movies = Vec::new();
    for name in request.movie.names() {
        let name = plain_name("movie", name, state.config.limits.max_name_bytes)?;
        movies.push(state.store.movie(&uid, &name)?);
    }
    let limits = state.config.edit_limits();
    for movie in &movies {
        edit::fill(&movie.body, &request.params, &limits)?;
    }
    let tasks = match &request.upload {
        Some(upload) => uploads
            .parse(upload)
            .map_err(|e| ApiError::bad_param(e.path, e.message))?,
        None => Vec::new(),
    };
    for (i, task) in tasks.iter().enumerate() {
        if request.movie.for_extension(&task.extension).is_none() {
            return Err(ApiError::bad_param(
                format!("upload[{i}].extension"),
                format!("the movie hash names no movie for .{}", task.extension),
            ));
        }
    }
    let stored = state
        .store
        .put_render_request(
            &uid,
            request.movie,
            request.params,
            // 0: not given (the server's default).
            request.parallel.unwrap_or(0),
            request.routingkey,
        )
        .await?;
    tracing::info!(uid = %uid, token = %stored.token, prerender = request.prerender, uploads = tasks.len(), "render requested");
    if request.prerender {
        renders
            .prerender(&stored.token, Deliverable::Movie(Format::Mp4))
            .await?;
    }
    // Each upload renders its output in the background (or joins the
    // render of it underway) and sends it once it is in the cache.
    if request.upload.is_some() {
        uploads.submit(&stored, &tasks).await?;
    }
    let known: Vec<Value> = tasks
        .iter()
        .map(|t| t.destination.known_at_once())
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "token": stored.token, "uploads": known })))
}

/// `DELETE /v2/render/<token>`: its project's owner drops the token's
/// cached outputs and stops its renders; the token stays valid, and its
/// next GET renders again.
async fn delete(
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
    account: Account,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let request = state.store.render_request(&token)?;
    owned_project(&state, &account, &request.project)?;
    let dropped = renders.forget(&token).await?;
    tracing::info!(token = %token, dropped, "render outputs deleted");
    Ok(HttpResponse::Ok().json(json!({ "token": request.token, "deleted": dropped })))
}

fn check_extensions(choice: &MovieChoice) -> Result<(), ApiError> {
    if let MovieChoice::ByExtension(map) = choice {
        if map.is_empty() {
            return Err(ApiError::bad_param(
                "movie",
                "the movie hash names no movie",
            ));
        }
        if let Some(bad) = map
            .keys()
            .find(|k| *k != "*" && !EXTENSIONS.contains(&k.as_str()))
        {
            return Err(ApiError::bad_param(
                "movie",
                format!(
                    "{bad:?} is not an output extension; use one of {} or \"*\"",
                    EXTENSIONS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
