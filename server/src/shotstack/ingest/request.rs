//! The body of `POST ingest/{stage}/sources` (the seed's Source, Outputs,
//! Rendition, Size and Destinations schemas), checked field by field: a
//! wrong value is refused at its JSON path with the values allowed, a
//! field of Shotstack's that this server does not do is refused as not
//! implemented, and no field is accepted and then ignored.

use serde_json::{Map, Value};
use url::Url;

/// What a rendition is encoded to: the seed's four formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp4,
    Mp3,
    Jpg,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mp3 => "mp3",
            Format::Jpg => "jpg",
            Format::Png => "png",
        }
    }

    /// The kind of source the format can be made from: the seed allows
    /// only video to video, image to image and audio to audio.
    pub fn kind(self) -> &'static str {
        match self {
            Format::Mp4 => "video",
            Format::Mp3 => "audio",
            Format::Jpg | Format::Png => "image",
        }
    }
}

/// The Edit's `fit`, which means the same as the rendition's (crop: fill
/// and cut, cover: stretch, contain: fit inside).
pub const FITS: [&str; 3] = ["crop", "cover", "contain"];
pub const RESOLUTIONS: [&str; 5] = ["preview", "mobile", "sd", "hd", "fhd"];
pub const FPS: [f64; 11] = [
    12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0,
];
const FORMATS: [&str; 4] = ["mp4", "mp3", "jpg", "png"];
/// Fields of Shotstack's newer Rendition (its SDKs send them) that this
/// server does not do.
const NOT_BUILT_RENDITION: [&str; 3] = ["speed", "keyframeInterval", "enhance"];
const MAX_FILENAME: usize = 200;
/// Renditions one source may ask for: each is a render, so a request may
/// not queue an unbounded number of them.
pub const MAX_RENDITIONS: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct RenditionSpec {
    pub format: Option<Format>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: &'static str,
    pub resolution: Option<&'static str>,
    pub quality: Option<u32>,
    pub fps: Option<f64>,
    pub filename: Option<String>,
    /// The rendition as sent, echoed as its `transformation`.
    pub raw: Value,
}

impl RenditionSpec {
    /// A field given that `format` has no use for (`fps` is a video's,
    /// sizes and fit are pictures', and a PNG is lossless whatever its
    /// `quality`), so that none is taken and ignored.
    pub fn unused_by(&self, format: Format) -> Option<&'static str> {
        let given = |name: &str| self.raw.get(name).is_some_and(|v| !v.is_null());
        let fields: &[&'static str] = match format {
            Format::Mp4 => &[],
            Format::Jpg => &["fps"],
            Format::Png => &["fps", "quality"],
            Format::Mp3 => &["fps", "size", "fit", "resolution"],
        };
        fields.iter().copied().find(|f| given(f))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRequest {
    pub url: Url,
    pub renditions: Vec<RenditionSpec>,
    pub callback: Option<Url>,
}

/// A field refused: where, why, and whether it is valid Shotstack that
/// this server does not do (501) rather than wrong (400).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
    pub not_built: bool,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
        not_built: false,
    }
}

fn not_built(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
        not_built: true,
    }
}

/// The largest sizes a rendition may ask for.
#[derive(Debug, Clone, Copy)]
pub struct SizeLimits {
    pub video: (u32, u32),
    pub image: (u32, u32),
}

