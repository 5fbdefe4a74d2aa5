//! The Videos service (`/videos/v1`): projects (the team account's
//! ordinary projects) and videos, with HAL paging.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use clipstream_storage::names::check_plain_name;
use clipstream_storage::{PixopVideo, Project};

use super::auth::{self, Bearer};
use super::envelope::{date, ok, Exception, Paging};
use super::parse::json_body;

/// Where a video made without a `projectId` goes.
pub const DEFAULT_PROJECT: &str = "pixop";

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/projects", web::get().to(list_projects))
        .route("/project", web::put().to(create_project))
        .route("/project/{id}", web::get().to(get_project))
        .route("/project/{id}", web::post().to(rename_project))
        .route("/project/{id}", web::delete().to(delete_project))
        .route("/videos", web::get().to(list_videos))
        .route("/video", web::put().to(create_video))
        .route("/video/{id}", web::get().to(get_video))
        .route("/video/{id}", web::delete().to(delete_video))
        .route(
            "/check-process-video-progress/{id}",
            web::get().to(process_progress),
        )
        .route(
            "/check-ingest-video-progress/{id}",
            web::get().to(ingest_progress),
        )
}

pub fn base(req: &HttpRequest) -> Result<String, Exception> {
    let state = auth::state(req)?;
    Ok(crate::http::base_url(req, &state.config))
}

fn project_json(req: &HttpRequest, p: &Project) -> Result<Value, Exception> {
    let state = auth::state(req)?;
    let renamed = state.store.pixop_project_time(&p.uid)?;
    Ok(json!({
        "id": p.uid,
        "name": p.name,
        "teamId": p.account.0,
        "dateCreated": date(p.created * 1000),
        "timeLastUpdated": date(renamed.unwrap_or(p.created * 1000)),
    }))
}

/// The team's project `id`: another team's is as unknown as none.
fn team_project(req: &HttpRequest, caller: &Bearer, id: &str) -> Result<Project, Exception> {
    let state = auth::state(req)?;
    Ok(state.store.project(&caller.0.team.id, id)?)
}

/// The query's pairs; a name not in `known` is a 400 naming it (a typo
/// such as `pagesize` must not silently give the default).
fn query_pairs(req: &HttpRequest, known: &[&str]) -> Result<Vec<(String, String)>, Exception> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| Exception::bad_request(format!("the query string is malformed: {e}")))?;
    if let Some((name, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(Exception::bad_field(
            name,
            format!(
                "unknown query parameter; this list takes {}",
                known.join(", ")
            ),
        ));
    }
    Ok(pairs)
}

