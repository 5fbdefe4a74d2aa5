//! The Serve API: the files hosted for an account — render outputs,
//! ingested sources and renditions (`storage::hosted`) — looked up by id
//! or by render id, and deleted. Answers follow the seed's json:api shape
//! (`{"data": …}`), not the Edit API's envelope; errors keep the envelope.

use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_storage::{HostedFile, HostedStatus};
use serde_json::{json, Map, Value};

use super::auth::ApiKey;
use super::envelope::{iso_date, Failure};
use super::hosting;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        // Before `/assets/{id}`, which would take `render` for an id.
        .route("/assets/render/{id}", web::get().to(by_render))
        .route("/assets/{id}", web::get().to(get))
        .route("/assets/{id}", web::delete().to(delete))
}

/// An asset as the seed's `AssetResponseData` shows it.
pub fn asset_data(base: &str, file: &HostedFile) -> Value {
    let mut attributes = Map::new();
    attributes.insert("id".into(), json!(file.id));
    attributes.insert("owner".into(), json!(file.account));
    if let Some(render) = &file.render {
        attributes.insert("renderId".into(), json!(render));
    }
    // Hosted here, so the provider's id is the asset's own, as the seed
    // says of Shotstack's hosting.
    attributes.insert("providerId".into(), json!(file.id));
    attributes.insert("filename".into(), json!(file.filename));
    attributes.insert("url".into(), json!(hosting::url(base, file)));
    attributes.insert("status".into(), json!(status_name(file.status)));
    attributes.insert("created".into(), json!(iso_date(file.created_ms)));
    attributes.insert("updated".into(), json!(iso_date(file.updated_ms)));
    json!({ "type": "asset", "attributes": attributes })
}

fn status_name(status: HostedStatus) -> &'static str {
    match status {
        HostedStatus::Importing => "importing",
        HostedStatus::Ready => "ready",
        HostedStatus::Failed => "failed",
        HostedStatus::Deleted => "deleted",
    }
}

fn json_api(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(body)
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(account): ApiKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let file = state
        .store
        .hosted_file_of(&account.0, &id)
        .map_err(ApiError::from)?;
    let base = crate::http::base_url(&req, &state.config);
    Ok(json_api(json!({ "data": asset_data(&base, &file) })))
}

/// Every file a render of the account produced (video, poster,
/// thumbnail), oldest first; none while it renders.
async fn by_render(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(account): ApiKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let files: Vec<HostedFile> = state
        .store
        .hosted_files_of(&id)
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|f| f.account == account.0 .0 && f.render.as_deref() == Some(id.as_str()))
        .collect();
    // A render of the account that has hosted nothing (yet, or it is
    // excluded from hosting) has no assets; any other id is not found.
    let known = || {
        state
            .store
            .shotstack_render(&id)
            .map(|r| r.is_some_and(|r| r.account == account.0 .0))
    };
    if files.is_empty() && !known().map_err(ApiError::from)? {
        return Err(Failure::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no assets of a render {:?} of this account", id.as_str()),
        )
        .with_param("id"));
    }
    let base = crate::http::base_url(&req, &state.config);
    let data: Vec<Value> = files.iter().map(|f| asset_data(&base, f)).collect();
    Ok(json_api(json!({ "data": data })))
}

/// The file stops being served; its record stays, `deleted`.
async fn delete(
    state: web::Data<AppState>,
    ApiKey(account): ApiKey,
    id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    // An ingested source's files go with their source, whose record says
    // whether it is there: deleting one alone would leave it `ready`.
    let file = state
        .store
        .hosted_file_of(&account.0, &id)
        .map_err(ApiError::from)?;
    if let Some(source) = &file.source {
        return Err(Failure::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "this file is of the ingested source {source}: delete the source (DELETE /ingest/{{stage}}/sources/{source}), which deletes its files"
            ),
        )
        .with_param("id"));
    }
    let file = state
        .store
        .delete_hosted_file(&account.0, &id)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(id = %file.id, filename = %file.filename, "hosted file deleted");
    Ok(HttpResponse::NoContent().finish())
}
