//! The Shotstack Ingest API (seed section "Ingest"): `POST sources` fetches
//! a URL into the account's storage with optional renditions, `GET
//! sources`, `GET|DELETE sources/{id}`, and `POST upload` answers a
//! signed, expiring URL that takes one plain `PUT` of the file
//! (`signed.rs`). Answers are JSON:API documents as the seed shows them
//! (`{"data": ...}`, errors `{"errors": [...]}`), not the Edit API's
//! envelope.
//!
//! A source's bytes are a hosted file (`hosting`) of the account's
//! `shotstack` project, so its `source` URL is served by `/hosted/...` and
//! usable in Edits; the background work is in `work.rs`.

mod error;
mod facts;
mod rendition;
pub mod request;
mod signed;
pub mod signed_url;
mod view;
mod work;

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Scope};
use clipstream_storage::{sources, GrantState, Rendition, Source, SourceStatus, UploadGrant};
use serde_json::{json, Value};

use super::auth::ApiKey;
use super::callback::Callbacks;
use super::envelope::iso_date;
use crate::delivery::Renders;
use crate::http::body::read_limited;
use crate::http::state::AppState;
use crate::net::guard::Guard;
use error::IngestError;
use facts::kind_of_extension;
use request::{parse_source, SizeLimits};
pub use work::{resume, take_over, Ctx};

/// Movies and assets of the `shotstack` project made by Ingest (a
/// rendition's one-clip Edit, a source's bytes) are named with this and
/// an id; the templates list leaves them out.
pub const NAME_PREFIX: &str = "ingest-";

/// The Ingest routes under `/ingest/{stage}`.
pub fn routes(scope: Scope) -> Scope {
    scope
        .route("/sources", web::post().to(create))
        .route("/sources", web::get().to(list))
        .route("/sources/{id}", web::get().to(get))
        .route("/sources/{id}", web::delete().to(delete))
        .route("/upload", web::post().to(upload))
}

/// The signed upload URL's public route (no credentials: the URL is the
/// capability).
pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.route(
        &format!("{}{{id}}", signed_url::PATH),
        web::put().to(signed::put),
    );
}

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(body)
}

fn ctx(
    state: &web::Data<AppState>,
    renders: &web::Data<Arc<Renders>>,
    callbacks: &web::Data<Arc<Callbacks>>,
) -> Ctx {
    Ctx {
        state: state.clone(),
        renders: renders.clone(),
        callbacks: callbacks.clone(),
    }
}

async fn create(
    req: HttpRequest,
    key: ApiKey,
    payload: web::Payload,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
    callbacks: web::Data<Arc<Callbacks>>,
) -> Result<HttpResponse, IngestError> {
    let body = read_limited(&req, payload, state.config.limits.max_json_bytes).await?;
    let limits = state.config.edit_limits();
    let request = parse_source(
        &body,
        SizeLimits {
            video: (limits.max_video_width, limits.max_video_height),
            image: (limits.max_image_width, limits.max_image_height),
        },
    )?;
    let guard = Guard {
        allow_private: state.config.fetch.allow_private,
        exempt: Vec::new(),
    };
    guard.check_url(&request.url).map_err(|reason| {
        IngestError::new(
            StatusCode::BAD_REQUEST,
            "invalid_url",
            format!("{} is not fetched: {reason}", request.url),
        )
        .at("url")
    })?;
    if let Some(callback) = &request.callback {
        guard.check_url(callback).map_err(|reason| {
            IngestError::new(
                StatusCode::BAD_REQUEST,
                "invalid_url",
                format!("callbacks are not sent to {callback}: {reason}"),
            )
            .at("callback")
        })?;
    }
    // The seed allows no change of kind (video to video, image to image,
    // audio to audio); when the URL's extension tells the kind, a wrong
    // format is refused now rather than failed later.
    if let Some(kind) = kind_of_extension(request.url.path()) {
        for (i, spec) in request.renditions.iter().enumerate() {
            if let Some(format) = spec.format {
                if format.kind() != kind {
                    return Err(IngestError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_field",
                        format!(
                            "a {kind} source cannot be encoded as {}: video becomes video, image image, audio audio",
                            format.extension()
                        ),
                    )
                    .at(format!("outputs.renditions[{i}].format")));
                }
            }
        }
    }
    let now = clipstream_storage::unix_now_ms();
    let id = sources::new_id();
    let source = Source {
        input: Some(request.url.to_string()),
        callback: request.callback.map(|u| u.to_string()),
        renditions: request
            .renditions
            .iter()
            .map(|spec| Rendition {
                id: sources::new_id(),
                status: SourceStatus::Queued,
                transformation: spec.raw.clone(),
                hosted: None,
                url: None,
                execution_ms: None,
                width: None,
                height: None,
                duration: None,
                fps: None,
                error: None,
            })
            .collect(),
        ..Source::queued(
            id.clone(),
            key.0 .0 .0.clone(),
            crate::http::base_url(&req, &state.config),
            now,
        )
    };
    state.store.insert_source(&source).await?;
    tracing::info!(source = %id, renditions = source.renditions.len(), "source queued");
    let work = ctx(&state, &renders, &callbacks);
    actix_web::rt::spawn(work.fetch(id.clone(), request.url.to_string(), request.renditions));
    Ok(answer(
        StatusCode::CREATED,
        json!({ "data": { "type": "source", "id": id } }),
    ))
}

