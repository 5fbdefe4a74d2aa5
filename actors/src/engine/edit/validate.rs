//! Checks that serde cannot express: numeric ranges, sizes, and the
//! configured limits. Values still waiting for placeholders are skipped.

use std::ops::RangeInclusive;

use super::path::Path;
use super::schema::*;
use super::tpl::{is_placeholder_name, Tpl};
use super::{EditError, EditErrorKind, Limits};

type Checked = Result<(), EditError>;

fn invalid(path: &Path, message: impl Into<String>) -> EditError {
    EditError {
        kind: EditErrorKind::Invalid,
        path: path.to_string(),
        message: message.into(),
    }
}

fn over_limit(path: &Path, message: impl Into<String>) -> EditError {
    EditError {
        kind: EditErrorKind::Limit,
        path: path.to_string(),
        message: message.into(),
    }
}

/// The value of an optional field, if present and not a placeholder.
fn known<T>(v: &Option<Tpl<T>>) -> Option<&T> {
    v.as_ref().and_then(Tpl::value)
}

fn in_range(path: &Path, v: &Option<Tpl<f64>>, range: RangeInclusive<f64>) -> Checked {
    match known(v) {
        Some(x) if !range.contains(x) => Err(invalid(
            path,
            format!(
                "{x} is out of range: must be from {} to {}",
                range.start(),
                range.end()
            ),
        )),
        _ => Ok(()),
    }
}

fn each<T>(
    path: &Path,
    list: &Tpl<Vec<Tpl<T>>>,
    mut check: impl FnMut(&Path, &T) -> Checked,
) -> Checked {
    for (i, item) in list.value().into_iter().flatten().enumerate() {
        if let Some(item) = item.value() {
            check(&path.index(i), item)?;
        }
    }
    Ok(())
}

fn not_empty(path: &Path, s: &Tpl<String>) -> Checked {
    match s.value() {
        Some(s) if s.trim().is_empty() => Err(invalid(path, "must not be empty")),
        _ => Ok(()),
    }
}

pub(super) fn edit(edit: &Edit, limits: &Limits) -> Checked {
    let root = Path::root();
    if let Some(timeline) = edit.timeline.value() {
        self::timeline(&root.key("timeline"), timeline, limits)?;
    }
    if let Some(output) = edit.output.value() {
        self::output(&root.key("output"), output, limits)?;
    }
    if let Some(merge) = &edit.merge {
        merge_fields(&root.key("merge"), merge)?;
    }
    if let Some(callback) = known(&edit.callback) {
        if !(callback.starts_with("https://") || callback.starts_with("http://")) {
            return Err(invalid(&root.key("callback"), "must be an http(s) URL"));
        }
    }
    Ok(())
}

fn merge_fields(path: &Path, merge: &Tpl<Vec<Tpl<MergeField>>>) -> Checked {
    let mut seen = std::collections::HashSet::new();
    each(path, merge, |p, field| {
        if !is_placeholder_name(&field.find) {
            return Err(invalid(
                &p.key("find"),
                "must be a placeholder name without braces: letters, digits, '_', '-' or '.'",
            ));
        }
        if !seen.insert(field.find.clone()) {
            return Err(invalid(
                &p.key("find"),
                format!("`{}` is merged twice", field.find),
            ));
        }
        Ok(())
    })
}

fn timeline(path: &Path, timeline: &Timeline, limits: &Limits) -> Checked {
    if let Some(soundtrack) = known(&timeline.soundtrack) {
        let p = path.key("soundtrack");
        not_empty(&p.key("src"), &soundtrack.src)?;
        in_range(&p.key("volume"), &soundtrack.volume, 0.0..=1.0)?;
    }
    if let Some(fonts) = &timeline.fonts {
        each(&path.key("fonts"), fonts, |p, font| {
            not_empty(&p.key("src"), &font.src)
        })?;
    }
    let tracks_path = path.key("tracks");
    let tracks = timeline
        .tracks
        .value()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if tracks.len() > limits.max_tracks {
        return Err(over_limit(
            &tracks_path,
            format!(
                "{} tracks exceed the limit max_tracks = {}",
                tracks.len(),
                limits.max_tracks
            ),
        ));
    }
    let mut clips = 0usize;
    // Each distinct source is a fetch and an open decoder; a template's
    // placeholder counts as one (checked again once filled in).
    let mut sources = std::collections::HashSet::new();
    if let Some(soundtrack) = known(&timeline.soundtrack) {
        sources.insert(tpl_text(&soundtrack.src).to_owned());
    }
    each(&tracks_path, &timeline.tracks, |p, track| {
        let clips_path = p.key("clips");
        each(&clips_path, &track.clips, |p, c| {
            if let Some(src) = c.asset.value().and_then(asset_src) {
                if sources.insert(tpl_text(src).to_owned()) && sources.len() > limits.max_sources {
                    return Err(over_limit(
                        &p.key("asset").key("src"),
                        format!(
                            "the timeline reads more distinct sources than the limit max_sources = {}",
                            limits.max_sources
                        ),
                    ));
                }
            }
            clips += 1;
            if clips > limits.max_clips {
                return Err(over_limit(
                    p,
                    format!(
                        "the timeline has more clips than the limit max_clips = {}",
                        limits.max_clips
                    ),
                ));
            }
            clip(p, c, limits)
        })
    })
}

