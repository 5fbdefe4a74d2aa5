//! Chunked upload: initiate, send numbered chunks in any order (a chunk
//! sent again replaces the earlier copy), then `finished` to assemble them
//! into an asset. State lives in storage, so an upload survives a restart.

use std::collections::HashMap;
use std::str::FromStr;

use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_storage::Upload;
use serde::Serialize;

use super::assets::{content_type, AssetView};
use super::owned_project;
use crate::http::auth::Account;
use crate::http::body::stream_to;
use crate::http::error::ApiError;
use crate::http::names::plain_name;
use crate::http::resource;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/chunked/videos/{uid}", "POST").route(web::post().to(initiate)))
        // Which chunks arrived: a client resuming after a reload sends
        // only the others.
        .service(
            resource("/chunked/videos/{uid}/{upload_id}", "GET").route(web::get().to(progress)),
        )
        .service(
            resource("/chunked/videos/{uid}/{upload_id}/chunks", "POST")
                .route(web::post().to(chunk)),
        )
        .service(
            resource("/chunked/videos/{uid}/{upload_id}/finished", "POST")
                .route(web::post().to(finished)),
        );
}

type Query = web::Query<HashMap<String, String>>;

/// A required query parameter, parsed, with an error naming it.
fn param<T: FromStr>(query: &Query, name: &str) -> Result<T, ApiError> {
    let raw = query.get(name).ok_or_else(|| {
        ApiError::bad_param(name, format!("the query parameter {name} is required"))
    })?;
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_param(name, format!("{name}={raw:?} is not a valid number")))
}

/// An upload as clients see it.
#[derive(Serialize)]
struct UploadView<'a> {
    #[serde(rename = "upload-id")]
    upload_id: &'a str,
    name: &'a str,
    chunk_count: u32,
    chunk_size: u64,
    received: Vec<u32>,
}

impl<'a> From<&'a Upload> for UploadView<'a> {
    fn from(u: &'a Upload) -> Self {
        UploadView {
            upload_id: &u.id,
            name: &u.name,
            chunk_count: u.chunk_count,
            chunk_size: u.chunk_size,
            received: u.chunks.keys().copied().collect(),
        }
    }
}

async fn initiate(
    state: web::Data<AppState>,
    account: Account,
    uid: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    owned_project(&state, &account, &uid)?;
    let name = query
        .get("name")
        .ok_or_else(|| ApiError::bad_param("name", "the query parameter name is required"))?;
    let name = plain_name("name", name, state.config.limits.max_name_bytes)?;
    let chunk_count = param(&query, "chunk_count")?;
    let chunk_size = param(&query, "chunk_size")?;
    let upload = state
        .store
        .begin_upload(
            &uid,
            &name,
            chunk_count,
            chunk_size,
            state.config.upload_limits(),
        )
        .await?;
    tracing::info!(uid = %uid, upload = %upload.id, name = %upload.name, chunk_count, chunk_size, "chunked upload started");
    Ok(HttpResponse::Created().json(UploadView::from(&upload)))
}

async fn progress(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, upload_id) = path.into_inner();
    owned_project(&state, &account, &uid)?;
    let upload = state.store.upload(&uid, &upload_id)?;
    Ok(HttpResponse::Ok().json(UploadView::from(&upload)))
}

async fn chunk(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (uid, upload_id) = path.into_inner();
    owned_project(&state, &account, &uid)?;
    let chunk_id = param(&query, "chunk_id")?;
    let upload = state.store.upload(&uid, &upload_id)?;
    let writer = state.store.new_chunk_body(&upload).await?;
    let body = stream_to(&req, payload, writer, upload.chunk_size).await?;
    let upload = state
        .store
        .put_chunk(&uid, &upload_id, chunk_id, body)
        .await?;
    Ok(HttpResponse::Ok().json(UploadView::from(&upload)))
}

async fn finished(
    req: HttpRequest,
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, upload_id) = path.into_inner();
    owned_project(&state, &account, &uid)?;
    let upload = state.store.upload(&uid, &upload_id)?;
    let content_type = content_type(&req, &upload.name);
    let (asset, created) = state
        .store
        .finish_upload(&uid, &upload_id, &content_type)
        .await?;
    tracing::info!(uid = %uid, upload = %upload_id, name = %asset.name, size = asset.size, created, "chunked upload assembled");
    Ok(HttpResponse::Created().json(AssetView::from(&asset)))
}
