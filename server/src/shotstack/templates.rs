//! `edit/{stage}/templates`: Shotstack templates are the dynamic movies
//! of the account's `shotstack` project (movie name = template id, a UUID
//! v4 for templates made here), so the ImpossibleFX API's
//! `/v1/sdl/{uid}/{name}` sees the same ones. A template's `name` is kept
//! beside its movie (`storage::shotstack_renders::TemplateName`); a movie
//! made through the ImpossibleFX API has none and is named by its movie
//! name. Movies holding a render's Edit (`render-<id>`) are not templates.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_storage::{AccountId, Error as StoreError, Movie, TemplateName};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::auth::ApiKey;
use super::edit_input::{self, parse_body, read_text};
use super::envelope::{created, iso_date, ok, Failure};
use super::hosting;
use super::render::{queue, queued, Services, Submission, MOVIE_PREFIX};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Longest template name, in bytes.
const MAX_NAME_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    name: String,
    template: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderBody {
    id: String,
    #[serde(default)]
    merge: Option<Vec<MergeField>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MergeField {
    find: String,
    replace: Value,
}

#[derive(Serialize)]
struct ListItem {
    id: String,
    name: String,
    created: String,
    updated: String,
}

#[derive(Serialize)]
struct TemplateData {
    id: String,
    name: String,
    owner: String,
    template: Box<RawValue>,
}

/// Stores a checked template as the movie `id` of the project, with its
/// name beside it.
async fn store_template(
    state: &AppState,
    project: &str,
    id: &str,
    body: &TemplateBody,
) -> Result<(), Failure> {
    state
        .store
        .put_template(project, id, &body.name, body.template.get().to_owned())
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// A body's name and template, both checked.
fn checked_body(state: &AppState, text: &str) -> Result<TemplateBody, Failure> {
    let body: TemplateBody = parse_body(text)?;
    if body.name.trim().is_empty() || body.name.len() > MAX_NAME_BYTES {
        return Err(edit_input::bad(
            "name",
            format!("a template name is 1 to {MAX_NAME_BYTES} bytes of text"),
        ));
    }
    if body.name.chars().any(char::is_control) {
        return Err(edit_input::bad("name", "no control characters in a name"));
    }
    // A template is stored with its placeholders: checked as the ImpossibleFX
    // API checks a dynamic movie.
    clipstream_actors::engine::edit::parse_template(
        body.template.get(),
        &state.config.edit_limits(),
    )
    .map_err(|e| edit_input::edit_failure(e, "template."))?;
    Ok(body)
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    key: ApiKey,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Failure> {
    let text = read_text(&req, payload, &state).await?;
    let body = checked_body(&state, &text)?;
    let project = hosting::project(&state, &key.0 .0).await?;
    let id = uuid::Uuid::new_v4().to_string();
    store_template(&state, &project.uid, &id, &body).await?;
    tracing::info!(template = %id, "shotstack template created");
    Ok(created(
        json!({ "message": "Template Successfully Created", "id": id }),
    ))
}

pub async fn list(key: ApiKey, state: web::Data<AppState>) -> Result<HttpResponse, Failure> {
    let account = &key.0 .0;
    let project = hosting::project(&state, account).await?;
    let store = &state.store;
    let mut names: HashMap<String, TemplateName> = store
        .template_names(&project.uid)
        .map_err(ApiError::from)?
        .into_iter()
        .collect();
    let templates: Vec<ListItem> = store
        .movies(&project.uid)
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|m| is_template(&m.name))
        .map(|m| {
            let name = names.remove(&m.name);
            let (name, created, updated) = described(&m, name);
            ListItem {
                id: m.name,
                name,
                created,
                updated,
            }
        })
        .collect();
    Ok(ok(
        "OK",
        json!({ "owner": account.0, "templates": templates }),
    ))
}

/// Whether a movie of the `shotstack` project shows as a template: not
/// a render's Edit, nor an ingested rendition's.
fn is_template(movie: &str) -> bool {
    !movie.starts_with(MOVIE_PREFIX) && !movie.starts_with(super::ingest::NAME_PREFIX)
}

/// A template's name and dates: its own, or its movie's for one made
/// through the ImpossibleFX API. A movie changed there after its name
/// was given shows the later date.
fn described(movie: &Movie, name: Option<TemplateName>) -> (String, String, String) {
    let modified_ms = movie.modified.saturating_mul(1000);
    match name {
        Some(t) => (
            t.name,
            iso_date(t.created_ms),
            iso_date(t.updated_ms.max(modified_ms)),
        ),
        None => (
            movie.name.clone(),
            iso_date(modified_ms),
            iso_date(modified_ms),
        ),
    }
}

/// The template `id` of the account's project: 404 in Shotstack's
/// envelope for anything else.
fn template(state: &AppState, project: &str, id: &str) -> Result<Movie, Failure> {
    let not_found = || Failure::not_found("template", id);
    if !is_template(id) {
        return Err(not_found());
    }
    match state.store.movie(project, id) {
        Ok(movie) => Ok(movie),
        Err(StoreError::MovieNotFound(_) | StoreError::InvalidName(_)) => Err(not_found()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

pub async fn get(
    key: ApiKey,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let id = path.into_inner();
    let account = &key.0 .0;
    let project = hosting::project(&state, account).await?;
    let movie = template(&state, &project.uid, &id)?;
    let name = state
        .store
        .template_name(&project.uid, &id)
        .map_err(ApiError::from)?;
    let (name, ..) = described(&movie, name);
    let template = RawValue::from_string(movie.body).map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the stored template is unreadable: {e}"),
        )
    })?;
    Ok(ok(
        "OK",
        TemplateData {
            id,
            name,
            owner: account.0.clone(),
            template,
        },
    ))
}

pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    key: ApiKey,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let id = path.into_inner();
    let project = hosting::project(&state, &key.0 .0).await?;
    template(&state, &project.uid, &id)?;
    let text = read_text(&req, payload, &state).await?;
    let body = checked_body(&state, &text)?;
    store_template(&state, &project.uid, &id, &body).await?;
    tracing::info!(template = %id, "shotstack template updated");
    Ok(ok(
        "OK",
        json!({ "message": "Template Successfully Updated", "id": id }),
    ))
}

pub async fn delete(
    key: ApiKey,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let id = path.into_inner();
    let project = hosting::project(&state, &key.0 .0).await?;
    template(&state, &project.uid, &id)?;
    state
        .store
        .delete_template(&project.uid, &id)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(template = %id, "shotstack template deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST templates/render`: the template filled with `merge` (over its own
/// merge fields), queued exactly as `POST render` queues an Edit.
pub async fn render(
    req: HttpRequest,
    payload: web::Payload,
    key: ApiKey,
    services: Services,
) -> Result<HttpResponse, Failure> {
    let account: &AccountId = &key.0 .0;
    let text = read_text(&req, payload, &services.state).await?;
    let body: RenderBody = parse_body(&text)?;
    let project = hosting::project(&services.state, account).await?;
    let movie = template(&services.state, &project.uid, &body.id)?;
    let mut params = Map::new();
    for (i, field) in body.merge.iter().flatten().enumerate() {
        if params
            .insert(field.find.clone(), field.replace.clone())
            .is_some()
        {
            return Err(edit_input::bad(
                format!("merge[{i}].find"),
                format!("`{}` is merged twice", field.find),
            ));
        }
    }
    // `data` shows the template with the request's merge fields in place
    // of its own: what was asked to render.
    let mut data: Value = serde_json::from_str(&movie.body).map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the stored template is unreadable: {e}"),
        )
    })?;
    if let (Some(merge), Some(doc)) = (&body.merge, data.as_object_mut()) {
        doc.insert("merge".into(), json!(merge));
    }
    let base = crate::http::base_url(&req, &services.state.config);
    let id = queue(
        &services,
        account,
        &base,
        Submission {
            data: data.to_string(),
            movie: movie.body,
            params,
        },
    )
    .await?;
    Ok(created(queued(&id)))
}
