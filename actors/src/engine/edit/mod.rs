//! The composition language: a Shotstack Edit (CONTRACT section 6).
//!
//! A dynamic movie is stored as a template: an Edit whose values may be
//! `{{NAME}}` placeholders. [`parse_template`] checks its shape, enumerated
//! values, ranges and limits, and names the JSON path of the first problem.

mod fill;
mod path;
mod schema;
pub mod text;
mod tpl;
mod validate;

pub use fill::{fill, FillError};
pub use schema::*;
pub use tpl::{is_placeholder_name, placeholders, Tpl};

/// Bounds on what a movie may ask for (CONTRACT section 6), declared
/// once: the server's `[limits]` configuration section holds these fields
/// (flattened in beside its own), with their defaults in
/// `conf/default.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_tracks: usize,
    pub max_clips: usize,
    pub max_duration_secs: f64,
    pub max_video_width: u32,
    pub max_video_height: u32,
    pub max_image_width: u32,
    pub max_image_height: u32,
    /// Distinct `src` values (files to fetch and decoders to open).
    pub max_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tracks: 100,
            max_clips: 1000,
            max_duration_secs: 600.0,
            max_video_width: 1920,
            max_video_height: 1920,
            max_image_width: 4096,
            max_image_height: 4096,
            max_sources: 50,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditErrorKind {
    /// Not JSON at all.
    Syntax,
    /// JSON, but not an Edit: wrong type, unknown key, bad enumerated value,
    /// missing field, value out of range.
    Invalid,
    /// A configured limit (tracks, clips, duration, size) is exceeded.
    Limit,
}

/// The first problem found in an Edit, with the JSON path to it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EditError {
    pub kind: EditErrorKind,
    pub path: String,
    pub message: String,
}

impl EditError {
    fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> EditError {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let kind = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                EditErrorKind::Syntax
            }
            _ => EditErrorKind::Invalid,
        };
        let (path, message) = path::join(path, inner.to_string());
        EditError {
            kind,
            path,
            message,
        }
    }
}

/// Parses and validates a template: an Edit whose values may still be
/// placeholders. Values that are placeholders are checked once filled in.
pub fn parse_template(json: &str, limits: &Limits) -> Result<Edit, EditError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let edit: Edit = serde_path_to_error::deserialize(&mut de).map_err(EditError::from_serde)?;
    de.end().map_err(|e| EditError {
        kind: EditErrorKind::Syntax,
        path: ".".into(),
        message: e.to_string(),
    })?;
    validate::edit(&edit, limits)?;
    Ok(edit)
}

/// As [`parse_template`], from a JSON value already parsed.
fn parse_value(json: serde_json::Value, limits: &Limits) -> Result<Edit, EditError> {
    let edit: Edit = serde_path_to_error::deserialize(json).map_err(EditError::from_serde)?;
    validate::edit(&edit, limits)?;
    Ok(edit)
}

impl Edit {
    /// The names of every placeholder left in the template, each once.
    pub fn placeholder_names(&self) -> std::collections::BTreeSet<String> {
        fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
            match v {
                serde_json::Value::String(s) => {
                    out.extend(placeholders(s).into_iter().map(str::to_owned))
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut names = std::collections::BTreeSet::new();
        // Serialising plain data to a Value cannot fail.
        if let Ok(v) = serde_json::to_value(self) {
            walk(&v, &mut names);
        }
        names
    }
}

#[cfg(test)]
mod tests;
