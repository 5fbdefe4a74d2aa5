//! What a source or rendition file is, as libavformat (or, for a font,
//! its first bytes) tells: its kind, extension, size, length and rate.

use std::path::Path;

use clipstream_actors::engine::media::probe::{probe, Facts};

/// What libavformat says a file is.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// `video`, `image`, `audio` or `font`.
    pub kind: &'static str,
    pub extension: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<f64>,
    pub fps: Option<f64>,
}

/// The kind a URL's extension promises, if it names a common one: enough
/// to refuse a rendition of the wrong kind before anything is fetched.
pub fn kind_of_extension(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" | "mov" | "m4v" | "webm" | "mkv" | "avi" | "ogv" | "wmv" => "video",
        "jpg" | "jpeg" | "png" | "webp" | "bmp" | "tif" | "tiff" => "image",
        "mp3" | "wav" | "aac" | "m4a" | "ogg" | "oga" | "flac" => "audio",
        "ttf" | "otf" | "woff" | "woff2" => "font",
        _ => return None,
    })
}

/// A plain extension of `hint` (a URL path), if it has one.
fn extension_of(hint: &str) -> Option<String> {
    let name = hint.rsplit('/').next()?;
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    (!ext.is_empty() && ext.len() <= 5 && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(ext)
}

/// `25/1` → 25.0.
fn rate(r: &str) -> Option<f64> {
    let (n, d) = r.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

/// The facts of a source or rendition file; `hint` (a URL path or file
/// name) gives the extension when it has a plain one.
pub fn read(path: &Path, hint: &str) -> Result<Read, String> {
    let facts: Facts = match probe(path, hint) {
        Ok(f) => f,
        Err(e) => {
            return font_extension(path)
                .map(|extension| Read {
                    kind: "font",
                    extension: extension_of(hint).unwrap_or_else(|| extension.to_owned()),
                    width: None,
                    height: None,
                    duration: None,
                    fps: None,
                })
                .ok_or_else(|| format!("not a video, image, audio or font file: {e}"));
        }
    };
    let format = facts.format.format_name.as_str();
    let first = format.split(',').next().unwrap_or_default();
    let video = facts.streams.iter().find(|s| s.codec_type == Some("video"));
    let audio = facts.streams.iter().any(|s| s.codec_type == Some("audio"));
    let image = first.ends_with("_pipe") || first == "image2";
    let kind = match (video, audio) {
        (Some(_), _) if image => "image",
        (Some(_), _) => "video",
        (None, true) => "audio",
        (None, false) => return Err("the file has neither pictures nor sound".into()),
    };
    let derived = match first {
        "mov" => "mp4",
        "matroska" => "mkv",
        "image2" | "jpeg_pipe" => "jpg",
        other => other.strip_suffix("_pipe").unwrap_or(other),
    };
    let extension = extension_of(hint).unwrap_or_else(|| derived.to_owned());
    Ok(Read {
        kind,
        extension,
        width: video.and_then(|v| v.width),
        height: video.and_then(|v| v.height),
        duration: if kind == "image" {
            None
        } else {
            facts
                .format
                .duration
                .or_else(|| video.and_then(|v| v.duration))
        },
        fps: if kind == "video" {
            video
                .and_then(|v| v.avg_frame_rate.as_deref().and_then(rate))
                .or_else(|| video.and_then(|v| v.r_frame_rate.as_deref().and_then(rate)))
        } else {
            None
        },
    })
}

/// Fonts are sources too (for the Edit's `timeline.fonts`); libavformat
/// does not read them, their first bytes tell.
fn font_extension(path: &Path) -> Option<&'static str> {
    use std::io::Read as _;
    let mut head = [0u8; 4];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    match &head {
        [0, 1, 0, 0] | b"true" => Some("ttf"),
        b"OTTO" => Some("otf"),
        b"wOFF" => Some("woff"),
        b"wOF2" => Some("woff2"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_promise_a_kind() {
        assert_eq!(kind_of_extension("/a/b.MP4"), Some("video"));
        assert_eq!(kind_of_extension("/a/b.jpeg"), Some("image"));
        assert_eq!(kind_of_extension("/a/b"), None);
        assert_eq!(extension_of("/a/b.Mp4"), Some("mp4".into()));
        assert_eq!(extension_of("/a.b/c"), None);
    }
}
