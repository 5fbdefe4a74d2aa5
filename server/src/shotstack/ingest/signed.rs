//! `PUT /ingest-upload/<id>?expires=…&signature=…`: the signed URL of
//! `POST ingest/{stage}/upload`, which takes the file's raw bytes with no
//! other credentials (as S3's presigned URLs that Shotstack hands out do).
//!
//! The URL is checked before a byte is read: a signature that does not
//! match, or a URL past its expiry, is a 403; a URL whose PUT completed is
//! a 409. The body streams into the blob store, bounded by
//! `limits.max_asset_bytes` and by the URL's expiry (a 408 past it); a
//! PUT cut short (an error, or the client gone) leaves nothing behind and
//! gives the URL back for another try until it expires, unless the owner
//! deleted the source meanwhile (a 404 then, the URL spent).

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
        Claim::Deleted => {
            return Err(IngestError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the source of this upload URL was deleted",
            ))
        }
        Claim::Expired => return Err(forbidden("the upload URL has expired; ask for another")),
        Claim::AlreadyUsed => {
            return Err(IngestError::new(
                StatusCode::CONFLICT,
                "upload_used",
                "this upload URL has already received its file; ask for another",
            ))
        }
    };
    // Gives the URL back however this handler ends short of its last
    // step: an error, or its future dropped when the client goes away.
    let claim = Release {
        store: state.store.clone(),
        id: id.clone(),
        armed: true,
    };
    let account = clipstream_storage::AccountId(source.account.clone());
    let asset = source_asset(&id);
    // A slow client holds the URL no longer than it is good for.
    let left = std::time::Duration::from_millis((query.expires * 1000).saturating_sub(now));
    let received = async {
        let limit = state.config.limits.max_asset_bytes;
        let writer = state.store.new_body(limit).await?;
        let body = stream_to(&req, payload, writer, limit).await?;
        let project = hosting::project(&state, &account).await?;
        // Typed once it is read (`work::Ctx::uploaded`): `curl -T`, as
        // Shotstack's docs show, sends no Content-Type.
        state
            .store
            .put_asset(&project.uid, &asset, "application/octet-stream", body)
            .await?;
        Ok::<_, IngestError>(project.uid)
    };
    let project = match tokio::time::timeout(left, received).await {
        Ok(Ok(project)) => project,
        Ok(Err(e)) => {
            // Given back before the answer, so a retry finds it free.
            claim.release().await;
            return Err(e);
        }
        Err(_) => {
            claim.release().await;
            return Err(IngestError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the upload URL expired before the whole file arrived; ask for another",
            ));
        }
    };
    let mut deleted = false;
    let marked = state
        .store
        .update_source(&id, |s| {
            deleted = s.status == SourceStatus::Deleted;
            if let Some(g) = &mut s.upload {
                g.state = GrantState::Used;
            }
            if !deleted {
                s.status = SourceStatus::Importing;
            }
            Ok(())
        })
        .await;
    if marked.is_err() || deleted {
        // Nothing to read: the bytes go.
        if let Err(e) = state.store.delete_asset(&project, &asset).await {
            tracing::warn!(source = %id, error = %e, "an unused upload's bytes were not removed");
        }
    }
    if let Err(e) = marked {
        claim.release().await;
        return Err(e.into());
    }
    claim.disarm();
    if deleted {
        tracing::info!(source = %id, "signed upload received for a deleted source; dropped");
        return Err(IngestError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the source of this upload URL was deleted",
        ));
    }
    tracing::info!(source = %id, "signed upload received");
    let work = Ctx {
        state: state.clone(),
        renders: renders.clone(),
        callbacks: callbacks.clone(),
    };
    actix_web::rt::spawn(work.uploaded(id, project));
    Ok(HttpResponse::Ok().finish())
}

/// A claimed upload not yet completed: dropped armed, it releases the
/// claim in the background (a drop cannot wait).
struct Release {
    store: clipstream_storage::Store,
    id: String,
    armed: bool,
}

impl Release {
    /// Releases the claim now (the usual way a failed PUT ends).
    async fn release(mut self) {
        self.armed = false;
        release(self.store.clone(), self.id.clone()).await;
    }

    /// The PUT completed: the claim is the work's now.
    fn disarm(mut self) {
        self.armed = false;
    }
}

async fn release(store: clipstream_storage::Store, id: String) {
    if let Err(e) = store.release_upload(&id).await {
        // The periodic sweep releases it once its URL expired.
        tracing::error!(source = %id, error = %e, "a failed upload could not be released");
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let release = release(self.store.clone(), self.id.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            Err(_) => {
                tracing::warn!(source = %self.id, "no runtime to release an upload; the sweep will")
            }
        }
    }
}