/// The source `id` if the account owns it and it is visible; another
/// account's is not found, so ids tell nothing across accounts.
fn owned(state: &AppState, key: &ApiKey, id: &str) -> Result<Source, IngestError> {
    if !signed_url::is_source_id(id) {
        return Err(IngestError::not_found("source", id));
    }
    match state.store.source(id)? {
        Some(s) if s.account == key.0 .0 .0 && s.is_visible() => Ok(s),
        _ => Err(IngestError::not_found("source", id)),
    }
}

async fn list(
    req: HttpRequest,
    key: ApiKey,
    state: web::Data<AppState>,
) -> Result<HttpResponse, IngestError> {
    let base = crate::http::base_url(&req, &state.config);
    let sources: Vec<Value> = state
        .store
        .sources_of(&key.0 .0 .0)?
        .iter()
        .filter(|s| s.is_visible())
        .map(|s| view::source(s, &base))
        .collect();
    Ok(answer(StatusCode::OK, json!({ "data": sources })))
}

async fn get(
    req: HttpRequest,
    key: ApiKey,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, IngestError> {
    let source = owned(&state, &key, &id)?;
    let base = crate::http::base_url(&req, &state.config);
    Ok(answer(
        StatusCode::OK,
        json!({ "data": view::source(&source, &base) }),
    ))
}

/// Marks the source and its renditions deleted and stops serving their
/// files; work still running for it notices and hosts nothing more.
async fn delete(
    key: ApiKey,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, IngestError> {
    let source = owned(&state, &key, &id)?;
    let source = state
        .store
        .update_source(&source.id, |s| {
            s.status = SourceStatus::Deleted;
            for r in &mut s.renditions {
                r.status = SourceStatus::Deleted;
            }
            Ok(())
        })
        .await?;
    let account = &key.0 .0;
    for file in state.store.hosted_files_of(&source.id)? {
        match state.store.delete_hosted_file(account, &file.id).await {
            Ok(_) | Err(clipstream_storage::Error::HostedNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The renditions' Edits go too (their outputs are gone with the files).
    if !source.renditions.is_empty() {
        let project = super::hosting::project(&state, account).await?;
        for r in &source.renditions {
            match state
                .store
                .delete_movie(&project.uid, &format!("{NAME_PREFIX}{}", r.id))
                .await
            {
                Ok(())
                | Err(
                    clipstream_storage::Error::MovieNotFound(_)
                    | clipstream_storage::Error::ProjectNotFound(_),
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    tracing::info!(source = %source.id, "source deleted");
    Ok(HttpResponse::NoContent()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .finish())
}

/// `POST upload`: no body is read (the SDK sends none, or an empty one).
async fn upload(
    req: HttpRequest,
    key: ApiKey,
    state: web::Data<AppState>,
) -> Result<HttpResponse, IngestError> {
    let now = clipstream_storage::unix_now_ms();
    let account = &key.0 .0 .0;
    let max = state.config.shotstack.max_waiting_uploads;
    if state.store.waiting_uploads_of(account, now)? >= max {
        return Err(IngestError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_uploads",
            format!(
                "this account holds {max} upload URLs not yet used; PUT to them or let them expire before asking for more"
            ),
        ));
    }
    let expires = now / 1000 + state.config.shotstack.upload_url_secs;
    let id = sources::new_id();
    let base = crate::http::base_url(&req, &state.config);
    let source = Source {
        upload: Some(UploadGrant {
            expires_ms: expires * 1000,
            state: GrantState::Waiting,
        }),
        ..Source::queued(id.clone(), account.clone(), base.clone(), now)
    };
    state.store.insert_source(&source).await?;
    let url = signed::url(&state, &base, &id, expires)?;
    Ok(answer(
        StatusCode::OK,
        json!({ "data": { "type": "upload", "id": id, "attributes": {
            "id": id,
            "url": url,
            "expires": iso_date(expires * 1000),
        }}}),
    ))
}

/// How often [`sweep_uploads`] runs, and how long past its URL's expiry a
/// PUT may still show `receiving` (its body is cut at the expiry).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs for the life of the server: releases PUTs whose handler is gone
/// and forgets upload URLs that expired unused, so `POST upload` leaves no
/// records behind however often it is called.
pub async fn sweep_uploads(store: clipstream_storage::Store) {
    let mut every = actix_web::rt::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        let now = clipstream_storage::unix_now_ms();
        match store
            .sweep_signed_uploads(now, SWEEP_EVERY.as_millis() as u64)
            .await
        {
            Ok(swept) if swept == Default::default() => {}
            Ok(swept) => tracing::info!(
                released = swept.released,
                removed = swept.removed,
                "signed uploads swept"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping signed uploads failed"),
        }
    }
}