fn tpl_text(s: &Tpl<String>) -> &str {
    match s {
        Tpl::Value(v) | Tpl::Template(v) => v,
    }
}

fn asset_src(asset: &Asset) -> Option<&Tpl<String>> {
    match asset {
        Asset::Video(v) => Some(&v.src),
        Asset::Image(i) => Some(&i.src),
        Asset::Audio(a) => Some(&a.src),
        Asset::Luma(l) => Some(&l.src),
        Asset::Title(_) | Asset::Html(_) => None,
    }
}

fn clip(path: &Path, clip: &Clip, limits: &Limits) -> Checked {
    let start = clip.start.value().copied();
    let length = clip.length.value().copied();
    if let Some(start) = start {
        if !(start >= 0.0 && start.is_finite()) {
            return Err(invalid(
                &path.key("start"),
                format!("{start} must be 0 or more"),
            ));
        }
    }
    if let Some(length) = length {
        if !(length > 0.0 && length.is_finite()) {
            return Err(invalid(
                &path.key("length"),
                format!("{length} must be more than 0"),
            ));
        }
    }
    if let (Some(start), Some(length)) = (start, length) {
        if start + length > limits.max_duration_secs {
            return Err(over_limit(
                &path.key("length"),
                format!(
                    "the clip ends at {}s, past the limit max_duration_secs = {}",
                    start + length,
                    limits.max_duration_secs
                ),
            ));
        }
    }
    if let Some(asset) = clip.asset.value() {
        self::asset(&path.key("asset"), asset)?;
    }
    in_range(&path.key("scale"), &clip.scale, 0.0..=10.0)?;
    in_range(&path.key("opacity"), &clip.opacity, 0.0..=1.0)?;
    if let Some(offset) = known(&clip.offset) {
        self::offset(&path.key("offset"), offset)?;
    }
    if let Some(transform) = known(&clip.transform) {
        let p = path.key("transform");
        if let Some(rotate) = known(&transform.rotate) {
            in_range(&p.key("rotate").key("angle"), &rotate.angle, -360.0..=360.0)?;
        }
        if let Some(skew) = known(&transform.skew) {
            in_range(&p.key("skew").key("x"), &skew.x, 0.0..=3.0)?;
            in_range(&p.key("skew").key("y"), &skew.y, 0.0..=3.0)?;
        }
    }
    Ok(())
}

fn offset(path: &Path, offset: &Offset) -> Checked {
    in_range(&path.key("x"), &offset.x, -10.0..=10.0)?;
    in_range(&path.key("y"), &offset.y, -10.0..=10.0)
}

fn crop(path: &Path, crop: &Option<Tpl<Crop>>) -> Checked {
    let Some(crop) = known(crop) else {
        return Ok(());
    };
    for (side, v) in [
        ("top", &crop.top),
        ("bottom", &crop.bottom),
        ("left", &crop.left),
        ("right", &crop.right),
    ] {
        in_range(&path.key(side), v, 0.0..=1.0)?;
    }
    let sum = |a: &Option<Tpl<f64>>, b: &Option<Tpl<f64>>| {
        known(a).unwrap_or(&0.0) + known(b).unwrap_or(&0.0)
    };
    if sum(&crop.left, &crop.right) >= 1.0 {
        return Err(invalid(path, "left + right crop away the whole width"));
    }
    if sum(&crop.top, &crop.bottom) >= 1.0 {
        return Err(invalid(path, "top + bottom crop away the whole height"));
    }
    Ok(())
}