pub fn parse_source(body: &[u8], limits: SizeLimits) -> Result<SourceRequest, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("", format!("the body is not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("", "the body must be a JSON object (the seed's Source)"))?;
    known_fields(
        object,
        "",
        &["url", "outputs", "destinations", "callback"],
        &[],
    )?;
    let url = match object.get("url") {
        None | Some(Value::Null) => return Err(invalid("url", "\"url\" is required")),
        Some(v) => http_url(v, "url")?,
    };
    let callback = match object.get("callback") {
        None | Some(Value::Null) => None,
        Some(v) => Some(http_url(v, "callback")?),
    };
    if let Some(destinations) = object.get("destinations") {
        check_destinations(destinations)?;
    }
    let mut renditions = Vec::new();
    match object.get("outputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(outputs)) => {
            known_fields(outputs, "outputs", &["renditions"], &["transcription"])?;
            match outputs.get("renditions") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) if items.len() > MAX_RENDITIONS => {
                    return Err(invalid(
                        "outputs.renditions",
                        format!("at most {MAX_RENDITIONS} renditions per source"),
                    ))
                }
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        renditions.push(rendition(
                            item,
                            &format!("outputs.renditions[{i}]"),
                            limits,
                        )?);
                    }
                }
                Some(_) => {
                    return Err(invalid(
                        "outputs.renditions",
                        "renditions must be an array of renditions",
                    ))
                }
            }
        }
        Some(_) => return Err(invalid("outputs", "outputs must be an object")),
    }
    Ok(SourceRequest {
        url,
        renditions,
        callback,
    })
}

/// Refuses any field not in `known` (400) or in `not_done` (501).
fn known_fields(
    object: &Map<String, Value>,
    at: &str,
    known: &[&str],
    not_done: &[&str],
) -> Result<(), Invalid> {
    for name in object.keys() {
        let path = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}.{name}")
        };
        if not_done.contains(&name.as_str()) {
            return Err(not_built(
                path,
                format!("{name} is not supported by this server"),
            ));
        }
        if !known.contains(&name.as_str()) {
            return Err(invalid(
                path,
                format!(
                    "unknown field {name:?}; the fields are {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn http_url(v: &Value, path: &str) -> Result<Url, Invalid> {
    let text = v
        .as_str()
        .ok_or_else(|| invalid(path, format!("{path} must be a URL string")))?;
    let url = Url::parse(text).map_err(|e| invalid(path, format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            path,
            format!("{path} must be an http or https URL with a host"),
        ));
    }
    Ok(url)
}

/// `destinations`: the seed's Destinations object (an array of them is
/// taken too, as an Edit's output has). Shotstack hosting is what this
/// server does; opting out of it, or another provider, is not built.
fn check_destinations(v: &Value) -> Result<(), Invalid> {
    let items: Vec<(String, &Value)> = match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("destinations[{i}]"), d))
            .collect(),
        other => vec![("destinations".to_owned(), other)],
    };
    for (path, d) in items {
        let object = d
            .as_object()
            .ok_or_else(|| invalid(&path, "a destination must be an object"))?;
        let provider = object
            .get("provider")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{path}.provider"), "provider is required"))?;
        match provider {
            "shotstack" => {
                known_fields(object, &path, &["provider", "exclude"], &[])?;
                match object.get("exclude") {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                    Some(Value::Bool(true)) => {
                        return Err(not_built(
                            format!("{path}.exclude"),
                            "exclude: true is not supported: this server has no other destination \
                             to send ingested files to, so they are always hosted here",
                        ))
                    }
                    Some(_) => {
                        return Err(invalid(
                            format!("{path}.exclude"),
                            "exclude must be true or false",
                        ))
                    }
                }
            }
            "s3" | "mux" | "googlecloudstorage" | "google-drive" | "vimeo" => {
                return Err(not_built(
                    format!("{path}.provider"),
                    format!("the {provider} destination is not supported for ingested files; only shotstack is"),
                ))
            }
            other => {
                return Err(invalid(
                    format!("{path}.provider"),
                    format!("unknown provider {other:?}; the providers are shotstack, s3, mux"),
                ))
            }
        }
    }
    Ok(())
}

/// A whole number, written `70` or `70.0`.
fn whole(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
}

