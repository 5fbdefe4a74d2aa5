//! The HTTP routes, one module per family of the contract.

mod assets;
mod chunked;
mod health;
mod hls;
mod hosted;
mod metrics;
mod movies;
mod projects;
mod render;
mod renders;
mod studio;

use actix_web::web;

use crate::http::auth::Account;
use crate::http::error::ApiError;
use crate::http::names::plain_name;
use crate::http::state::AppState;
use clipstream_storage::Project;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // actix tries services in this order, so the viewers' routes (by far
    // the most requests) come first. No other route starts `/render/`.
    render::configure(cfg);
    health::configure(cfg);
    projects::configure(cfg);
    assets::configure(cfg);
    chunked::configure(cfg);
    movies::configure(cfg);
    renders::configure(cfg);
    metrics::configure(cfg);
    hosted::configure(cfg);
    // The studio's page at `/` and its files under `/studio/`.
    studio::configure(cfg);
}

/// The project `uid` if `account` owns it: 404 when missing, 403 when
/// another account's.
fn owned_project(state: &AppState, account: &Account, uid: &str) -> Result<Project, ApiError> {
    Ok(state.store.project(&account.0, uid)?)
}

/// For `/{uid}/{name}` routes: the project uid, once ownership is checked,
/// and the plain name (`what` names it in errors).
fn owned_item(
    state: &AppState,
    account: &Account,
    path: web::Path<(String, String)>,
    what: &'static str,
) -> Result<(String, String), ApiError> {
    let (uid, name) = path.into_inner();
    owned_project(state, account, &uid)?;
    let name = plain_name(what, &name, state.config.limits.max_name_bytes)?;
    Ok((uid, name))
}
