//! Filling a template's `{{NAME}}` placeholders from its `merge` fields and
//! a render's params (params win), then checking the result as a concrete
//! Edit.
//!
//! A string that is exactly one placeholder takes the value with its JSON
//! type (`"length": "{{LEN}}"` with `LEN = 5` becomes the number 5); a
//! placeholder inside longer text is replaced by the value as text. A value
//! that does not fit where it lands is blamed on its placeholder.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::path::Path;
use super::tpl::placeholders;
use super::{parse_value, Edit, EditError, Limits};

/// Why a template could not be filled. Every variant names the placeholder
/// at fault and where it stands.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FillError {
    #[error(
        "{path}: no value for placeholder {name}: give it in params or in the movie's merge fields"
    )]
    Missing { name: String, path: String },
    #[error("{path}: placeholder {name} stands inside text, so its value must be a string, number or boolean")]
    NotText { name: String, path: String },
    #[error("{path}: the value of placeholder {name} does not fit here: {message}")]
    BadValue {
        name: String,
        path: String,
        message: String,
    },
    #[error("params.{name}: a value must not itself hold placeholders")]
    Nested { name: String },
    /// The template itself is not a valid Edit (stored before a change of
    /// rules, or edited by hand).
    #[error("the movie is not a valid Edit: {0}")]
    Template(EditError),
}

impl FillError {
    /// The placeholder at fault, if one is.
    pub fn placeholder(&self) -> Option<&str> {
        match self {
            FillError::Missing { name, .. }
            | FillError::NotText { name, .. }
            | FillError::BadValue { name, .. }
            | FillError::Nested { name } => Some(name),
            FillError::Template(_) => None,
        }
    }
}

/// Fills `template` (the stored movie JSON) with `params` over its merge
/// fields and returns the concrete Edit.
pub fn fill(
    template: &str,
    params: &Map<String, Value>,
    limits: &Limits,
) -> Result<Edit, FillError> {
    let mut doc: Value = serde_json::from_str(template).map_err(|e| {
        FillError::Template(EditError {
            kind: super::EditErrorKind::Syntax,
            path: ".".into(),
            message: e.to_string(),
        })
    })?;
    let values = values(&mut doc, params)?;
    let mut landed = BTreeMap::new();
    substitute(&mut doc, &Path::root(), &values, &mut landed)?;
    parse_value(doc, limits).map_err(|e| blame(e, &landed))
}

/// The merge fields of the document (removed from it: they are consumed
/// here) overlaid with the params.
fn values(
    doc: &mut Value,
    params: &Map<String, Value>,
) -> Result<BTreeMap<String, Value>, FillError> {
    let mut values = BTreeMap::new();
    if let Some(Value::Array(merge)) = doc.as_object_mut().and_then(|o| o.remove("merge")) {
        for field in merge {
            if let (Some(Value::String(find)), Some(replace)) =
                (field.get("find"), field.get("replace"))
            {
                values.insert(find.clone(), replace.clone());
            }
        }
    }
    for (name, value) in params {
        values.insert(name.clone(), value.clone());
    }
    for (name, value) in &values {
        if holds_placeholder(value) {
            return Err(FillError::Nested { name: name.clone() });
        }
    }
    Ok(values)
}

fn holds_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => !placeholders(s).is_empty(),
        Value::Array(items) => items.iter().any(holds_placeholder),
        Value::Object(map) => map.values().any(holds_placeholder),
        _ => false,
    }
}

