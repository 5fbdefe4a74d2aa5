//! `PUT /ingest-upload/<id>?expires=…&signature=…`: the signed URL of
//! `POST ingest/{stage}/upload`, which takes the file's raw bytes with no
//! other credentials (as S3's presigned URLs that Shotstack hands out do).
//!
//! The URL is checked before a byte is read: a signature that does not
//! match, or a URL past its expiry, is a 403; a URL whose PUT completed is
//! a 409. The body streams into the blob store, bounded by
//! `limits.max_asset_bytes`; a PUT cut short leaves nothing behind and
//! gives the URL back for another try until it expires.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_storage::{unix_now_ms, Claim, GrantState, SourceStatus};

use super::super::callback::Callbacks;
use super::super::hosting;
use super::error::IngestError;
use super::signed_url::{hex, is_source_id, parse_query, signed_message, PATH};
use super::work::{source_asset, Ctx};
use crate::delivery::Renders;
use crate::http::body::stream_to;
use crate::http::state::AppState;

/// The signed URL of source `id`, good until `expires` (unix seconds).
pub fn url(state: &AppState, base: &str, id: &str, expires: u64) -> Result<String, IngestError> {
    let key = state.store.ingest_upload_key()?;
    let mac = blake3::keyed_hash(&key, signed_message(id, expires).as_bytes());
    Ok(format!(
        "{base}{PATH}{id}?expires={expires}&signature={}",
        hex(mac.as_bytes())
    ))
}

fn forbidden(detail: impl Into<String>) -> IngestError {
    IngestError::new(StatusCode::FORBIDDEN, "forbidden", detail)
}

pub async fn put(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    renders: web::Data<std::sync::Arc<Renders>>,
    callbacks: web::Data<std::sync::Arc<Callbacks>>,
) -> Result<HttpResponse, IngestError> {
    let id = id.into_inner();
    if !is_source_id(&id) {
        return Err(IngestError::not_found("upload", &id));
    }
    let query = parse_query(req.query_string()).map_err(forbidden)?;
    let key = state.store.ingest_upload_key()?;
    let expected = blake3::keyed_hash(&key, signed_message(&id, query.expires).as_bytes());
    // blake3::Hash compares in constant time.
    if expected != blake3::Hash::from(query.signature) {
        return Err(forbidden("the upload URL's signature does not match"));
    }
    let now = unix_now_ms();
    if now / 1000 > query.expires {
        return Err(forbidden("the upload URL has expired; ask for another"));
    }
    let source = match state.store.claim_upload(&id, now).await? {
        Claim::Granted(source) => source,
        Claim::NotFound => return Err(IngestError::not_found("upload", &id)),
        Claim::Expired => return Err(forbidden("the upload URL has expired; ask for another")),
        Claim::AlreadyUsed => {
            return Err(IngestError::new(
                StatusCode::CONFLICT,
                "upload_used",
                "this upload URL has already received its file; ask for another",
            ))
        }
    };
    let account = clipstream_storage::AccountId(source.account.clone());
    let received = async {
        let limit = state.config.limits.max_asset_bytes;
        let writer = state.store.new_body(limit).await?;
        let body = stream_to(&req, payload, writer, limit).await?;
        let project = hosting::project(&state, &account).await?;
        // Typed once it is read (`work::Ctx::uploaded`): `curl -T`, as
        // Shotstack's docs show, sends no Content-Type.
        state
            .store
            .put_asset(
                &project.uid,
                &source_asset(&id),
                "application/octet-stream",
                body,
            )
            .await?;
        Ok::<_, IngestError>(project.uid)
    }
    .await;
    let project = match received {
        Ok(project) => project,
        Err(e) => {
            if let Err(release) = state.store.release_upload(&id).await {
                tracing::error!(source = %id, error = %release, "a failed upload could not be released");
            }
            return Err(e);
        }
    };
    state
        .store
        .update_source(&id, |s| {
            if let Some(g) = &mut s.upload {
                g.state = GrantState::Used;
            }
            if s.status != SourceStatus::Deleted {
                s.status = SourceStatus::Importing;
            }
            Ok(())
        })
        .await?;
    tracing::info!(source = %id, "signed upload received");
    let work = Ctx {
        state: state.clone(),
        renders: renders.clone(),
        callbacks: callbacks.clone(),
    };
    actix_web::rt::spawn(work.uploaded(id, project));
    Ok(HttpResponse::Ok().finish())
}
