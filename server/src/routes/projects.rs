//! Projects: list, create, delete with everything under them, publish.

use actix_web::{web, HttpResponse};
use clipstream_storage::projects::PublishState;
use clipstream_storage::{Project, Publication};
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

/// A publication: when last asked for, and how copying to a peer goes
/// (`progress` from 0 to 1, `error` when it failed or a retry waits).
#[derive(Serialize)]
struct PublicationView<'a> {
    cluster: &'a str,
    at: u64,
    state: &'static str,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_uid: Option<&'a str>,
}

impl<'a> From<&'a Publication> for PublicationView<'a> {
    fn from(x: &'a Publication) -> Self {
        let progress = match (x.state, x.total) {
            (PublishState::Done, _) => 1.0,
            (_, 0) => 0.0,
            (_, total) => f64::from(x.done.min(total)) / f64::from(total),
        };
        PublicationView {
            cluster: &x.cluster,
            at: x.at,
            state: x.state.as_str(),
            progress,
            error: x.error.as_deref(),
            peer_uid: x.peer_uid.as_deref(),
        }
    }
}

impl<'a> From<&'a Project> for ProjectView<'a> {
    fn from(p: &'a Project) -> Self {
        ProjectView {
            uid: &p.uid,
            name: &p.name,
            created: p.created,
            published: p.published.iter().map(PublicationView::from).collect(),
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

/// Publishing to this installation's own cluster (or another name in
/// `cluster.known`) records it; to a peer in `[[cluster.peers]]` it also
/// starts copying the project there (see `crate::publish`), which the
/// project's `published` list follows.
async fn publish(
    state: web::Data<AppState>,
    account: Account,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (uid, cluster) = path.into_inner();
    owned_project(&state, &account, &uid)?;
    let config = &state.config.cluster;
    // The own cluster only records, even if a peer is (mis)named after it.
    let copy = cluster != config.name && crate::publish::peer(&state.config, &cluster).is_some();
    if !copy && cluster != config.name && !config.known.contains(&cluster) {
        let mut known: Vec<&str> = std::iter::once(config.name.as_str())
            .chain(config.known.iter().map(String::as_str))
            .chain(config.peers.iter().map(|p| p.name.as_str()))
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(ApiError::UnknownCluster {
            cluster,
            known: known.join(", "),
        });
    }
    let project = state
        .store
        .publish(&account.0, &uid, &cluster, copy)
        .await?;
    if copy {
        tracing::info!(%uid, %cluster, "publish to a peer queued");
        crate::publish::start(
            state.store.clone(),
            state.config.clone(),
            uid.clone(),
            cluster.clone(),
        );
    }
    Ok(HttpResponse::Ok().json(ProjectView::from(&project)))
}
