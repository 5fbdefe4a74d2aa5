//! Sources as the seed's SourceResponseData shows them. A field with no
//! value is left out, never `null` (the SDKs' models refuse nulls).

use clipstream_storage::{Rendition, Source};
use serde_json::{json, Map, Value};

use super::super::envelope::iso_date;

/// Rounded to the millisecond / thousandth, as Shotstack prints them.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn put<T: Into<Value>>(map: &mut Map<String, Value>, name: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(name.to_owned(), v.into());
    }
}

/// A hosted file's URL as stored (made with the base of the request that
/// asked for the source) told with the base of this request: the same
/// file, reached the way this client reaches the server.
fn rebased(url: &Option<String>, stored: &str, base: &str) -> Option<String> {
    url.as_ref().map(|u| match u.strip_prefix(stored) {
        Some(path) if path.starts_with('/') => format!("{base}{path}"),
        _ => u.clone(),
    })
}

fn rendition(r: &Rendition, stored: &str, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("status".into(), json!(r.status));
    put(&mut m, "url", rebased(&r.url, stored, base));
    put(&mut m, "executionTime", r.execution_ms.map(round3));
    m.insert("transformation".into(), r.transformation.clone());
    put(&mut m, "width", r.width);
    put(&mut m, "height", r.height);
    put(&mut m, "duration", r.duration.map(round3));
    put(&mut m, "fps", r.fps.map(round3));
    put(&mut m, "error", r.error.clone());
    Value::Object(m)
}

/// `{"type": "source", "id", "attributes": {...}}`, URLs under `base`.
pub fn source(s: &Source, base: &str) -> Value {
    let mut a = Map::new();
    a.insert("id".into(), json!(s.id));
    a.insert("owner".into(), json!(s.account));
    put(&mut a, "input", s.input.clone());
    put(&mut a, "source", rebased(&s.url, &s.base, base));
    a.insert("status".into(), json!(s.status));
    if !s.renditions.is_empty() {
        let renditions: Vec<Value> = s
            .renditions
            .iter()
            .map(|r| rendition(r, &s.base, base))
            .collect();
        a.insert("outputs".into(), json!({ "renditions": renditions }));
    }
    put(&mut a, "width", s.width);
    // The seed types a source's height as a string (its example shows a
    // number); the SDKs' models follow the type, so a string it is.
    put(&mut a, "height", s.height.map(|h| h.to_string()));
    put(&mut a, "duration", s.duration.map(round3));
    put(&mut a, "fps", s.fps.map(round3));
    put(&mut a, "error", s.error.clone());
    a.insert("created".into(), json!(iso_date(s.created_ms)));
    a.insert("updated".into(), json!(iso_date(s.updated_ms)));
    json!({ "type": "source", "id": s.id, "attributes": a })
}
