//! Dynamic movies (SDL): Edit templates, validated when stored.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::edit;
use serde_json::json;

use super::{owned_item, owned_project};
use crate::http::auth::Account;
use crate::http::body::read_limited;
use crate::http::error::ApiError;
use crate::http::resource;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/list/sdl/{uid}", "GET").route(web::get().to(list)))
        .service(
            resource("/v1/sdl/{uid}/{name}", "GET, PUT, DELETE")
                .route(web::get().to(get))
                .route(web::put().to(put))
                .route(web::delete().to(delete)),
        );
}

async fn list(
    state: web::Data<AppState>,
    account: Account,
    uid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    owned_project(&state, &account, &uid)?;
    let movies: Vec<_> = state
        .store
        .movies(&uid)?
        .into_iter()
        .map(|m| json!({ "name": m.name, "modified": m.modified }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "movies": movies })))
}

async fn get(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "movie name")?;
    let movie = state.store.movie(&uid, &name)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(movie.body))
}

async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "movie name")?;
    let body = read_limited(&req, payload, state.config.limits.max_json_bytes).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadBody {
        message: "the dynamic movie is not UTF-8 text".into(),
    })?;
    let parsed = edit::parse_template(&text, &state.config.edit_limits())?;
    refuse_destinations(&text)?;
    let (movie, created) = state.store.put_movie(&uid, &name, text).await?;
    tracing::info!(uid = %uid, name = %movie.name, created, "dynamic movie stored");
    Ok(HttpResponse::Created().json(json!({
        "name": movie.name,
        "modified": movie.modified,
        "placeholders": parsed.placeholder_names(),
    })))
}

/// An Edit's `output.destinations` send a render of the Shotstack API
/// (`POST edit/{stage}/render`, `templates/render`) to S3 when it finishes;
/// a dynamic movie renders per token, whose outputs are sent with the
/// render request's `upload`. Rather than store destinations that a token
/// would never use, such a movie is refused here; Shotstack hosting
/// (`{"provider": "shotstack"}`, not excluded) is what token URLs are, and
/// is accepted.
fn refuse_destinations(text: &str) -> Result<(), edit::EditError> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let Some(list) = value["output"]["destinations"].as_array() else {
        return Ok(());
    };
    for (i, d) in list.iter().enumerate() {
        let hosted = d["provider"] == "shotstack" && d["exclude"] != json!(true);
        if !hosted {
            return Err(edit::EditError {
                kind: edit::EditErrorKind::Invalid,
                path: format!("output.destinations[{i}]"),
                message: "a dynamic movie's renders are sent with the render request's \
                          `upload` (S3, Azure, HTTP, FTP, Dropbox, YouTube, Facebook); \
                          output.destinations apply to renders of the Shotstack API \
                          (POST /edit/v1/render, /edit/v1/templates/render)"
                    .into(),
            });
        }
    }
    Ok(())
}

async fn delete(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, name) = owned_item(&state, &account, path, "movie name")?;
    state.store.delete_movie(&uid, &name).await?;
    Ok(HttpResponse::Ok().json(json!({ "name": name, "deleted": true })))
}
