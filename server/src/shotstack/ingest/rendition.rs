//! The Edit that makes a rendition: one clip of the whole source, with
//! the rendition's fit, size, format, rate and quality.

use serde_json::{json, Value};

use super::facts::Read;
use super::request::{Format, RenditionSpec};

/// `n` to the nearest even number, at least 2.
fn even(n: f64) -> u32 {
    ((n / 2.0).round() as u32 * 2).max(2)
}

/// The size of a rendition: both sides given; one side given, the other
/// from the source's aspect; else the `resolution` preset; else the
/// source's own size, within `max`. A `size` wins over a `resolution`
/// sent with it (the seed's own example sends both; README, Ingest).
fn rendition_size(read: &Read, spec: &RenditionSpec, max: (u32, u32)) -> Option<(u32, u32)> {
    let source = read
        .width
        .zip(read.height)
        .filter(|(w, h)| *w > 0 && *h > 0);
    let aspect = source.map(|(w, h)| f64::from(w) / f64::from(h));
    match (spec.width, spec.height) {
        (Some(w), Some(h)) => Some((w, h)),
        (Some(w), None) => Some((
            w,
            even(f64::from(w) / aspect.unwrap_or(16.0 / 9.0)).min(max.1),
        )),
        (None, Some(h)) => Some((
            even(f64::from(h) * aspect.unwrap_or(16.0 / 9.0)).min(max.0),
            h,
        )),
        (None, None) if spec.resolution.is_some() => None,
        (None, None) => source.map(|(w, h)| {
            let scale = (f64::from(max.0) / f64::from(w))
                .min(f64::from(max.1) / f64::from(h))
                .min(1.0);
            (even(f64::from(w) * scale), even(f64::from(h) * scale))
        }),
    }
}

/// The Engine's quality for the seed's 1–100: its three steps, in thirds
/// (1–33 low, 34–66 medium, 67–100 high).
pub fn quality(q: u32) -> &'static str {
    match q {
        0..=33 => "low",
        34..=66 => "medium",
        _ => "high",
    }
}

/// The Edit that makes a rendition: one track, one clip of the whole
/// source, the rendition's fit, and its format, size, rate and quality.
pub fn rendition_edit(
    asset: &str,
    read: &Read,
    spec: &RenditionSpec,
    format: Format,
    max: (u32, u32),
) -> Value {
    let length = read.duration.filter(|d| *d > 0.0).unwrap_or(1.0);
    let mut clip = json!({
        "asset": { "type": read.kind, "src": asset },
        "start": 0,
        "length": length,
    });
    let mut output = json!({ "format": format.extension() });
    if read.kind != "audio" {
        clip["fit"] = json!(spec.fit);
        match rendition_size(read, spec, max) {
            Some((w, h)) => output["size"] = json!({ "width": w, "height": h }),
            None => {
                let preset = match spec.resolution {
                    Some("fhd") => "1080",
                    Some(other) => other,
                    None => "sd",
                };
                output["resolution"] = json!(preset);
            }
        }
    }
    if format == Format::Mp4 {
        output["fps"] = json!(spec.fps.unwrap_or(25.0));
    }
    if let Some(q) = spec.quality {
        output["quality"] = json!(quality(q));
    }
    json!({
        "timeline": { "tracks": [{ "clips": [clip] }] },
        "output": output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> RenditionSpec {
        let body = json!({ "url": "http://h/a.mp4", "outputs": { "renditions": [v] } });
        let limits = super::super::request::SizeLimits {
            video: (1920, 1920),
            image: (4096, 4096),
        };
        super::super::request::parse_source(body.to_string().as_bytes(), limits)
            .unwrap()
            .renditions
            .remove(0)
    }

    const VIDEO: Read = Read {
        kind: "video",
        extension: String::new(),
        width: Some(320),
        height: Some(240),
        duration: Some(2.0),
        fps: Some(25.0),
    };

    #[test]
    fn a_video_rendition_is_one_clip_of_the_whole_source() {
        let s = spec(
            json!({ "format": "mp4", "size": { "width": 160 }, "fit": "contain", "quality": 70, "fps": 12 }),
        );
        let edit = rendition_edit("ingest-x-source", &VIDEO, &s, Format::Mp4, (1920, 1920));
        assert_eq!(
            edit,
            json!({
                "timeline": { "tracks": [{ "clips": [{
                    "asset": { "type": "video", "src": "ingest-x-source" },
                    "start": 0, "length": 2.0, "fit": "contain" }] }] },
                "output": { "format": "mp4", "size": { "width": 160, "height": 120 }, "fps": 12.0, "quality": "high" }
            })
        );
        let s = spec(json!({ "resolution": "fhd" }));
        let edit = rendition_edit("a", &VIDEO, &s, Format::Mp4, (1920, 1920));
        assert_eq!(edit["output"]["resolution"], "1080");
        let s = spec(json!({}));
        let edit = rendition_edit("a", &VIDEO, &s, Format::Mp4, (1920, 1920));
        assert_eq!(
            edit["output"]["size"],
            json!({ "width": 320, "height": 240 })
        );
        assert_eq!(edit["timeline"]["tracks"][0]["clips"][0]["fit"], "crop");
    }

    #[test]
    fn quality_maps_in_thirds() {
        assert_eq!(
            [1, 33, 34, 66, 67, 100].map(quality),
            ["low", "low", "medium", "medium", "high", "high"]
        );
    }
}
