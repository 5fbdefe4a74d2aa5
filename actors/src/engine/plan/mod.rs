//! A render plan: a filled Edit reduced to what the compositor draws and
//! mixes, with Shotstack's defaults applied and every value concrete.
//!
//! Features of the Edit that the renderer does not draw yet are refused
//! here with their JSON path, so a render never silently looks different
//! from what its template asks for.

use crate::engine::edit::{
    self, Asset, AudioEffect, Edit, Filter, Fit, MotionEffect, Position, Speed, Speeded, Tpl,
    TransitionKind,
};

pub mod output;

pub use output::{Deliverable, Output};

/// Frames per second as a fraction, so 29.97 is exactly 30000/1001.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub num: u32,
    pub den: u32,
}

impl Rate {
    pub(crate) fn from_fps(fps: f64) -> Rate {
        for (approx, num) in [(23.976, 24000), (29.97, 30000), (59.94, 60000)] {
            if (fps - approx).abs() < 1e-6 {
                return Rate { num, den: 1001 };
            }
        }
        Rate {
            num: fps.round() as u32,
            den: 1,
        }
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

/// RGBA, not premultiplied.
pub type Rgba = [u8; 4];

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The composing size (the output's may differ: `scaleTo`, thumbnails).
    pub width: u32,
    pub height: u32,
    pub rate: Rate,
    /// The timeline's time of the first output frame (`range.start`, or a
    /// still image's capture time).
    pub start: f64,
    /// Seconds of output from `start`: the rest of the timeline, the
    /// range's length, or one frame for a still image.
    pub duration: f64,
    pub background: Rgba,
    /// Drawn in order: the last track of the Edit first, so that the first
    /// track ends on top.
    pub layers: Vec<Layer>,
    pub sounds: Vec<Sound>,
    /// No sound in the output (`output.mute`, or a format without sound).
    pub mute: bool,
    pub output: Output,
    /// `timeline.fonts`: sources of font files for html assets.
    pub fonts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The Edit's track (0 = the top one): a luma matte masks the other
    /// clips of its own track.
    pub track: usize,
    pub start: f64,
    pub length: f64,
    pub visual: Visual,
    pub fit: Fit,
    pub scale: f64,
    pub position: Position,
    /// Fractions of the viewport; y grows upwards, as in Shotstack.
    pub offset: (f64, f64),
    pub opacity: f64,
    /// Fractions of the asset cut from each side before it is fitted.
    pub crop: Crop,
    pub filter: Option<Filter>,
    pub effect: Option<Speeded<MotionEffect>>,
    pub transition_in: Option<Transition>,
    pub transition_out: Option<Transition>,
    pub transform: Transform,
}

impl Layer {
    /// Whether the clip shows at `t` seconds.
    pub fn is_on(&self, t: f64) -> bool {
        t >= self.start && t < self.start + self.length
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub kind: TransitionKind,
    pub secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Crop {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Crop {
    pub fn is_none(&self) -> bool {
        *self == Crop::default()
    }
}

/// The clip's `transform`: degrees clockwise, shear factors, mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform {
    pub rotate: f64,
    pub skew: (f64, f64),
    pub flip_horizontal: bool,
    pub flip_vertical: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Visual {
    Image {
        src: String,
    },
    /// `speed` 0 holds the trim frame; 2 plays twice as fast.
    Video {
        src: String,
        trim: f64,
        speed: f64,
    },
    Title(Title),
    Html(Html),
    /// A grey picture or video whose brightness is the opacity of the
    /// other clips of its track while it plays (white shows, black hides).
    Luma {
        src: String,
        trim: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    pub text: String,
    pub color: Rgba,
    /// Font size as a fraction of the output height.
    pub size: f64,
    pub background: Option<Rgba>,
    pub position: Position,
    pub offset: (f64, f64),
    pub style: edit::TitleStyle,
}

/// An html asset: its markup and style set into a `width`×`height` box.
#[derive(Debug, Clone, PartialEq)]
pub struct Html {
    pub html: String,
    pub css: String,
    pub width: u32,
    pub height: u32,
    pub background: Option<Rgba>,
    /// Where the content sits inside the box.
    pub position: Position,
}

/// A sound in the mix: a video's own audio, an audio clip or the soundtrack.
#[derive(Debug, Clone, PartialEq)]
pub struct Sound {
    pub src: String,
    pub start: f64,
    pub length: f64,
    pub trim: f64,
    /// Playback speed, pitch kept; 0 is silence.
    pub speed: f64,
    pub volume: f64,
    pub fade_in: f64,
    pub fade_out: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: still a placeholder; fill the Edit first")]
    Unfilled { path: String },
    #[error("the timeline has no clips")]
    Empty,
    #[error("{path}: {what}")]
    OverLimit { path: String, what: String },
    #[error("{path}: {at} s is not on the timeline, which ends at {end} s")]
    BeyondTimeline { path: String, at: f64, end: f64 },
    /// A poster or thumbnail asked of a movie whose output has none.
    #[error("{path}: the movie's output has none")]
    NoImage { path: String },
}

impl PlanError {
    /// The JSON path of the Edit the error is about.
    pub fn path(&self) -> Option<&str> {
        match self {
            PlanError::Unfilled { path }
            | PlanError::OverLimit { path, .. }
            | PlanError::BeyondTimeline { path, .. }
            | PlanError::NoImage { path } => Some(path),
            PlanError::Empty => None,
        }
    }
}

/// How long an audio fade of `fadeIn`/`fadeOut` lasts, in seconds.
const AUDIO_FADE: f64 = 1.0;

fn transition_secs(speed: Speed) -> f64 {
    match speed {
        Speed::Slow => 2.0,
        Speed::Normal => 1.0,
        Speed::Fast => 0.5,
    }
}

/// Walks a filled Edit, keeping the JSON path for errors.
pub(crate) struct Walk {
    pub(crate) path: String,
}

impl Walk {
    pub(crate) fn at(&self, key: &str) -> Walk {
        Walk {
            path: if self.path.is_empty() {
                key.to_owned()
            } else if key.starts_with('[') {
                format!("{}{key}", self.path)
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }

    pub(crate) fn get<'a, T>(&self, key: &str, v: &'a Tpl<T>) -> Result<&'a T, PlanError> {
        v.value().ok_or_else(|| PlanError::Unfilled {
            path: self.at(key).path,
        })
    }

    pub(crate) fn opt<'a, T>(
        &self,
        key: &str,
        v: &'a Option<Tpl<T>>,
    ) -> Result<Option<&'a T>, PlanError> {
        v.as_ref().map(|t| self.get(key, t)).transpose()
    }
}

/// The plan of a movie in its own `output.format`.
pub fn plan(edit: &Edit) -> Result<Plan, PlanError> {
    let output = Walk {
        path: String::new(),
    }
    .get("output", &edit.output)?;
    let format = *Walk {
        path: "output".into(),
    }
    .get("format", &output.format)?;
    plan_as(edit, Deliverable::Movie(format), &edit::Limits::default())
}

/// The plan of `what` of a movie: the movie in a format (whatever its
/// `output.format` says), or its poster or thumbnail.
pub fn plan_as(edit: &Edit, what: Deliverable, limits: &edit::Limits) -> Result<Plan, PlanError> {
    let root = Walk {
        path: String::new(),
    };
    let out_walk = root.at("output");
    let options = output::options(&out_walk, root.get("output", &edit.output)?, what, limits)?;
    let (width, height) = options.compose;

    let tl_walk = root.at("timeline");
    let timeline = root.get("timeline", &edit.timeline)?;
    let mut fonts = Vec::new();
    if let Some(list) = &timeline.fonts {
        let fw = tl_walk.at("fonts");
        for (i, font) in fw.get("", list)?.iter().enumerate() {
            let w = fw.at(&format!("[{i}]"));
            fonts.push(w.get("src", &w.get("", font)?.src)?.clone());
        }
    }
    let background = tl_walk
        .opt("background", &timeline.background)?
        .map_or([0, 0, 0, 255], |c| c.rgba());

    let mut layers = Vec::new();
    let mut sounds = Vec::new();
    let mut duration: f64 = 0.0;
    let tracks_walk = tl_walk.at("tracks");
    let tracks = tl_walk.get("tracks", &timeline.tracks)?;
    // The first track is on top: draw from the last one up.
    for (t, track) in tracks.iter().enumerate().rev() {
        let track_walk = tracks_walk.at(&format!("[{t}]"));
        let track = track_walk.get("", track)?;
        let clips = track_walk.get("clips", &track.clips)?;
        for (c, clip) in clips.iter().enumerate() {
            let w = track_walk.at("clips").at(&format!("[{c}]"));
            let clip = w.get("", clip)?;
            let start = *w.get("start", &clip.start)?;
            let length = *w.get("length", &clip.length)?;
            duration = duration.max(start + length);
            let (transition_in, transition_out) = match w.opt("transition", &clip.transition)? {
                Some(tr) => {
                    let tw = w.at("transition");
                    let one = |key: &str, v: &Option<Tpl<Speeded<TransitionKind>>>| {
                        tw.opt(key, v).map(|s| {
                            s.map(|s| Transition {
                                kind: s.kind,
                                secs: transition_secs(s.speed),
                            })
                        })
                    };
                    (one("in", &tr.in_)?, one("out", &tr.out)?)
                }
                None => (None, None),
            };
            let position = w
                .opt("position", &clip.position)?
                .copied()
                .unwrap_or(Position::Center);
            let offset = self::offset(&w, &clip.offset)?.unwrap_or((0.0, 0.0));
            let transform = match w.opt("transform", &clip.transform)? {
                Some(tf) => self::transform(&w.at("transform"), tf)?,
                None => Transform::default(),
            };
            let aw = w.at("asset");
            let asset = w.get("asset", &clip.asset)?;
            let mut crop = Crop::default();
            let visual = match asset {
                Asset::Video(v) => {
                    crop = self::crop(&aw, &v.crop)?;
                    let speed = aw.opt("speed", &v.speed)?.copied().unwrap_or(1.0);
                    let src = aw.get("src", &v.src)?.clone();
                    let trim = aw.opt("trim", &v.trim)?.copied().unwrap_or(0.0);
                    let (sfade_in, sfade_out) =
                        audio_fades(aw.opt("volumeEffect", &v.volume_effect)?.copied());
                    sounds.push(Sound {
                        src: src.clone(),
                        start,
                        length,
                        trim,
                        speed,
                        volume: aw.opt("volume", &v.volume)?.copied().unwrap_or(1.0),
                        fade_in: sfade_in,
                        fade_out: sfade_out,
                    });
                    Some(Visual::Video { src, trim, speed })
                }
                Asset::Image(i) => {
                    crop = self::crop(&aw, &i.crop)?;
                    Some(Visual::Image {
                        src: aw.get("src", &i.src)?.clone(),
                    })
                }
                Asset::Title(title) => {
                    Some(Visual::Title(self::title(&aw, title, position, offset)?))
                }
                Asset::Audio(a) => {
                    let (fade_in, fade_out) = audio_fades(aw.opt("effect", &a.effect)?.copied());
                    sounds.push(Sound {
                        src: aw.get("src", &a.src)?.clone(),
                        start,
                        length,
                        trim: aw.opt("trim", &a.trim)?.copied().unwrap_or(0.0),
                        speed: aw.opt("speed", &a.speed)?.copied().unwrap_or(1.0),
                        volume: aw.opt("volume", &a.volume)?.copied().unwrap_or(1.0),
                        fade_in,
                        fade_out,
                    });
                    None
                }
                Asset::Html(h) => Some(Visual::Html(self::html(&aw, h, width, height)?)),
                Asset::Luma(l) => Some(Visual::Luma {
                    src: aw.get("src", &l.src)?.clone(),
                    trim: aw.opt("trim", &l.trim)?.copied().unwrap_or(0.0),
                }),
            };
            if let Some(visual) = visual {
                layers.push(Layer {
                    track: t,
                    start,
                    length,
                    visual,
                    fit: w.opt("fit", &clip.fit)?.copied().unwrap_or(Fit::Crop),
                    scale: w.opt("scale", &clip.scale)?.copied().unwrap_or(1.0),
                    position,
                    offset,
                    opacity: w.opt("opacity", &clip.opacity)?.copied().unwrap_or(1.0),
                    crop,
                    filter: w.opt("filter", &clip.filter)?.copied(),
                    effect: w.opt("effect", &clip.effect)?.copied(),
                    transition_in,
                    transition_out,
                    transform,
                });
            }
        }
    }
    if duration <= 0.0 {
        return Err(PlanError::Empty);
    }
    let (start, length) = options.window(what, duration, &out_walk)?;
    let output = options.output_of(what);
    if let Some(st) = tl_walk.opt("soundtrack", &timeline.soundtrack)? {
        let sw = tl_walk.at("soundtrack");
        let (fade_in, fade_out) = audio_fades(sw.opt("effect", &st.effect)?.copied());
        sounds.push(Sound {
            src: sw.get("src", &st.src)?.clone(),
            start: 0.0,
            length: duration,
            trim: 0.0,
            speed: 1.0,
            volume: sw.opt("volume", &st.volume)?.copied().unwrap_or(1.0),
            fade_in,
            fade_out,
        });
    }
    Ok(Plan {
        width,
        height,
        rate: options.rate,
        start,
        duration: length,
        background,
        layers,
        sounds,
        mute: output.mute || !output.format.has_audio(),
        output,
        fonts,
    })
}

fn audio_fades(effect: Option<AudioEffect>) -> (f64, f64) {
    match effect {
        None => (0.0, 0.0),
        Some(AudioEffect::FadeIn) => (AUDIO_FADE, 0.0),
        Some(AudioEffect::FadeOut) => (0.0, AUDIO_FADE),
        Some(AudioEffect::FadeInFadeOut) => (AUDIO_FADE, AUDIO_FADE),
    }
}

/// An `offset` (x, y), if the object at `w` has one.
fn offset(w: &Walk, offset: &Option<Tpl<edit::Offset>>) -> Result<Option<(f64, f64)>, PlanError> {
    let Some(o) = w.opt("offset", offset)? else {
        return Ok(None);
    };
    let ow = w.at("offset");
    Ok(Some((
        ow.opt("x", &o.x)?.copied().unwrap_or(0.0),
        ow.opt("y", &o.y)?.copied().unwrap_or(0.0),
    )))
}

fn crop(w: &Walk, crop: &Option<Tpl<edit::Crop>>) -> Result<Crop, PlanError> {
    let Some(c) = w.opt("crop", crop)? else {
        return Ok(Crop::default());
    };
    let cw = w.at("crop");
    let side = |key: &str, v: &Option<Tpl<f64>>| cw.opt(key, v).map(|v| v.copied().unwrap_or(0.0));
    Ok(Crop {
        left: side("left", &c.left)?,
        right: side("right", &c.right)?,
        top: side("top", &c.top)?,
        bottom: side("bottom", &c.bottom)?,
    })
}

fn transform(w: &Walk, tf: &edit::Transformation) -> Result<Transform, PlanError> {
    let mut out = Transform::default();
    if let Some(r) = w.opt("rotate", &tf.rotate)? {
        out.rotate = w
            .at("rotate")
            .opt("angle", &r.angle)?
            .copied()
            .unwrap_or(0.0);
    }
    if let Some(s) = w.opt("skew", &tf.skew)? {
        let sw = w.at("skew");
        out.skew = (
            sw.opt("x", &s.x)?.copied().unwrap_or(0.0),
            sw.opt("y", &s.y)?.copied().unwrap_or(0.0),
        );
    }
    if let Some(f) = w.opt("flip", &tf.flip)? {
        let fw = w.at("flip");
        out.flip_horizontal = fw
            .opt("horizontal", &f.horizontal)?
            .copied()
            .unwrap_or(false);
        out.flip_vertical = fw.opt("vertical", &f.vertical)?.copied().unwrap_or(false);
    }
    Ok(out)
}

/// A title; where the asset names no position or offset, the clip's
/// apply (Shotstack documents both).
fn title(
    w: &Walk,
    t: &edit::TitleAsset,
    clip_position: Position,
    clip_offset: (f64, f64),
) -> Result<Title, PlanError> {
    use edit::{TitleSize, TitleStyle};
    let style = w
        .opt("style", &t.style)?
        .copied()
        .unwrap_or(TitleStyle::Minimal);
    let size = match w
        .opt("size", &t.size)?
        .copied()
        .unwrap_or(TitleSize::Medium)
    {
        TitleSize::XxSmall => 0.025,
        TitleSize::XSmall => 0.035,
        TitleSize::Small => 0.045,
        TitleSize::Medium => 0.06,
        TitleSize::Large => 0.08,
        TitleSize::XLarge => 0.10,
        TitleSize::XxLarge => 0.13,
    };
    let offset = self::offset(w, &t.offset)?.unwrap_or(clip_offset);
    Ok(Title {
        text: w.get("text", &t.text)?.clone(),
        color: w
            .opt("color", &t.color)?
            .map_or([255, 255, 255, 255], |c| c.rgba()),
        size,
        background: w.opt("background", &t.background)?.map(|c| c.rgba()),
        position: w
            .opt("position", &t.position)?
            .copied()
            .unwrap_or(clip_position),
        offset,
        style,
    })
}

fn html(w: &Walk, h: &edit::HtmlAsset, out_w: u32, out_h: u32) -> Result<Html, PlanError> {
    // Sizes and the markup's limits were checked with the Edit.
    Ok(Html {
        html: w.get("html", &h.html)?.clone(),
        css: w.opt("css", &h.css)?.cloned().unwrap_or_default(),
        width: w.opt("width", &h.width)?.copied().unwrap_or(out_w),
        height: w.opt("height", &h.height)?.copied().unwrap_or(out_h),
        background: w.opt("background", &h.background)?.map(|c| c.rgba()),
        position: w
            .opt("position", &h.position)?
            .copied()
            .unwrap_or(Position::Center),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::edit::{fill, Limits};
    use serde_json::{json, Map};

    fn plan_of(edit: serde_json::Value) -> Result<Plan, PlanError> {
        plan(&fill(&edit.to_string(), &Map::new(), &Limits::default()).expect("valid"))
    }

    #[test]
    fn defaults_and_track_order() {
        let p = plan_of(json!({
            "timeline": { "background": "#ff0000", "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "top" }, "start": 1, "length": 2 } ] },
                { "clips": [ { "asset": { "type": "image", "src": "bottom.png" }, "start": 0, "length": 5,
                               "transition": { "in": "fadeFast", "out": "fadeSlow" } } ] }
            ] },
            "output": { "format": "mp4", "resolution": "hd", "fps": 29.97 }
        }))
        .unwrap();
        assert_eq!(
            (p.width, p.height, p.rate),
            (
                1280,
                720,
                Rate {
                    num: 30000,
                    den: 1001
                }
            )
        );
        assert_eq!(p.duration, 5.0);
        assert_eq!(p.background, [255, 0, 0, 255]);
        assert!(
            matches!(p.layers[0].visual, Visual::Image { .. }),
            "the bottom track is drawn first"
        );
        assert!(matches!(p.layers[1].visual, Visual::Title(_)));
        let secs = |t: Option<Transition>| t.map(|t| (t.kind, t.secs));
        assert_eq!(
            (
                secs(p.layers[0].transition_in),
                secs(p.layers[0].transition_out)
            ),
            (
                Some((TransitionKind::Fade, 0.5)),
                Some((TransitionKind::Fade, 2.0))
            )
        );
        assert_eq!((p.layers[0].track, p.layers[1].track), (1, 0));
    }

    fn plan_as_of(output: serde_json::Value, what: Deliverable) -> Result<Plan, PlanError> {
        let edit = json!({
            "timeline": { "tracks": [ { "clips": [
                { "asset": { "type": "image", "src": "a.png" }, "start": 0, "length": 10 } ] } ] },
            "output": output
        });
        let limits = Limits::default();
        plan_as(
            &fill(&edit.to_string(), &Map::new(), &limits).expect("valid"),
            what,
            &limits,
        )
    }

    #[test]
    fn the_output_window_follows_range_poster_and_format() {
        use crate::engine::edit::Format;
        let out = json!({ "format": "mp4", "fps": 25, "range": { "start": 3, "length": 4 },
                          "poster": { "capture": 5 } });
        let p = plan_as_of(out.clone(), Deliverable::Movie(Format::Webm)).unwrap();
        assert_eq!(
            (p.start, p.duration, p.output.format),
            (3.0, 4.0, Format::Webm)
        );
        // A still is the frame at range.start, whatever the Edit's format.
        let p = plan_as_of(out.clone(), Deliverable::Movie(Format::Png)).unwrap();
        assert_eq!((p.start, p.duration), (3.0, 0.04));
        assert!(p.mute, "a still has no sound");
        let p = plan_as_of(out, Deliverable::Poster).unwrap();
        assert_eq!((p.start, p.output.format), (5.0, Format::Jpg));
        // Without a range, a still is the poster frame, else the first.
        let p = plan_as_of(json!({ "format": "jpg" }), Deliverable::Movie(Format::Jpg)).unwrap();
        assert_eq!(p.start, 0.0);
        // A range past the end stops at the end.
        let p = plan_as_of(
            json!({ "format": "mp3", "range": { "start": 8, "length": 5 } }),
            Deliverable::Movie(Format::Mp3),
        )
        .unwrap();
        assert_eq!((p.start, p.duration), (8.0, 2.0));
        let e = plan_as_of(
            json!({ "format": "mp4", "range": { "start": 10 } }),
            Deliverable::Movie(Format::Mp4),
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::BeyondTimeline { path, .. } if path == "output.range.start"),
            "{e}"
        );
        let e = plan_as_of(json!({ "format": "mp4" }), Deliverable::Thumbnail).unwrap_err();
        assert!(
            matches!(&e, PlanError::NoImage { path } if path == "output.thumbnail"),
            "{e}"
        );
    }

    #[test]
    fn sizes_follow_resolution_aspect_ratio_size_and_scale_to() {
        use crate::engine::edit::Format;
        let mp4 = Deliverable::Movie(Format::Mp4);
        let p = plan_as_of(
            json!({ "format": "mp4", "resolution": "hd", "aspectRatio": "4:5" }),
            mp4,
        )
        .unwrap();
        assert_eq!(
            (p.width, p.height, p.output.width, p.output.height),
            (720, 900, 720, 900)
        );
        // The seed's own example: size wins over resolution and aspectRatio.
        let p = plan_as_of(
            json!({ "format": "mp4", "resolution": "sd", "aspectRatio": "16:9",
                    "size": { "width": 1200, "height": 800 }, "scaleTo": "preview" }),
            mp4,
        )
        .unwrap();
        assert_eq!((p.width, p.height), (1200, 800));
        assert_eq!((p.output.width, p.output.height), (600, 400));
        assert_eq!(p.rate, Rate { num: 15, den: 1 }, "scaleTo's preset rate");
        let p = plan_as_of(json!({ "format": "mp4", "resolution": "preview" }), mp4).unwrap();
        assert_eq!(p.rate, Rate { num: 15, den: 1 });
        // An image-sized movie asked as video meets the video limit.
        let e = plan_as_of(
            json!({ "format": "png", "size": { "width": 4000, "height": 400 } }),
            mp4,
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::OverLimit { path, .. } if path == "output.size"),
            "{e}"
        );
        // Scaling up past the limit is refused too.
        let e = plan_as_of(
            json!({ "format": "mp4", "resolution": "preview", "scaleTo": "1080",
                    "size": { "width": 1920, "height": 1080 } }),
            mp4,
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::OverLimit { path, .. } if path == "output.scaleTo"),
            "{e}"
        );
    }

    #[test]
    fn clip_looks_reach_the_layer() {
        let p = plan_of(json!({
            "timeline": { "tracks": [ { "clips": [
                { "asset": { "type": "luma", "src": "matte.mp4", "trim": 1 }, "start": 0, "length": 2 },
                { "asset": { "type": "video", "src": "a.mp4", "speed": 2, "crop": { "left": 0.25, "top": 0.1 } },
                  "start": 0, "length": 2, "effect": "zoomInFast", "filter": "greyscale",
                  "transition": { "in": "carouselLeftSlow", "out": "shuffleTopRight" },
                  "transform": { "rotate": { "angle": -30 }, "skew": { "x": 0.5 }, "flip": { "vertical": true } } } ] } ] },
            "output": { "format": "mp4", "resolution": "sd" }
        }))
        .unwrap();
        assert!(matches!(&p.layers[0].visual, Visual::Luma { trim, .. } if *trim == 1.0));
        let l = &p.layers[1];
        assert!(matches!(&l.visual, Visual::Video { speed, .. } if *speed == 2.0));
        assert_eq!((l.crop.left, l.crop.top, l.crop.right), (0.25, 0.1, 0.0));
        assert_eq!(l.filter, Some(Filter::Greyscale));
        assert_eq!(
            l.effect,
            Some(Speeded {
                kind: MotionEffect::ZoomIn,
                speed: Speed::Fast
            })
        );
        assert_eq!(
            l.transition_in,
            Some(Transition {
                kind: TransitionKind::CarouselLeft,
                secs: 2.0
            })
        );
        assert_eq!(
            l.transform,
            Transform {
                rotate: -30.0,
                skew: (0.5, 0.0),
                flip_horizontal: false,
                flip_vertical: true
            }
        );
        assert_eq!(p.sounds[0].speed, 2.0);
    }

    #[test]
    fn video_audio_and_soundtrack_join_the_mix() {
        let p = plan_of(json!({
            "timeline": { "soundtrack": { "src": "music.mp3", "effect": "fadeOut", "volume": 0.5 }, "tracks": [ { "clips": [
                { "asset": { "type": "video", "src": "a.mp4", "trim": 2, "volume": 0.8 }, "start": 1, "length": 3 } ] } ] },
            "output": { "format": "mp4", "resolution": "mobile" }
        }))
        .unwrap();
        assert_eq!(p.sounds.len(), 2);
        assert_eq!(
            (p.sounds[0].start, p.sounds[0].trim, p.sounds[0].volume),
            (1.0, 2.0, 0.8)
        );
        assert_eq!(
            (p.sounds[1].length, p.sounds[1].fade_out, p.sounds[1].volume),
            (4.0, 1.0, 0.5)
        );
    }

    #[test]
    fn every_title_style_is_planned() {
        for style in [
            "minimal",
            "blockbuster",
            "vogue",
            "sketchy",
            "skinny",
            "chunk",
            "chunkLight",
            "marker",
            "future",
            "subtitle",
        ] {
            let p = plan_of(json!({
                "timeline": { "tracks": [ { "clips": [
                    { "asset": { "type": "title", "text": "Hi", "style": style }, "start": 0, "length": 1 } ] } ] },
                "output": { "format": "mp4", "resolution": "sd" }
            }))
            .unwrap();
            let Visual::Title(t) = &p.layers[0].visual else {
                panic!("{style}: not a title")
            };
            assert_eq!(serde_json::to_value(t.style).unwrap(), style);
        }
    }

    #[test]
    fn html_assets_and_fonts_are_planned_and_their_limits_named() {
        let edit = |asset: serde_json::Value| {
            json!({
                "timeline": { "fonts": [ { "src": "brand.ttf" }, { "src": "https://example.com/f.otf" } ],
                              "tracks": [ { "clips": [ { "asset": asset, "start": 0, "length": 1 } ] } ] },
                "output": { "format": "mp4", "resolution": "hd" }
            })
        };
        let p = plan_of(edit(json!({ "type": "html", "html": "<p>Hi</p>", "css": "p { color: red }",
                                     "width": 400, "background": "#80000000", "position": "bottomRight" })))
        .unwrap();
        assert_eq!(p.fonts, ["brand.ttf", "https://example.com/f.otf"]);
        let Visual::Html(h) = &p.layers[0].visual else {
            panic!("not html")
        };
        assert_eq!(
            (h.width, h.height, h.background, h.position),
            (400, 720, Some([0, 0, 0, 0x80]), Position::BottomRight)
        );
        // Markup beyond the limits is refused with the Edit, naming the field.
        let refused = |asset: serde_json::Value| {
            fill(&edit(asset).to_string(), &Map::new(), &Limits::default())
                .unwrap_err()
                .to_string()
        };
        let deep = "<b>".repeat(100);
        let e = refused(json!({ "type": "html", "html": deep }));
        assert!(e.contains("timeline.tracks[0].clips[0].asset.html"), "{e}");
        let e = refused(json!({ "type": "html", "html": "x", "css": "p{}".repeat(30_000) }));
        assert!(e.contains("timeline.tracks[0].clips[0].asset.css"), "{e}");
    }

    #[test]
    fn a_title_longer_than_the_limit_is_refused_with_its_path() {
        let edit = json!({
            "timeline": { "tracks": [ { "clips": [ { "asset": { "type": "title",
                "text": "x".repeat(crate::engine::edit::text::MAX_TITLE_CHARS + 1) }, "start": 0, "length": 1 } ] } ] },
            "output": { "format": "mp4", "resolution": "sd" }
        });
        let e = fill(&edit.to_string(), &Map::new(), &Limits::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("timeline.tracks[0].clips[0].asset.text"),
            "{e}"
        );
    }
}
