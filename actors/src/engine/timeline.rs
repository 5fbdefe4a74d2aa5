//! The timeline's compositor: for each output frame at time t, draws every
//! visible layer of the plan onto a YUV canvas and mixes every audible
//! sound. Encoding happens elsewhere (the compositor actor,
//! `crate::compositor`), on its own thread, so that composing frame n+1
//! overlaps encoding frame n.
//!
//! Static layers (pictures, titles) are converted and filtered once per
//! clip; a layer that is only shifted is blended as it is, one that is
//! zoomed, turned, skewed or flipped is resampled (`compose::warp`).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::engine::compose::filter::Lut;
use crate::engine::compose::layout::{fitted_size, place, Rect};
use crate::engine::compose::motion::{self, Placement};
use crate::engine::compose::text::Typesetter;
use crate::engine::compose::warp::{warp, Affine};
use crate::engine::compose::{Canvas, Coverage, Frame};
use crate::engine::media::audio::AudioReader;
use crate::engine::media::picture::Still;
use crate::engine::media::video::{Spec, VideoReader};
use crate::engine::media::{MediaError, CHANNELS, SAMPLE_RATE};
use crate::engine::plan::{Crop, Layer, Plan, Sound, Visual};

/// Where each source of the plan can be read, as the fetcher left it.
pub type Sources = HashMap<String, PathBuf>;

/// Limits on what sources may be.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    pub max_video: (u32, u32),
    pub max_image: (u32, u32),
}

/// One composed output frame and the audio that plays during it.
pub struct Composed {
    pub index: i64,
    pub frame: Frame,
    /// Interleaved stereo at [`SAMPLE_RATE`].
    pub audio: Vec<f32>,
}

enum Source {
    Static(Frame),
    Video {
        reader: Box<VideoReader>,
        trim: f64,
        speed: f64,
        spec: Spec,
    },
}

struct LayerState {
    layer: Layer,
    source: Source,
    /// The clip's box before motion: its fitted size at its position.
    rect: Rect,
    luma: bool,
}

struct SoundState {
    sound: Sound,
    /// Opened when the sound starts, so that only what plays holds a decoder.
    reader: Option<AudioReader>,
    path: PathBuf,
    done: bool,
}

pub struct Compositor {
    plan: Plan,
    layers: Vec<LayerState>,
    sounds: Vec<SoundState>,
    canvas: Canvas,
    /// Per track: the product of its luma mattes at the current frame.
    mattes: HashMap<usize, Vec<u8>>,
    /// Per-column multipliers of a wipe, reused.
    columns: Vec<u8>,
    frame: i64,
    frames: i64,
    /// The timeline's sample (per channel) the mix has reached.
    samples: u64,
    /// Whether the sound is mixed (see [`Compositor::without_mix`]).
    mixing: bool,
}

fn path_of<'a>(sources: &'a Sources, src: &str) -> Result<&'a PathBuf, MediaError> {
    sources.get(src).ok_or_else(|| MediaError::Open {
        src: src.to_owned(),
        reason: "the source was not fetched".into(),
    })
}

/// A static layer from a rasterised text picture, filtered, at its place.
fn text_layer(
    picture: &crate::engine::compose::Picture,
    lut: Option<Box<Lut>>,
    (w, h): (u32, u32),
    position: crate::engine::edit::Position,
    offset: (f64, f64),
) -> (Source, Rect) {
    let mut frame = Frame::from_rgba(picture.width, picture.height, &picture.data);
    if let Some(lut) = lut {
        lut.apply(&mut frame);
    }
    let rect = place(picture.width, picture.height, w, h, position, offset);
    (Source::Static(frame), rect)
}

/// The size of an asset after its crop.
fn cropped(w: u32, h: u32, crop: Crop) -> (u32, u32) {
    let keep = |n: u32, a: f64, b: f64| ((f64::from(n) * (1.0 - a - b)).round() as u32).max(1);
    (
        keep(w, crop.left, crop.right),
        keep(h, crop.top, crop.bottom),
    )
}

fn check_size(src: &str, (w, h): (u32, u32), max: (u32, u32)) -> Result<(), MediaError> {
    if w > max.0 || h > max.1 {
        return Err(MediaError::TooLarge {
            src: src.to_owned(),
            width: w,
            height: h,
            max_width: max.0,
            max_height: max.1,
        });
    }
    Ok(())
}

