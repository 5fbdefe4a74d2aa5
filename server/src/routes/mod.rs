//! The HTTP routes, one module per family of the contract.

mod assets;
mod chunked;
mod health;
mod movies;
mod projects;

use actix_web::web;

use crate::http::auth::Account;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use clipstream_storage::Project;

pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    projects::configure(cfg);
    assets::configure(cfg);
    chunked::configure(cfg);
    movies::configure(cfg);
}

/// The project `uid` if `account` owns it: 404 when missing, 403 when
/// another account's.
fn owned_project(state: &AppState, account: &Account, uid: &str) -> Result<Project, ApiError> {
    Ok(state.store.project(&account.0, uid)?)
}