fn one_of(v: &Value, path: &str, allowed: &[&'static str]) -> Result<&'static str, Invalid> {
    let text = v.as_str().unwrap_or_default();
    allowed
        .iter()
        .find(|a| **a == text)
        .copied()
        .ok_or_else(|| {
            invalid(
                path,
                format!("{v} is not allowed; the values are {}", allowed.join(", ")),
            )
        })
}

/// A rendition as stored (its `transformation`), read again after a
/// restart.
pub fn stored_rendition(v: &Value, limits: SizeLimits) -> Result<RenditionSpec, Invalid> {
    rendition(v, "transformation", limits)
}

fn rendition(v: &Value, at: &str, limits: SizeLimits) -> Result<RenditionSpec, Invalid> {
    let object = v
        .as_object()
        .ok_or_else(|| invalid(at, "a rendition must be an object"))?;
    known_fields(
        object,
        at,
        &[
            "format",
            "size",
            "fit",
            "resolution",
            "quality",
            "fps",
            "filename",
        ],
        &NOT_BUILT_RENDITION,
    )?;
    let field = |name: &str| object.get(name).filter(|v| !v.is_null());
    let path = |name: &str| format!("{at}.{name}");
    let format = match field("format") {
        None => None,
        Some(v) => Some(match one_of(v, &path("format"), &FORMATS)? {
            "mp4" => Format::Mp4,
            "mp3" => Format::Mp3,
            "jpg" => Format::Jpg,
            _ => Format::Png,
        }),
    };
    let (mut width, mut height) = (None, None);
    if let Some(size) = field("size") {
        let size = size
            .as_object()
            .ok_or_else(|| invalid(path("size"), "size must be an object {width, height}"))?;
        known_fields(size, &path("size"), &["width", "height"], &[])?;
        let (max_w, max_h) = match format {
            Some(Format::Jpg | Format::Png) => limits.image,
            _ => limits.video,
        };
        for (name, max, slot) in [("width", max_w, &mut width), ("height", max_h, &mut height)] {
            let Some(v) = size.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let p = format!("{at}.size.{name}");
            let n =
                whole(v).ok_or_else(|| invalid(&p, format!("{name} must be a whole number")))?;
            if n < 2 || n > i64::from(max) || n % 2 != 0 {
                return Err(invalid(
                    p,
                    format!("{name} must be an even number of pixels from 2 to {max}"),
                ));
            }
            *slot = Some(n as u32);
        }
    }
    let fit = match field("fit") {
        None => "crop",
        Some(v) => one_of(v, &path("fit"), &FITS)?,
    };
    let resolution = match field("resolution") {
        None => None,
        Some(v) => Some(one_of(v, &path("resolution"), &RESOLUTIONS)?),
    };
    let quality = match field("quality") {
        None => None,
        Some(v) => match whole(v) {
            Some(q @ 1..=100) => Some(q as u32),
            _ => {
                return Err(invalid(
                    path("quality"),
                    "quality must be a whole number from 1 to 100",
                ))
            }
        },
    };
    let fps = match field("fps") {
        None => None,
        Some(v) => {
            let f = v
                .as_f64()
                .filter(|f| FPS.iter().any(|a| (a - f).abs() < 1e-9));
            let allowed: Vec<String> = FPS.iter().map(|f| f.to_string()).collect();
            Some(f.ok_or_else(|| {
                invalid(
                    path("fps"),
                    format!("{v} is not allowed; the values are {}", allowed.join(", ")),
                )
            })?)
        }
    };
    let filename = match field("filename") {
        None => None,
        Some(v) => {
            let name = v.as_str().unwrap_or_default();
            let ok = !name.is_empty()
                && name.len() <= MAX_FILENAME
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(invalid(
                    path("filename"),
                    format!(
                        "filename must be 1 to {MAX_FILENAME} letters, digits, '-', '_' or '.', \
                         not starting with '.' (the extension is added)"
                    ),
                ));
            }
            Some(name.to_owned())
        }
    };
    let spec = RenditionSpec {
        format,
        width,
        height,
        fit,
        resolution,
        quality,
        fps,
        filename,
        raw: v.clone(),
    };
    if let Some(format) = spec.format {
        if let Some(field) = spec.unused_by(format) {
            return Err(invalid(
                path(field),
                format!("{field} does not apply to {}", format.extension()),
            ));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: SizeLimits = SizeLimits {
        video: (1920, 1920),
        image: (4096, 4096),
    };

    fn parse(v: Value) -> Result<SourceRequest, Invalid> {
        parse_source(v.to_string().as_bytes(), LIMITS)
    }

    #[test]
    fn the_seeds_example_is_taken_whole() {
        let body = json!({
            "url": "https://github.com/shotstack/test-media/raw/main/captioning/scott-ko.mp4",
            "outputs": { "renditions": [{
                "format": "mp4", "size": { "width": 1200, "height": 800 }, "fit": "crop",
                "resolution": "sd", "quality": 70.0, "fps": 25, "filename": "my-video"
            }]},
            "destinations": { "provider": "shotstack", "exclude": false },
            "callback": "https://my-server.com/callback.php"
        });
        let r = parse(body.clone()).unwrap();
        let spec = &r.renditions[0];
        assert_eq!(spec.format, Some(Format::Mp4));
        assert_eq!((spec.width, spec.height), (Some(1200), Some(800)));
        assert_eq!(spec.quality, Some(70));
        assert_eq!(spec.fps, Some(25.0));
        assert_eq!(spec.raw, body["outputs"]["renditions"][0]);
        assert_eq!(
            r.callback.unwrap().as_str(),
            "https://my-server.com/callback.php"
        );
    }

    #[test]
    fn every_wrong_field_is_named_at_its_path() {
        let rendition =
            |r: Value| json!({ "url": "http://h/a.mp4", "outputs": { "renditions": [r] } });
        for (body, path, not_built) in [
            (json!({}), "url", false),
            (json!({ "url": "ftp://h/a" }), "url", false),
            (json!({ "url": "http://h/a", "extra": 1 }), "extra", false),
            (
                json!({ "url": "http://h/a", "callback": 5 }),
                "callback",
                false,
            ),
            (
                json!({ "url": "http://h/a", "outputs": { "transcription": {} } }),
                "outputs.transcription",
                true,
            ),
            (
                json!({ "url": "http://h/a", "destinations": { "provider": "shotstack", "exclude": true } }),
                "destinations.exclude",
                true,
            ),
            (
                json!({ "url": "http://h/a", "destinations": { "provider": "s3" } }),
                "destinations.provider",
                true,
            ),
            (
                json!({ "url": "http://h/a", "destinations": { "provider": "ftp" } }),
                "destinations.provider",
                false,
            ),
            (
                rendition(json!({ "format": "webm" })),
                "outputs.renditions[0].format",
                false,
            ),
            (
                rendition(json!({ "fit": "none" })),
                "outputs.renditions[0].fit",
                false,
            ),
            (
                rendition(json!({ "resolution": "4k" })),
                "outputs.renditions[0].resolution",
                false,
            ),
            (
                rendition(json!({ "format": "png", "quality": 70 })),
                "outputs.renditions[0].quality",
                false,
            ),
            (
                rendition(json!({ "quality": 0 })),
                "outputs.renditions[0].quality",
                false,
            ),
            (
                rendition(json!({ "quality": 70.5 })),
                "outputs.renditions[0].quality",
                false,
            ),
            (
                rendition(json!({ "fps": 26 })),
                "outputs.renditions[0].fps",
                false,
            ),
            (
                rendition(json!({ "size": { "width": 101 } })),
                "outputs.renditions[0].size.width",
                false,
            ),
            (
                rendition(json!({ "size": { "height": 3000 } })),
                "outputs.renditions[0].size.height",
                false,
            ),
            (
                rendition(json!({ "filename": "../x" })),
                "outputs.renditions[0].filename",
                false,
            ),
            (
                rendition(json!({ "speed": { "speed": 2 } })),
                "outputs.renditions[0].speed",
                true,
            ),
            (
                rendition(json!({ "colour": "red" })),
                "outputs.renditions[0].colour",
                false,
            ),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.path, path, "{body}: {e:?}");
            assert_eq!(e.not_built, not_built, "{body}: {e:?}");
        }
        let e = parse(rendition(json!({ "fit": "stretch" }))).unwrap_err();
        assert!(e.message.contains("crop, cover, contain"), "{}", e.message);
    }
}
