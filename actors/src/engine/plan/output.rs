//! The `output` of an Edit made concrete: which format, at which sizes and
//! rate, which part of the timeline, and the poster and thumbnail images
//! (the seed's Output, Size, Range, Poster and Thumbnail schemas).
//!
//! Sizes. A `resolution` preset is a 16:9 size; `aspectRatio` keeps its
//! short side and stretches the long one (Shotstack's convention), every
//! side even:
//!
//! | resolution | 16:9 | 9:16 | 1:1 | 4:5 | 4:3 | default fps |
//! |---|---|---|---|---|---|---|
//! | preview | 512×288 | 288×512 | 288×288 | 288×360 | 384×288 | 15 |
//! | mobile | 640×360 | 360×640 | 360×360 | 360×450 | 480×360 | 25 |
//! | sd (default) | 1024×576 | 576×1024 | 576×576 | 576×720 | 768×576 | 25 |
//! | hd | 1280×720 | 720×1280 | 720×720 | 720×900 | 960×720 | 25 |
//! | 1080 | 1920×1080 | 1080×1920 | 1080×1080 | 1080×1350 | 1440×1080 | 25 |
//!
//! A custom `size` wins over both (the seed's own example gives all
//! three). The frame is composed at that size; `scaleTo` names a preset
//! whose size, shaped by the same aspect ratio, the composed frame is
//! scaled to before encoding — a custom size is scaled by the same factor
//! (the preset's width over the resolution's). Without an explicit `fps`
//! the rate is the default of `scaleTo`'s preset, else of the resolution;
//! a GIF above 50 fps gets half the rate (GIF times are in hundredths).

use crate::engine::edit::{self, AspectRatio, Format, Quality, Resolution};
use crate::engine::plan::{PlanError, Rate, Walk};

/// What of a movie a render produces: the movie itself in a format (the
/// extension asked decides, not the Edit's `output.format`), or its
/// poster or thumbnail image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deliverable {
    Movie(Format),
    Poster,
    Thumbnail,
}

/// The output options of a plan, every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub format: Format,
    /// The size the encoder receives (the composed frame scaled to it
    /// when it differs from the plan's composing size).
    pub width: u32,
    pub height: u32,
    pub quality: Quality,
    /// GIF: loop forever (true) or play once.
    pub repeat: bool,
    pub mute: bool,
}

impl Format {
    /// Whether the format carries pictures (mp3 does not).
    pub fn has_video(self) -> bool {
        self != Format::Mp3
    }

    /// Whether the format carries sound.
    pub fn has_audio(self) -> bool {
        matches!(self, Format::Mp4 | Format::Webm | Format::Mp3)
    }

    /// The format of a file extension of `/render/<token>.<ext>`.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext {
            "mp4" => Format::Mp4,
            "webm" => Format::Webm,
            "gif" => Format::Gif,
            "jpg" => Format::Jpg,
            "png" => Format::Png,
            "bmp" => Format::Bmp,
            "mp3" => Format::Mp3,
            _ => return None,
        })
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Webm => "webm",
            Format::Gif => "gif",
            Format::Jpg => "jpg",
            Format::Png => "png",
            Format::Bmp => "bmp",
            Format::Mp3 => "mp3",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Mp4 => "video/mp4",
            Format::Webm => "video/webm",
            Format::Gif => "image/gif",
            Format::Jpg => "image/jpeg",
            Format::Png => "image/png",
            Format::Bmp => "image/bmp",
            Format::Mp3 => "audio/mpeg",
        }
    }
}

/// A preset's 16:9 size and default rate.
fn preset(r: Resolution) -> (u32, u32, f64) {
    match r {
        Resolution::Preview => (512, 288, 15.0),
        Resolution::Mobile => (640, 360, 25.0),
        Resolution::Sd => (1024, 576, 25.0),
        Resolution::Hd => (1280, 720, 25.0),
        Resolution::FullHd => (1920, 1080, 25.0),
    }
}

/// `n` rounded to the nearest even number, at least 2.
fn even(n: f64) -> u32 {
    ((n / 2.0).round() as u32 * 2).max(2)
}