impl Compositor {
    /// Opens every source (a source that cannot be decoded fails here,
    /// before any byte is sent) and prepares the static layers.
    pub fn new(
        plan: Plan,
        sources: &Sources,
        limits: SourceLimits,
    ) -> Result<Compositor, MediaError> {
        Compositor::window(plan, sources, limits, 0, None)
    }

    /// A compositor of output frames `first..first + count` only (to the
    /// end without a count): a segment, or a run of them. Frame n shows
    /// the timeline at the same time as in a compositor of the whole
    /// plan, and video sources are read from a seek to the window's start,
    /// which lands on the frames a whole render decodes to.
    pub fn window(
        plan: Plan,
        sources: &Sources,
        limits: SourceLimits,
        first: i64,
        count: Option<i64>,
    ) -> Result<Compositor, MediaError> {
        let (w, h) = (plan.width, plan.height);
        let first = first.max(0);
        let opening = plan.start + first as f64 / plan.rate.as_f64();
        let mut text = Typesetter::new();
        for src in &plan.fonts {
            text.load_font(src, path_of(sources, src)?)?;
        }
        let all = (plan.duration * plan.rate.as_f64()).round().max(1.0) as i64;
        let frames = count.map_or(all, |n| (first + n.max(0)).min(all));
        // A window opens only the layers it shows: a clip that ended
        // before it would be sought past its end (decoding up to a GOP
        // for nothing), and one after it is never drawn here.
        let at = |frame: i64| plan.start + frame as f64 / plan.rate.as_f64();
        let (from, to) = (at(first), at(frames.max(first + 1) - 1));
        let shown = |l: &Layer| count.is_none() || (l.start <= to && l.start + l.length > from);
        let mut layers = Vec::new();
        for layer in plan.layers.iter().filter(|l| shown(l)) {
            let lut = || layer.filter.map(|f| Box::new(Lut::new(f)));
            let (source, rect) = match &layer.visual {
                Visual::Image { src } => {
                    let still = Still::open(path_of(sources, src)?, src, limits.max_image)?;
                    let (sw, sh) = cropped(still.size().0, still.size().1, layer.crop);
                    let (fw, fh) = fitted_size(sw, sh, w, h, layer.fit, layer.scale);
                    let picture = still.picture(layer.crop, fw, fh)?;
                    let mut frame = Frame::from_rgba(fw, fh, &picture.data);
                    if let Some(lut) = lut() {
                        lut.apply(&mut frame);
                    }
                    (
                        Source::Static(frame),
                        place(fw, fh, w, h, layer.position, layer.offset),
                    )
                }
                // Text is rasterised once, placed by the title's own
                // position or, for html, by the clip's.
                Visual::Title(title) => {
                    let picture = text.title(title, w, h);
                    text_layer(&picture, lut(), (w, h), title.position, title.offset)
                }
                Visual::Html(html) => {
                    let picture = text.html(html)?;
                    text_layer(&picture, lut(), (w, h), layer.position, layer.offset)
                }
                Visual::Video { src, trim, speed } => {
                    let mut reader = VideoReader::open(path_of(sources, src)?, src)?;
                    check_size(src, reader.size(), limits.max_video)?;
                    // A clip already playing where the output starts
                    // (`range`, a still's capture time) starts there.
                    let first = *trim + (opening - layer.start).max(0.0) * *speed;
                    reader.seek(first)?;
                    let (sw, sh) = cropped(reader.size().0, reader.size().1, layer.crop);
                    let (fw, fh) = fitted_size(sw, sh, w, h, layer.fit, layer.scale);
                    let spec = Spec {
                        width: fw,
                        height: fh,
                        crop: layer.crop,
                        filter: lut(),
                    };
                    // Decoding the first frame now turns a corrupt file into
                    // an error before the response starts.
                    reader.frame_at(first, &spec)?;
                    let rect = place(fw, fh, w, h, layer.position, layer.offset);
                    (
                        Source::Video {
                            reader: Box::new(reader),
                            trim: *trim,
                            speed: *speed,
                            spec,
                        },
                        rect,
                    )
                }
                Visual::Luma { src, trim } => {
                    let path = path_of(sources, src)?;
                    let mut reader = VideoReader::open(path, src)?;
                    check_size(src, reader.size(), limits.max_image)?;
                    reader.seek(*trim)?;
                    let (sw, sh) = reader.size();
                    let (fw, fh) = fitted_size(sw, sh, w, h, layer.fit, layer.scale);
                    let spec = Spec {
                        width: fw,
                        height: fh,
                        crop: layer.crop,
                        filter: None,
                    };
                    reader.frame_at(*trim, &spec)?;
                    let rect = place(fw, fh, w, h, layer.position, layer.offset);
                    (
                        Source::Video {
                            reader: Box::new(reader),
                            trim: *trim,
                            speed: 1.0,
                            spec,
                        },
                        rect,
                    )
                }
            };
            layers.push(LayerState {
                luma: matches!(layer.visual, Visual::Luma { .. }),
                layer: layer.clone(),
                source,
                rect,
            });
        }
        let mut sounds = Vec::new();
        if !plan.mute {
            for sound in &plan.sounds {
                let path = path_of(sources, &sound.src)?.clone();
                // Opening checks the file; the reader is opened again when
                // the sound starts.
                AudioReader::open(&path, &sound.src, 1.0)?;
                sounds.push(SoundState {
                    sound: sound.clone(),
                    reader: None,
                    path,
                    done: false,
                });
            }
        }
        let samples = (opening * f64::from(SAMPLE_RATE)).round() as u64;
        Ok(Compositor {
            canvas: Canvas::new(w, h),
            plan,
            layers,
            sounds,
            mattes: HashMap::new(),
            columns: Vec::new(),
            frame: first,
            frames,
            samples,
            mixing: true,
        })
    }

