//! `GET|HEAD /hosted/<id>/<filename>`: a hosted file (a Shotstack Serve
//! asset, an ingested source or rendition), with no credentials — the
//! random id is the capability, as a render token is — and the HTTP
//! semantics of every body this server gives (ranges, validators).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::error::ApiError;
use crate::http::resource;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/hosted/{id}/{filename}", "GET, HEAD")
            .route(web::get().to(get))
            .route(web::head().to(get)),
    );
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, filename) = path.into_inner();
    let store = &state.store;
    let file = store.hosted_file(&id)?;
    // The name is part of the address: another name is another file.
    if file.filename != filename {
        return Err(clipstream_storage::Error::HostedNotFound(id).into());
    }
    let asset = store.hosted_asset(&file)?;
    let body = store.open_asset(&file.project, &asset.name).await?;
    // Public like a CDN's copy, but revalidated at every use (a 304 by its
    // ETag), so that a deleted file stops being served at once.
    super::assets::respond_body(&req, body, "public, no-cache").await
}