/// A preset's size in an aspect ratio (the table in the module's doc).
pub fn shaped(r: Resolution, aspect: AspectRatio) -> (u32, u32) {
    let (w, short, _) = preset(r);
    let short_f = f64::from(short);
    match aspect {
        AspectRatio::Landscape => (w, short),
        AspectRatio::Portrait => (short, w),
        AspectRatio::Square => (short, short),
        AspectRatio::ShortPortrait => (short, even(short_f * 5.0 / 4.0)),
        AspectRatio::Classic => (even(short_f * 4.0 / 3.0), short),
    }
}

/// Everything the plan needs from `output`, besides the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub output: Output,
    /// The composing size.
    pub compose: (u32, u32),
    pub rate: Rate,
    /// `range`: start and, if given, length, in seconds of the timeline.
    pub range: Option<(f64, Option<f64>)>,
    pub poster: Option<f64>,
    pub thumbnail: Option<(f64, f64)>,
}

impl Options {
    /// The window of the timeline a render of `what` covers, given the
    /// timeline's end: its start and length in seconds. Still images are
    /// one frame long: at `range.start`, else the poster time, else 0.
    pub fn window(&self, what: Deliverable, end: f64, out: &Walk) -> Result<(f64, f64), PlanError> {
        let frame = 1.0 / self.rate.as_f64();
        let one_frame_at = |t: f64, path: Walk| {
            if t >= end {
                Err(PlanError::BeyondTimeline {
                    path: path.path,
                    at: t,
                    end,
                })
            } else {
                Ok((t, frame))
            }
        };
        match what {
            Deliverable::Poster => match self.poster {
                Some(t) => one_frame_at(t, out.at("poster").at("capture")),
                None => Err(PlanError::NoImage {
                    path: out.at("poster").path,
                }),
            },
            Deliverable::Thumbnail => match self.thumbnail {
                Some((t, _)) => one_frame_at(t, out.at("thumbnail").at("capture")),
                None => Err(PlanError::NoImage {
                    path: out.at("thumbnail").path,
                }),
            },
            Deliverable::Movie(f) if f.is_image() => match (self.range, self.poster) {
                (Some((start, _)), _) => one_frame_at(start, out.at("range").at("start")),
                (None, Some(t)) => one_frame_at(t, out.at("poster").at("capture")),
                (None, None) => Ok((0.0, frame)),
            },
            Deliverable::Movie(_) => match self.range {
                None => Ok((0.0, end)),
                Some((start, length)) => {
                    if start >= end {
                        return Err(PlanError::BeyondTimeline {
                            path: out.at("range").at("start").path,
                            at: start,
                            end,
                        });
                    }
                    // A range past the end stops at the end.
                    Ok((start, length.map_or(end - start, |l| l.min(end - start))))
                }
            },
        }
    }

    /// The output of `what`: its format and encoded size.
    pub fn output_of(&self, what: Deliverable) -> Output {
        let mut output = self.output.clone();
        match what {
            Deliverable::Movie(format) => output.format = format,
            Deliverable::Poster => output.format = Format::Jpg,
            Deliverable::Thumbnail => {
                output.format = Format::Jpg;
                let scale = self.thumbnail.map_or(1.0, |(_, s)| s);
                output.width = even(f64::from(output.width) * scale);
                output.height = even(f64::from(output.height) * scale);
            }
        }
        output
    }
}