fn asset(path: &Path, asset: &Asset) -> Checked {
    let trim = |t: &Option<Tpl<f64>>| in_range(&path.key("trim"), t, 0.0..=f64::MAX);
    match asset {
        Asset::Video(v) => {
            not_empty(&path.key("src"), &v.src)?;
            trim(&v.trim)?;
            in_range(&path.key("volume"), &v.volume, 0.0..=1.0)?;
            in_range(&path.key("speed"), &v.speed, 0.0..=10.0)?;
            crop(&path.key("crop"), &v.crop)
        }
        Asset::Image(i) => {
            not_empty(&path.key("src"), &i.src)?;
            crop(&path.key("crop"), &i.crop)
        }
        Asset::Title(t) => {
            let max = super::text::MAX_TITLE_CHARS;
            if t.text
                .value()
                .is_some_and(|text| text.chars().count() > max)
            {
                return Err(invalid(
                    &path.key("text"),
                    format!("is longer than the limit of {max} characters"),
                ));
            }
            match known(&t.offset) {
                Some(o) => offset(&path.key("offset"), o),
                None => Ok(()),
            }
        }
        Asset::Html(h) => {
            for (key, v) in [("width", &h.width), ("height", &h.height)] {
                if let Some(&n) = known(v) {
                    if n == 0 || n > 4096 {
                        return Err(invalid(
                            &path.key(key),
                            format!("{n} must be from 1 to 4096 pixels"),
                        ));
                    }
                }
            }
            // Markup beyond the renderer's limits is refused here, with the
            // field named, rather than failing the render later.
            if let Some(html) = h.html.value() {
                let css = known(&h.css).map_or("", String::as_str);
                if let Err(e) = super::text::check_html(html, css) {
                    return Err(invalid(&path.key(e.field()), e.to_string()));
                }
            }
            Ok(())
        }
        Asset::Audio(a) => {
            not_empty(&path.key("src"), &a.src)?;
            trim(&a.trim)?;
            in_range(&path.key("volume"), &a.volume, 0.0..=1.0)?;
            in_range(&path.key("speed"), &a.speed, 0.0..=10.0)
        }
        Asset::Luma(l) => {
            not_empty(&path.key("src"), &l.src)?;
            trim(&l.trim)
        }
    }
}

fn output(path: &Path, output: &Output, limits: &Limits) -> Checked {
    if let Some(size) = known(&output.size) {
        // Given with resolution and aspectRatio (as in the seed's own
        // example), the size wins: see `plan::output`.
        let p = path.key("size");
        let image = matches!(output.format.value(), Some(f) if f.is_image());
        let (max_w, max_h) = if image {
            (limits.max_image_width, limits.max_image_height)
        } else {
            (limits.max_video_width, limits.max_video_height)
        };
        for (key, v, max, limit_name) in [
            (
                "width",
                &size.width,
                max_w,
                if image {
                    "max_image_width"
                } else {
                    "max_video_width"
                },
            ),
            (
                "height",
                &size.height,
                max_h,
                if image {
                    "max_image_height"
                } else {
                    "max_video_height"
                },
            ),
        ] {
            match v {
                None => return Err(invalid(&p.key(key), "required in a custom size")),
                Some(Tpl::Value(n)) => {
                    if *n < 2 || n % 2 != 0 {
                        return Err(invalid(
                            &p.key(key),
                            format!("{n} must be an even number of pixels, 2 or more"),
                        ));
                    }
                    if *n > max {
                        return Err(over_limit(
                            &p.key(key),
                            format!("{n} exceeds the limit {limit_name} = {max}"),
                        ));
                    }
                }
                Some(Tpl::Template(_)) => {}
            }
        }
    }
    if let Some(range) = known(&output.range) {
        let p = path.key("range");
        in_range(
            &p.key("start"),
            &range.start,
            0.0..=limits.max_duration_secs,
        )?;
        if let Some(&length) = known(&range.length) {
            if !(length > 0.0 && length <= limits.max_duration_secs) {
                return Err(invalid(
                    &p.key("length"),
                    format!(
                        "{length} must be more than 0 and at most {}",
                        limits.max_duration_secs
                    ),
                ));
            }
        }
    }
    if let Some(poster) = known(&output.poster) {
        in_range(
            &path.key("poster").key("capture"),
            &Some(poster.capture.clone()),
            0.0..=limits.max_duration_secs,
        )?;
    }
    if let Some(thumb) = known(&output.thumbnail) {
        let p = path.key("thumbnail");
        in_range(
            &p.key("capture"),
            &Some(thumb.capture.clone()),
            0.0..=limits.max_duration_secs,
        )?;
        if let Some(&scale) = thumb.scale.value() {
            if !(scale > 0.0 && scale <= 1.0) {
                return Err(invalid(
                    &p.key("scale"),
                    format!("{scale} must be more than 0 and at most 1"),
                ));
            }
        }
    }
    if let Some(destinations) = &output.destinations {
        each(&path.key("destinations"), destinations, |p, d| match d {
            Destination::Mux(m) => match known(&m.options).and_then(|o| known(&o.passthrough)) {
                Some(pass) if pass.len() > 255 => Err(invalid(
                    &p.key("options").key("passthrough"),
                    "must be at most 255 characters",
                )),
                _ => Ok(()),
            },
            Destination::S3(s3) => match known(&s3.options) {
                Some(o) => {
                    not_empty(&p.key("options").key("region"), &o.region)?;
                    not_empty(&p.key("options").key("bucket"), &o.bucket)
                }
                None => Err(invalid(
                    &p.key("options"),
                    "an s3 destination needs options with region and bucket",
                )),
            },
            Destination::Shotstack(_) => Ok(()),
        })?;
    }
    Ok(())
}