    /// A compositor that only mixes the plan's sound, for a render whose
    /// pictures are composed by windows (or not at all: reused segments):
    /// no layer is opened and the frames it returns are a token 2×2.
    pub fn sound_only(plan: &Plan, sources: &Sources) -> Result<Compositor, MediaError> {
        let mut quiet = plan.clone();
        quiet.layers.clear();
        quiet.fonts.clear();
        quiet.width = 2;
        quiet.height = 2;
        let limits = SourceLimits {
            max_video: (0, 0),
            max_image: (0, 0),
        };
        Compositor::new(quiet, sources, limits)
    }

    /// Composes pictures only: the sound's encoded packets come from
    /// elsewhere (the encoded-sound cache), so it is not mixed at all.
    pub fn without_mix(mut self) -> Compositor {
        self.sounds.clear();
        self.mixing = false;
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Seconds of output composed so far, and in all.
    pub fn progress(&self) -> (f64, f64) {
        (
            self.frame as f64 / self.plan.rate.as_f64(),
            self.plan.duration,
        )
    }

    /// Composes the next frame and mixes its audio; `None` after the last.
    /// `spare` is a finished frame handed back for its buffers.
    pub fn next(&mut self, spare: Option<Frame>) -> Result<Option<Composed>, MediaError> {
        if self.frame >= self.frames {
            return Ok(None);
        }
        // Output frame n shows the timeline at `start` + n / rate.
        let start = self.plan.start;
        let t = start + self.frame as f64 / self.plan.rate.as_f64();
        // An audio-only output needs no pictures.
        if self.plan.output.format.has_video() {
            self.draw(t)?;
        }
        let index = self.frame;
        self.frame += 1;
        let until = ((start + self.frame as f64 / self.plan.rate.as_f64()) * f64::from(SAMPLE_RATE))
            .round() as u64;
        let audio = if self.mixing {
            self.mix(until)?
        } else {
            Vec::new()
        };
        // The canvas is redrawn whole every frame, so the finished frame
        // can leave and a spare take its place without a copy.
        let (w, h) = (self.plan.width, self.plan.height);
        let replacement = match spare {
            Some(f) if (f.width, f.height) == (w, h) => f,
            _ => Frame::filled(w, h, [0, 0, 0, 255]),
        };
        let frame = std::mem::replace(&mut self.canvas.frame, replacement);
        Ok(Some(Composed {
            index,
            frame,
            audio,
        }))
    }

    fn draw(&mut self, t: f64) -> Result<(), MediaError> {
        let (w, h) = (self.plan.width, self.plan.height);
        self.mattes.clear();
        for state in &mut self.layers {
            let l = &state.layer;
            if !state.luma || !l.is_on(t) {
                continue;
            }
            let Some(luma) = state.source.frame_at(t - l.start)? else {
                continue;
            };
            let matte = self
                .mattes
                .entry(l.track)
                .or_insert_with(|| vec![255; w as usize * h as usize]);
            apply_matte(matte, w, h, luma, state.rect);
        }
        // A bottom layer that hides the whole canvas (a full-frame video,
        // say) makes painting the background first wasted work; one that
        // fills it exactly, a decoded frame as it is, is copied straight in.
        let bottom = self.layers.iter().position(|s| !s.luma && s.layer.is_on(t));
        let cover = bottom.and_then(|i| Some((i, self.layers[i].cover(t, (w, h), &self.mattes)?)));
        let painted = match cover {
            Some((i, (0, 0))) => self.layers[i]
                .paint(t, &mut self.canvas.frame)?
                .then_some(i),
            Some(_) => None,
            None => {
                self.canvas.clear(self.plan.background);
                None
            }
        };
        for (i, state) in self.layers.iter_mut().enumerate() {
            let l = &state.layer;
            if state.luma || !l.is_on(t) || painted == Some(i) {
                continue;
            }
            let Placement { map, alpha, wipe } = motion::place(l, t, state.rect, (w, h));
            let alpha = (alpha * 256.0).round() as u32;
            if alpha == 0 {
                continue;
            }
            if let Some(wipe) = wipe {
                wipe.columns(w, &mut self.columns);
            }
            let cov = Coverage {
                alpha,
                columns: wipe.map(|_| self.columns.as_slice()),
                matte: self.mattes.get(&l.track).map(Vec::as_slice),
            };
            let (rw, rh) = (state.rect.width, state.rect.height);
            let Some(src) = state.source.frame_at(t - l.start)? else {
                continue;
            };
            // The source may be larger than its box (stills kept sharp
            // for zooms): map its pixels onto the box first.
            let map = map.then_after(Affine::scale(
                f64::from(rw) / f64::from(src.width),
                f64::from(rh) / f64::from(src.height),
            ));
            match map.as_shift() {
                Some((x, y)) => self.canvas.draw(src, x, y, &cov),
                None => {
                    if let Some((warped, x, y)) = warp(src, &map, w, h) {
                        self.canvas.draw(&warped, x, y, &cov);
                    }
                }
            }
        }
        Ok(())
    }

    /// The mix from the samples produced so far up to sample `until`.
    fn mix(&mut self, until: u64) -> Result<Vec<f32>, MediaError> {
        let from = self.samples;
        let n = until.saturating_sub(from) as usize;
        let mut mix = vec![0.0f32; n * CHANNELS];
        let rate = f64::from(SAMPLE_RATE);
        for state in &mut self.sounds {
            let s = &state.sound;
            let start = (s.start * rate).round() as u64;
            let end = ((s.start + s.length) * rate).round() as u64;
            if state.done || end <= from || start >= until {
                continue;
            }
            let a = start.max(from);
            let b = end.min(until);
            if state.reader.is_none() {
                // Speed 0 holds the sound still: silence.
                if s.speed <= 0.0 {
                    state.done = true;
                    continue;
                }
                let mut reader = AudioReader::open(&state.path, &s.src, s.speed)?;
                if let Some(r) = reader.as_mut() {
                    // From where the output meets the sound.
                    r.seek(s.trim + (a - start) as f64 / rate * s.speed)?;
                }
                match reader {
                    Some(r) => state.reader = Some(r),
                    None => {
                        // A video without sound adds nothing to the mix.
                        state.done = true;
                        continue;
                    }
                }
            }
            let Some(reader) = state.reader.as_mut() else {
                continue;
            };
            let mut buf = vec![0.0f32; (b - a) as usize * CHANNELS];
            let got = reader.read(&mut buf)?;
            for (i, frame) in buf[..got].chunks_exact(CHANNELS).enumerate() {
                let at = a + i as u64;
                let local = (at - start) as f64 / rate;
                let gain = (s.volume * envelope(local, s.length, s.fade_in, s.fade_out)) as f32;
                let o = (at - from) as usize * CHANNELS;
                for c in 0..CHANNELS {
                    mix[o + c] += frame[c] * gain;
                }
            }
            if b >= end || got < buf.len() {
                state.done = true;
                state.reader = None;
            }
        }
        for s in &mut mix {
            *s = s.clamp(-1.0, 1.0);
        }
        self.samples = until;
        Ok(mix)
    }
}

impl LayerState {
    /// Where this layer is drawn (unturned, unscaled) if it alone paints
    /// every pixel of the canvas, opaque.
    fn cover(
        &self,
        t: f64,
        view: (u32, u32),
        mattes: &HashMap<usize, Vec<u8>>,
    ) -> Option<(i64, i64)> {
        let opaque = match &self.source {
            Source::Static(frame) => frame.a.is_none(),
            Source::Video { .. } => true,
        };
        if !opaque || mattes.contains_key(&self.layer.track) {
            return None;
        }
        let p = motion::place(&self.layer, t, self.rect, view);
        let (x, y) = p.map.as_shift()?;
        (p.alpha >= 1.0
            && p.wipe.is_none()
            && x <= 0
            && y <= 0
            && x + i64::from(self.rect.width) >= i64::from(view.0)
            && y + i64::from(self.rect.height) >= i64::from(view.1))
        .then_some((x, y))
    }