/// Reads `output`. `limits` bound the sizes when a movie is asked in a
/// video format although its Edit says image (whose sizes may be larger).
pub(crate) fn options(
    out: &Walk,
    output: &edit::Output,
    what: Deliverable,
    limits: &edit::Limits,
) -> Result<Options, PlanError> {
    let resolution = out
        .opt("resolution", &output.resolution)?
        .copied()
        .unwrap_or(Resolution::Sd);
    let aspect = out
        .opt("aspectRatio", &output.aspect_ratio)?
        .copied()
        .unwrap_or(AspectRatio::Landscape);
    let (mut width, mut height) = shaped(resolution, aspect);
    if let Some(size) = out.opt("size", &output.size)? {
        let sw = out.at("size");
        if let Some(w) = sw.opt("width", &size.width)? {
            width = *w;
        }
        if let Some(h) = sw.opt("height", &size.height)? {
            height = *h;
        }
    }
    let scale_to = out.opt("scaleTo", &output.scale_to)?.copied();
    let (out_width, out_height) = match scale_to {
        None => (width, height),
        Some(to) => {
            let factor = f64::from(preset(to).0) / f64::from(preset(resolution).0);
            (
                even(f64::from(width) * factor),
                even(f64::from(height) * factor),
            )
        }
    };
    let format = match what {
        Deliverable::Movie(f) => f,
        Deliverable::Poster | Deliverable::Thumbnail => Format::Jpg,
    };
    let (max_w, max_h, kind) = if format.is_image() {
        (limits.max_image_width, limits.max_image_height, "image")
    } else {
        (limits.max_video_width, limits.max_video_height, "video")
    };
    // The composed size (validation checked a custom size for the Edit's
    // own format only) and the delivered one: a scaleTo up from a small
    // preset can multiply a size several times.
    for (path, (w, h)) in [
        (out.at("size"), (width, height)),
        (out.at("scaleTo"), (out_width, out_height)),
    ] {
        if w > max_w || h > max_h {
            return Err(PlanError::OverLimit {
                path: path.path,
                what: format!(
                    "{w}×{h} exceeds the limits max_{kind}_width × max_{kind}_height = {max_w}×{max_h}"
                ),
            });
        }
    }
    let default_fps = preset(scale_to.unwrap_or(resolution)).2;
    let mut fps = out.opt("fps", &output.fps)?.map_or(default_fps, |f| f.0);
    if format == Format::Gif && fps > 50.0 {
        // GIF delays are whole hundredths: above 50 fps frames would last
        // one hundredth, which browsers stretch to ten. Half the rate keeps
        // the timing true.
        fps /= 2.0;
    }
    let range = match out.opt("range", &output.range)? {
        None => None,
        Some(r) => {
            let rw = out.at("range");
            Some((
                rw.opt("start", &r.start)?.copied().unwrap_or(0.0),
                rw.opt("length", &r.length)?.copied(),
            ))
        }
    };
    let poster = match out.opt("poster", &output.poster)? {
        None => None,
        Some(p) => Some(*out.at("poster").get("capture", &p.capture)?),
    };
    let thumbnail = match out.opt("thumbnail", &output.thumbnail)? {
        None => None,
        Some(t) => {
            let tw = out.at("thumbnail");
            Some((*tw.get("capture", &t.capture)?, *tw.get("scale", &t.scale)?))
        }
    };
    Ok(Options {
        output: Output {
            format,
            width: out_width,
            height: out_height,
            quality: out
                .opt("quality", &output.quality)?
                .copied()
                .unwrap_or(Quality::Medium),
            repeat: out.opt("repeat", &output.repeat)?.copied().unwrap_or(true),
            mute: out.opt("mute", &output.mute)?.copied().unwrap_or(false),
        },
        compose: (width, height),
        rate: Rate::from_fps(fps),
        range,
        poster,
        thumbnail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_in_every_aspect_ratio_is_even() {
        use AspectRatio::*;
        use Resolution::*;
        assert_eq!(shaped(Hd, Portrait), (720, 1280));
        assert_eq!(shaped(Hd, Square), (720, 720));
        assert_eq!(shaped(Hd, ShortPortrait), (720, 900));
        assert_eq!(shaped(Hd, Classic), (960, 720));
        assert_eq!(shaped(Mobile, ShortPortrait), (360, 450));
        assert_eq!(shaped(FullHd, Portrait), (1080, 1920));
        for r in [Preview, Mobile, Sd, Hd, FullHd] {
            for a in [Landscape, Portrait, Square, ShortPortrait, Classic] {
                let (w, h) = shaped(r, a);
                assert!(w % 2 == 0 && h % 2 == 0, "{r:?} {a:?}: {w}×{h}");
            }
        }
    }
}
