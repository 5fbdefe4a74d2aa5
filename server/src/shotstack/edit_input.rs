//! A posted Edit (a render's body, a template's `template`), checked by
//! the composition engine before anything is stored: the first problem is
//! a 400 whose `param` is its JSON path, as the ImpossibleFX routes name
//! it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use clipstream_actors::engine::edit::{self, Edit, EditError, FillError, Format};
use clipstream_actors::engine::plan::{self, Deliverable};
use serde_json::{Map, Value};

use super::envelope::Failure;
use crate::http::body::read_limited;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The body of a request, as UTF-8 text within `limits.max_json_bytes`.
pub async fn read_text(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<String, Failure> {
    let body = read_limited(req, payload, state.config.limits.max_json_bytes)
        .await
        .map_err(Failure::from)?;
    String::from_utf8(body.to_vec()).map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body is not UTF-8 text",
        )
    })
}

/// Parses a JSON body into `T`, naming the path of the first problem.
pub fn parse_body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "invalid_json"
        } else {
            "invalid_body"
        };
        let failure = Failure::new(StatusCode::BAD_REQUEST, code, inner.to_string());
        // serde_path_to_error says "." for the document itself.
        match field_named(&path, &inner.to_string()) {
            Some(param) => failure.with_param(param),
            None => failure,
        }
    })
}

/// The path a serde error is at; a missing field is named by the path of
/// its parent and the field.
fn field_named(path: &str, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { "" } else { path };
    match missing {
        Some(field) if parent.is_empty() => Some(field.to_owned()),
        Some(field) => Some(format!("{parent}.{field}")),
        None if parent.is_empty() => None,
        None => Some(parent.to_owned()),
    }
}

/// A checked Edit, ready to store and render.
pub struct Checked {
    /// The Edit with its placeholders filled in.
    pub filled: Edit,
    pub format: Format,
    pub poster: bool,
    pub thumbnail: bool,
    /// Seconds of output.
    pub duration: f64,
}

/// Checks `text` (an Edit, maybe with placeholders) filled with `params`
/// over its own merge fields. `at` prefixes every path (`template.` for a
/// template's body).
pub fn check(
    state: &AppState,
    text: &str,
    params: &Map<String, Value>,
    at: &str,
) -> Result<Checked, Failure> {
    let limits = state.config.edit_limits();
    edit::parse_template(text, &limits).map_err(|e| edit_failure(e, at))?;
    let filled = edit::fill(text, params, &limits).map_err(|e| fill_failure(e, at))?;
    let output = filled
        .output
        .value()
        .ok_or_else(|| bad(format!("{at}output"), "the output is still a placeholder"))?;
    let format = *output.format.value().ok_or_else(|| {
        bad(
            format!("{at}output.format"),
            "the format is still a placeholder",
        )
    })?;
    let poster = output.poster.is_some();
    let thumbnail = output.thumbnail.is_some();
    let planned = |what| plan::plan_as(&filled, what, &limits).map_err(|e| plan_failure(e, at));
    let duration = planned(Deliverable::Movie(format))?.duration;
    // A poster or thumbnail off the timeline is refused now, not found
    // out after the video has rendered.
    if poster {
        planned(Deliverable::Poster)?;
    }
    if thumbnail {
        planned(Deliverable::Thumbnail)?;
    }
    Ok(Checked {
        format,
        poster,
        thumbnail,
        duration,
        filled,
    })
}

fn plan_failure(e: plan::PlanError, at: &str) -> Failure {
    let param = e.path().map(|p| prefixed(at, p));
    let failure: Failure = ApiError::Plan(e).into();
    match param {
        Some(p) if !p.is_empty() => failure.with_param(p),
        _ => failure,
    }
}

pub fn bad(param: impl Into<String>, message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, "invalid_edit", message).with_param(param)
}

fn prefixed(at: &str, path: &str) -> String {
    match path {
        "" | "." => at.trim_end_matches('.').to_owned(),
        p => format!("{at}{}", p.trim_start_matches('.')),
    }
}

pub fn edit_failure(e: EditError, at: &str) -> Failure {
    let code = ApiError::Edit(e.clone()).code();
    // A missing field is named by its own path, not its parent's.
    let path = field_named(&e.path, &e.message).unwrap_or_default();
    let param = prefixed(at, &path);
    let failure = Failure::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("{}: {}", e.path, e.message),
    );
    if param.is_empty() {
        failure
    } else {
        failure.with_param(param)
    }
}

fn fill_failure(e: FillError, at: &str) -> Failure {
    let param = match &e {
        FillError::Missing { path, .. }
        | FillError::NotText { path, .. }
        | FillError::BadValue { path, .. } => prefixed(at, path),
        FillError::Nested { .. } => "merge".to_owned(),
        FillError::Template(inner) => return edit_failure(inner.clone(), at),
    };
    Failure::new(StatusCode::BAD_REQUEST, "invalid_edit", e.to_string()).with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_named_by_its_full_path() {
        assert_eq!(
            field_named(".", "missing field `name` at line 1 column 2"),
            Some("name".to_owned())
        );
        assert_eq!(
            field_named("merge[0]", "missing field `find`"),
            Some("merge[0].find".to_owned())
        );
        assert_eq!(field_named(".", "expected value"), None);
        assert_eq!(field_named("id", "invalid type"), Some("id".to_owned()));
    }

    #[test]
    fn paths_are_prefixed_for_a_template() {
        assert_eq!(
            prefixed("template.", "output.format"),
            "template.output.format"
        );
        assert_eq!(prefixed("template.", "."), "template");
        assert_eq!(prefixed("", "timeline"), "timeline");
        assert_eq!(prefixed("", "."), "");
    }
}