/// Replaces placeholders in place, recording for each path the
/// placeholder whose whole value landed there.
fn substitute(
    v: &mut Value,
    path: &Path,
    values: &BTreeMap<String, Value>,
    landed: &mut BTreeMap<String, String>,
) -> Result<(), FillError> {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &path.index(i), values, landed)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute(item, &path.key(key), values, landed)?;
            }
        }
        Value::String(s) => {
            let names = placeholders(s);
            let Some(first) = names.first() else {
                return Ok(());
            };
            let lookup = |name: &str| {
                values.get(name).ok_or_else(|| FillError::Missing {
                    name: name.to_owned(),
                    path: path.to_string(),
                })
            };
            if is_whole(s) {
                let name = (*first).to_owned();
                *v = lookup(&name)?.clone();
                landed.insert(path.to_string(), name);
            } else {
                *s = interpolate(s, path, &lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `{{NAME}}` and nothing else, spaces inside the braces allowed.
fn is_whole(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("{{")
        && t.ends_with("}}")
        && t.matches("{{").count() == 1
        && placeholders(t).len() == 1
}

fn interpolate<'a>(
    s: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Result<&'a Value, FillError>,
) -> Result<String, FillError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        if !super::tpl::is_placeholder_name(name) {
            out.push_str(&rest[..open + 2]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..open]);
        match lookup(name)? {
            Value::String(text) => out.push_str(text),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => {}
            Value::Array(_) | Value::Object(_) => {
                return Err(FillError::NotText {
                    name: name.to_owned(),
                    path: path.to_string(),
                })
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An error in the filled Edit is the fault of the placeholder whose value
/// landed at or above its path; otherwise the template's own.
fn blame(e: EditError, landed: &BTreeMap<String, String>) -> FillError {
    let culprit = landed.iter().rev().find(|(at, _)| {
        e.path == **at
            || e.path.starts_with(&format!("{at}."))
            || e.path.starts_with(&format!("{at}["))
    });
    match culprit {
        Some((at, name)) => FillError::BadValue {
            name: name.clone(),
            path: at.clone(),
            message: e.message,
        },
        None => FillError::Template(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = r#"{
        "timeline": { "tracks": [ { "clips": [ {
            "asset": { "type": "title", "text": "Hi {{NAME}}, {{ N }} days left" },
            "start": 0, "length": "{{LEN}}" } ] } ] },
        "output": { "format": "mp4", "resolution": "sd" },
        "merge": [ { "find": "NAME", "replace": "there" }, { "find": "N", "replace": 3 } ]
    }"#;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn text_and_length(edit: &Edit) -> (String, f64) {
        let v = serde_json::to_value(edit).unwrap();
        let clip = &v["timeline"]["tracks"][0]["clips"][0];
        (
            clip["asset"]["text"].as_str().unwrap().to_owned(),
            clip["length"].as_f64().unwrap(),
        )
    }

    #[test]
    fn params_win_over_merge_fields_and_keep_their_type() {
        let edit = fill(
            TEMPLATE,
            &params(json!({ "NAME": "Jane", "LEN": 4.5 })),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            text_and_length(&edit),
            ("Hi Jane, 3 days left".to_owned(), 4.5)
        );
        assert!(edit.merge.is_none(), "merge fields are consumed");
        assert!(edit.placeholder_names().is_empty());
    }

    #[test]
    fn a_value_of_the_wrong_type_is_blamed_on_its_placeholder() {
        let e = fill(
            TEMPLATE,
            &params(json!({ "LEN": "long" })),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.placeholder(), Some("LEN"));
        assert!(
            matches!(&e, FillError::BadValue { path, .. } if path == "timeline.tracks[0].clips[0].length"),
            "{e}"
        );
        let e = fill(TEMPLATE, &params(json!({ "LEN": -2 })), &Limits::default()).unwrap_err();
        assert_eq!(e.placeholder(), Some("LEN"), "{e}");
    }

    #[test]
    fn missing_values_and_structures_inside_text_are_refused() {
        let e = fill(TEMPLATE, &Map::new(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, FillError::Missing { name, .. } if name == "LEN"),
            "{e}"
        );
        let e = fill(
            TEMPLATE,
            &params(json!({ "LEN": 1, "NAME": ["a"] })),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FillError::NotText { name, .. } if name == "NAME"),
            "{e}"
        );
        let e = fill(
            TEMPLATE,
            &params(json!({ "LEN": 1, "NAME": "{{LEN}}" })),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FillError::Nested { name } if name == "NAME"),
            "{e}"
        );
    }

    #[test]
    fn a_whole_object_can_come_from_a_param() {
        let template = r#"{ "timeline": { "tracks": [ { "clips": [ { "asset": "{{HERO}}", "start": 0, "length": 1 } ] } ] },
                            "output": { "format": "mp4", "resolution": "sd" } }"#;
        let hero = json!({ "HERO": { "type": "image", "src": "a.png" } });
        fill(template, &params(hero), &Limits::default()).unwrap();
        let bad = json!({ "HERO": { "type": "image", "source": "a.png" } });
        let e = fill(template, &params(bad), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, FillError::BadValue { name, path, .. } if name == "HERO" && path == "timeline.tracks[0].clips[0].asset"),
            "{e}"
        );
    }
}
