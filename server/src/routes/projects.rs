//! Projects: list, create, delete with everything under them, publish.

use actix_web::{web, HttpResponse};
use clipstream_storage::Project;
use serde::Serialize;

use super::owned_project;
use crate::http::auth::Account;
use crate::http::error::ApiError;
use crate::http::names::plain_name;
use crate::http::resource;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/list/project", "GET").route(web::get().to(list)))
        .service(
            resource("/v1/project/{name_or_uid}", "POST, DELETE")
                .route(web::post().to(create))
                .route(web::delete().to(delete)),
        )
        .service(resource("/v1/publish/{uid}/{cluster}", "POST").route(web::post().to(publish)));
}

/// A project as clients see it.
#[derive(Serialize)]
struct ProjectView<'a> {
    uid: &'a str,
    name: &'a str,
    created: u64,
    published: Vec<PublicationView<'a>>,
}

#[derive(Serialize)]
struct PublicationView<'a> {
    cluster: &'a str,
    at: u64,
}

impl<'a> From<&'a Project> for ProjectView<'a> {
    fn from(p: &'a Project) -> Self {
        ProjectView {
            uid: &p.uid,
            name: &p.name,
            created: p.created,
            published: p
                .published
                .iter()
                .map(|x| PublicationView {
                    cluster: &x.cluster,
                    at: x.at,
                })
                .collect(),
        }
    }
}

async fn list(state: web::Data<AppState>, account: Account) -> Result<HttpResponse, ApiError> {
    let projects = state.store.projects(&account.0)?;
    let views: Vec<ProjectView> = projects.iter().map(ProjectView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "projects": views })))
}

async fn create(
    state: web::Data<AppState>,
    account: Account,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = plain_name("project name", &name, state.config.limits.max_name_bytes)?;
    let project = state.store.create_project(&account.0, &name).await?;
    tracing::info!(uid = %project.uid, name = %project.name, "project created");
    Ok(HttpResponse::Created().json(ProjectView::from(&project)))
}

async fn delete(
    state: web::Data<AppState>,
    account: Account,
    uid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.store.delete_project(&account.0, &uid).await?;
    tracing::info!(uid = %uid, "project deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "uid": *uid, "deleted": true })))
}

async fn publish(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, cluster) = path.into_inner();
    owned_project(&state, &account, &uid)?;
    let known = &state.config.cluster.known;
    if !known.contains(&cluster) {
        return Err(ApiError::UnknownCluster {
            cluster,
            known: known.join(", "),
        });
    }
    let project = state.store.publish(&account.0, &uid, &cluster).await?;
    Ok(HttpResponse::Ok().json(ProjectView::from(&project)))
}