    /// Paints this layer, drawn at the canvas's corner, straight onto the
    /// canvas if it fills it exactly with a frame as decoded (see
    /// [`VideoReader::paint`]); false otherwise.
    fn paint(&mut self, t: f64, canvas: &mut Frame) -> Result<bool, MediaError> {
        if (self.rect.width, self.rect.height) != (canvas.width, canvas.height) {
            return Ok(false);
        }
        self.source.paint(t - self.layer.start, canvas)
    }
}

impl Source {
    /// Paints the picture `u` seconds into its clip straight onto `canvas`
    /// if it is exactly the canvas's size, as decoded; false otherwise.
    fn paint(&mut self, u: f64, canvas: &mut Frame) -> Result<bool, MediaError> {
        match self {
            Source::Static(_) => Ok(false),
            Source::Video {
                reader,
                trim,
                speed,
                spec,
            } => reader.paint(*trim + u * *speed, spec, canvas),
        }
    }

    /// The picture `u` seconds into its clip.
    fn frame_at(&mut self, u: f64) -> Result<Option<&Frame>, MediaError> {
        match self {
            Source::Static(frame) => Ok(Some(frame)),
            Source::Video {
                reader,
                trim,
                speed,
                spec,
            } => reader.frame_at(*trim + u * *speed, spec),
        }
    }
}

/// Multiplies `matte` (a `w`×`h` plane) by the brightness of `luma` placed
/// at `rect`; outside the luma's box nothing shows.
fn apply_matte(matte: &mut [u8], w: u32, h: u32, luma: &Frame, rect: Rect) {
    let (w, h) = (i64::from(w), i64::from(h));
    for y in 0..h {
        let ly = y - rect.y;
        let row = &mut matte[(y * w) as usize..((y + 1) * w) as usize];
        if ly < 0 || ly >= i64::from(luma.height) {
            row.fill(0);
            continue;
        }
        for (x, m) in row.iter_mut().enumerate() {
            let lx = x as i64 - rect.x;
            let level = if lx < 0 || lx >= i64::from(luma.width) {
                0
            } else {
                let v = luma.y[(ly * i64::from(luma.width) + lx) as usize];
                // Limited-range luma to 0–255 opacity.
                ((i32::from(v) - 16).clamp(0, 219) * 255 / 219) as u32
            };
            *m = ((u32::from(*m) * level + 127) / 255) as u8;
        }
    }
}

/// 0–1 gain at `t` seconds into something `length` long that fades in over
/// `fade_in` and out over `fade_out` seconds.
fn envelope(t: f64, length: f64, fade_in: f64, fade_out: f64) -> f64 {
    let mut g: f64 = 1.0;
    if fade_in > 0.0 && t < fade_in {
        g = g.min(t / fade_in);
    }
    if fade_out > 0.0 && t > length - fade_out {
        g = g.min((length - t) / fade_out);
    }
    g.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::envelope;

    #[test]
    fn fades() {
        assert_eq!(envelope(0.0, 5.0, 1.0, 0.0), 0.0);
        assert_eq!(envelope(0.5, 5.0, 1.0, 0.0), 0.5);
        assert_eq!(envelope(2.0, 5.0, 1.0, 1.0), 1.0);
        assert!((envelope(4.75, 5.0, 0.0, 1.0) - 0.25).abs() < 1e-9);
    }
}