async fn list_projects(req: HttpRequest, caller: Bearer) -> Result<HttpResponse, Exception> {
    let query = query_pairs(&req, &["page", "page-size"])?;
    let paging = Paging::of(&query)?;
    let state = auth::state(&req)?;
    let mut projects = state.store.projects(&caller.0.team.id)?;
    // Creation times are whole seconds: ties go by name, then uid.
    projects.sort_by(|a, b| (a.created, &a.name, &a.uid).cmp(&(b.created, &b.name, &b.uid)));
    let base = base(&req)?;
    let items = projects
        .iter()
        .map(|p| {
            let mut v = project_json(&req, p)?;
            v["_links"] =
                json!({ "self": { "href": format!("{base}/videos/v1/project/{}", p.uid) } });
            Ok(v)
        })
        .collect::<Result<Vec<_>, Exception>>()?;
    Ok(ok(paging.page(&req, &base, &query, "projects", items)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectBody {
    name: String,
}

fn project_name(req: &HttpRequest, name: &str) -> Result<(), Exception> {
    let state = auth::state(req)?;
    check_plain_name("name", name, state.config.limits.max_name_bytes)
        .map_err(|e| Exception::bad_field("name", e.to_string()))
}

async fn create_project(
    req: HttpRequest,
    caller: Bearer,
    body: web::Bytes,
) -> Result<HttpResponse, Exception> {
    let body: ProjectBody = json_body(&body)?;
    project_name(&req, &body.name)?;
    let state = auth::state(&req)?;
    let project = state
        .store
        .create_project(&caller.0.team.id, &body.name)
        .await?;
    Ok(ok(json!({ "project": project_json(&req, &project)? })))
}

async fn get_project(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    let project = team_project(&req, &caller, &id)?;
    Ok(ok(json!({ "project": project_json(&req, &project)? })))
}

async fn rename_project(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Exception> {
    team_project(&req, &caller, &id)?;
    let body: ProjectBody = json_body(&body)?;
    project_name(&req, &body.name)?;
    let state = auth::state(&req)?;
    let project = state
        .store
        .rename_project(&caller.0.team.id, &id, &body.name)
        .await?;
    Ok(ok(json!({ "project": project_json(&req, &project)? })))
}

/// Refused while videos are in the project, as the seed says.
async fn delete_project(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    let project = team_project(&req, &caller, &id)?;
    let state = auth::state(&req)?;
    if state.store.project_has_pixop_videos(&id)? {
        return Err(Exception::conflict(
            "the project still has videos; delete them first",
        ));
    }
    let shown = project_json(&req, &project)?;
    state.store.delete_project(&caller.0.team.id, &id).await?;
    Ok(ok(json!({ "project": shown })))
}

/// The team's video `id`: another team's is as unknown as none.
pub fn team_video(req: &HttpRequest, caller: &Bearer, id: &str) -> Result<PixopVideo, Exception> {
    let state = auth::state(req)?;
    match state.store.pixop_video(id)? {
        Some(v) if v.team == caller.0.team.id => Ok(v),
        _ => Err(Exception::not_found("video", id)),
    }
}

fn state_or(part: &Option<Value>, key: &str, fallback: Value) -> Value {
    part.as_ref()
        .and_then(|p| p.get(key))
        .cloned()
        .unwrap_or(fallback)
}

pub fn ingestion_state(v: &PixopVideo) -> Value {
    state_or(
        &v.ingestion,
        "ingestionState",
        json!({
            "updatedAt": date(v.updated),
            "ingestionStatus": "NOT_UPLOADED",
            "videoMetadataAvailable": false,
            "videoMetadataCommitted": false,
            "processingProgressPercent": 0.0,
        }),
    )
}

pub fn processing_state(v: &PixopVideo) -> Value {
    state_or(
        &v.processing,
        "processingState",
        json!({
            "updatedAt": date(v.updated),
            "processingStatus": "NOT_PROCESSED",
            "processingProgressPercent": 0.0,
        }),
    )
}

pub fn video_json(v: &PixopVideo) -> Value {
    let mut ingestion = v.ingestion.clone().unwrap_or_else(|| json!({}));
    ingestion["ingestionState"] = ingestion_state(v);
    let mut processing = v.processing.clone().unwrap_or_else(|| json!({}));
    processing["processingState"] = processing_state(v);
    json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "projectId": v.project,
        "parentId": v.parent,
        "userId": v.user,
        "teamId": v.team.0,
        "upload": v.upload,
        "ingestion": ingestion,
        "processing": processing,
        "attributes": {},
        "dateCreated": date(v.created),
        "timeLastUpdated": date(v.updated),
    })
}

async fn list_videos(req: HttpRequest, caller: Bearer) -> Result<HttpResponse, Exception> {
    let query = query_pairs(&req, &["page", "page-size", "project-id", "parent-id"])?;
    let paging = Paging::of(&query)?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (project, parent) = (param("project-id"), param("parent-id"));
    if let Some(project) = &project {
        team_project(&req, &caller, project)?;
    }
    if let Some(parent) = &parent {
        team_video(&req, &caller, parent)?;
    }
    let state = auth::state(&req)?;
    let base = base(&req)?;
    let items: Vec<Value> = state
        .store
        .pixop_videos(&caller.0.team.id)?
        .into_iter()
        .filter(|v| project.as_ref().is_none_or(|p| &v.project == p))
        .filter(|v| parent.is_none() || v.parent == parent)
        .map(|v| {
            json!({
                "_links": { "self": { "href": format!("{base}/videos/v1/video/{}", v.id) } },
                "id": v.id,
                "parentId": v.parent,
                "projectId": v.project,
                "name": v.name,
                "filename": v.upload.as_ref().and_then(|u| u.get("fileName")).cloned(),
                "dateCreated": date(v.created),
                "timeLastUpdated": date(v.updated),
            })
        })
        .collect();
    Ok(ok(paging.page(&req, &base, &query, "videos", items)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VideoBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

/// The longest video name taken.
const MAX_VIDEO_NAME_BYTES: usize = 1024;

async fn create_video(
    req: HttpRequest,
    caller: Bearer,
    body: web::Bytes,
) -> Result<HttpResponse, Exception> {
    let body: VideoBody = if body.is_empty() {
        VideoBody {
            name: None,
            project_id: None,
        }
    } else {
        json_body(&body)?
    };
    let name = body.name.unwrap_or_default();
    if name.len() > MAX_VIDEO_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(Exception::bad_field(
            "name",
            format!("a name has at most {MAX_VIDEO_NAME_BYTES} bytes and no control characters"),
        ));
    }
    let state = auth::state(&req)?;
    let project = match &body.project_id {
        Some(id) => team_project(&req, &caller, id).map_err(|_| {
            Exception::bad_field("projectId", format!("no project has the id {id:?}"))
        })?,
        None => {
            state
                .store
                .project_named(&caller.0.team.id, DEFAULT_PROJECT)
                .await?
        }
    };
    let video = PixopVideo::new(
        caller.0.team.id.clone(),
        &project.uid,
        &caller.0.user.id,
        &name,
    );
    state.store.create_pixop_video(&video).await?;
    let base = base(&req)?;
    Ok(ok(json!({
        "projectId": project.uid,
        "videoId": video.id,
        "uploadMediaUrl": format!("{base}/media/v1/upload/{}", video.id),
        "uploadLightMediaUrl": format!("{base}/media/v1/upload/light/{}", video.id),
        "processVideoUrl": format!("{base}/videos/v1/process-video/{}", video.id),
    })))
}

async fn get_video(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    let video = team_video(&req, &caller, &id)?;
    Ok(ok(json!({ "video": video_json(&video) })))
}

/// Deletes the video and every video processed from it.
async fn delete_video(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    team_video(&req, &caller, &id)?;
    let state = auth::state(&req)?;
    let deleted = state.store.delete_pixop_video(&id).await?;
    // Jobs making a deleted video stop rather than run on for nothing.
    super::cancel::cancel(&deleted);
    let deleted: Vec<Value> = deleted
        .into_iter()
        .map(|id| json!({ "videoId": id }))
        .collect();
    Ok(ok(json!({ "deletedVideos": deleted })))
}

async fn process_progress(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    let video = team_video(&req, &caller, &id)?;
    Ok(ok(json!({
        "videoId": video.id,
        "projectId": video.project,
        "processingState": processing_state(&video),
    })))
}

async fn ingest_progress(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<HttpResponse, Exception> {
    let video = team_video(&req, &caller, &id)?;
    let mut ingestion = ingestion_state(&video);
    if let Some(map) = ingestion.as_object_mut() {
        map.remove("videoMetadataCommitted");
    }
    Ok(ok(json!({
        "videoId": video.id,
        "projectId": video.project,
        "ingestionState": ingestion,
    })))
}
