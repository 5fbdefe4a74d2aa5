//! Assets: list, GET/HEAD with ranges and validators, streaming PUT, DELETE.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_storage::{Asset, AssetBody};
use serde::Serialize;

use super::{owned_item, owned_project};
use crate::http::auth::Account;
use crate::http::body::stream_to;
use crate::http::entity::{self, Meta};
use crate::http::error::ApiError;
use crate::http::resource;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/list/data/{uid}", "GET").route(web::get().to(list)))
        .service(
            resource("/v1/data/{uid}/{filename}", "GET, HEAD, PUT, DELETE")
                .route(web::get().to(get))
                .route(web::head().to(get))
                .route(web::put().to(put))
                .route(web::delete().to(delete)),
        );
}

/// An asset as clients see it.
#[derive(Serialize)]
pub(super) struct AssetView<'a> {
    name: &'a str,
    size: u64,
    content_type: &'a str,
    etag: String,
    modified: u64,
}

impl<'a> From<&'a Asset> for AssetView<'a> {
    fn from(a: &'a Asset) -> Self {
        AssetView {
            name: &a.name,
            size: a.size,
            content_type: &a.content_type,
            etag: format!("\"{}\"", a.hash),
            modified: a.modified,
        }
    }
}

/// The content type of a stored asset: what the client said, unless it is
/// one of the types tools send for "I did not say" (curl's `--data-binary`
/// sends form-urlencoded), in which case the file name decides.
pub(super) fn content_type(req: &HttpRequest, name: &str) -> String {
    let given = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            !essence.is_empty()
                && !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
                && !essence.eq_ignore_ascii_case("application/octet-stream")
        });
    match given {
        Some(v) => v.to_owned(),
        None => mime_guess::from_path(name)
            .first_or_octet_stream()
            .essence_str()
            .to_owned(),
    }
}

async fn list(
    state: web::Data<AppState>,
    account: Account,
    uid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    owned_project(&state, &account, &uid)?;
    let assets = state.store.assets(&uid)?;
    let views: Vec<AssetView> = assets.iter().map(AssetView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "assets": views })))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "filename")?;
    let body = state.store.open_asset(&uid, &name).await?;
    // Assets need credentials: shared caches must not keep them.
    respond_body(&req, body, "private, no-cache").await
}

/// An asset's body with the HTTP semantics of every entity here.
pub(super) async fn respond_body(
    req: &HttpRequest,
    body: AssetBody,
    cache_control: &'static str,
) -> Result<HttpResponse, ApiError> {
    let meta = Meta {
        len: body.asset.size,
        etag: body.asset.hash.clone(),
        modified: body.asset.modified,
        content_type: body.asset.content_type.clone(),
        cache_control,
    };
    Ok(entity::respond(req, &meta, body.file)
        .await
        .map_err(clipstream_storage::Error::from)?)
}

async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "filename")?;
    let limit = state.config.limits.max_asset_bytes;
    let writer = state.store.new_body(limit).await?;
    let body = stream_to(&req, payload, writer, limit).await?;
    let content_type = content_type(&req, &name);
    let (asset, created) = state
        .store
        .put_asset(&uid, &name, &content_type, body)
        .await?;
    tracing::info!(uid = %uid, name = %asset.name, size = asset.size, created, "asset stored");
    Ok(HttpResponse::Created()
        .insert_header(header::ETag(header::EntityTag::new_strong(
            asset.hash.clone(),
        )))
        .json(AssetView::from(&asset)))
}

async fn delete(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "filename")?;
    state.store.delete_asset(&uid, &name).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "name": name, "deleted": true })))
}
