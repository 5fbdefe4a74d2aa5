//! The compositor: for each output frame at time t, draws every visible
//! layer of the plan and mixes every audible sound, then encodes both.
//! Static layers (pictures, titles) are rasterised once per clip.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::compose::layout::{fitted_size, place, Rect};
use crate::compose::text::render_title;
use crate::compose::{Canvas, Picture};
use crate::encode::{AudioEncoder, Encoded, VideoEncoder};
use crate::media::audio::AudioReader;
use crate::media::picture::Still;
use crate::media::video::VideoReader;
use crate::media::{MediaError, CHANNELS, SAMPLE_RATE};
use crate::plan::{Layer, Plan, Sound, Visual};

/// Where each source of the plan can be read, as the fetcher left it.
pub type Sources = HashMap<String, PathBuf>;

/// Which stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Video,
    Audio,
}

/// What the muxer needs to know of each stream before the first packet.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub width: u32,
    pub height: u32,
    pub video_timescale: u32,
    pub video_extradata: Vec<u8>,
    pub frame_ticks: i64,
    pub audio_extradata: Vec<u8>,
    pub sample_rate: u32,
    pub channels: u16,
}

/// Limits on what sources may be.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    pub max_video: (u32, u32),
    pub max_image: (u32, u32),
}

enum Drawable {
    Static {
        picture: Picture,
        rect: Rect,
    },
    Video {
        reader: Box<VideoReader>,
        trim: f64,
        rect: Rect,
    },
}

struct LayerState {
    layer: Layer,
    drawable: Drawable,
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
    video: VideoEncoder,
    audio: AudioEncoder,
    frame: i64,
    frames: i64,
    /// Mix samples (per channel) produced so far.
    samples: u64,
    finished: bool,
}

fn path_of<'a>(sources: &'a Sources, src: &str) -> Result<&'a PathBuf, MediaError> {
    sources.get(src).ok_or_else(|| MediaError::Open {
        src: src.to_owned(),
        reason: "the source was not fetched".into(),
    })
}

impl Compositor {
    /// Opens every source (a source that cannot be decoded fails here,
    /// before any byte is sent) and prepares the static layers.
    pub fn new(
        plan: Plan,
        sources: &Sources,
        limits: SourceLimits,
    ) -> Result<Compositor, MediaError> {
        let (w, h) = (plan.width, plan.height);
        let mut layers = Vec::new();
        for layer in &plan.layers {
            let drawable = match &layer.visual {
                Visual::Image { src } => {
                    let still = Still::open(path_of(sources, src)?, src, limits.max_image)?;
                    let (sw, sh) = still.size();
                    let (fw, fh) = fitted_size(sw, sh, w, h, layer.fit, layer.scale);
                    let picture = still.picture(src, fw, fh)?;
                    let rect = place(fw, fh, w, h, layer.position, layer.offset);
                    Drawable::Static { picture, rect }
                }
                Visual::Title(title) => {
                    let picture = render_title(title, h);
                    let rect = place(
                        picture.width,
                        picture.height,
                        w,
                        h,
                        title.position,
                        title.offset,
                    );
                    Drawable::Static { picture, rect }
                }
                Visual::Video { src, trim } => {
                    let mut reader = VideoReader::open(path_of(sources, src)?, src)?;
                    let (sw, sh) = reader.size();
                    if sw > limits.max_video.0 || sh > limits.max_video.1 {
                        return Err(MediaError::TooLarge {
                            src: src.clone(),
                            width: sw,
                            height: sh,
                            max_width: limits.max_video.0,
                            max_height: limits.max_video.1,
                        });
                    }
                    reader.seek(*trim)?;
                    let (fw, fh) = fitted_size(sw, sh, w, h, layer.fit, layer.scale);
                    let rect = place(fw, fh, w, h, layer.position, layer.offset);
                    // Decoding the first frame now turns a corrupt file into
                    // an error before the response starts.
                    reader.frame_at(*trim, fw, fh)?;
                    Drawable::Video {
                        reader: Box::new(reader),
                        trim: *trim,
                        rect,
                    }
                }
            };
            layers.push(LayerState {
                layer: layer.clone(),
                drawable,
            });
        }
        let mut sounds = Vec::new();
        if !plan.mute {
            for sound in &plan.sounds {
                let path = path_of(sources, &sound.src)?.clone();
                // Opening checks the file; the reader is opened again when
                // the sound starts.
                AudioReader::open(&path, &sound.src)?;
                sounds.push(SoundState {
                    sound: sound.clone(),
                    reader: None,
                    path,
                    done: false,
                });
            }
        }
        let video = VideoEncoder::new(w, h, plan.rate, plan.output.quality)?;
        let audio = AudioEncoder::new()?;
        let frames = (plan.duration * plan.rate.as_f64()).round().max(1.0) as i64;
        Ok(Compositor {
            canvas: Canvas::new(w, h),
            plan,
            layers,
            sounds,
            video,
            audio,
            frame: 0,
            frames,
            samples: 0,
            finished: false,
        })
    }

    pub fn info(&self) -> StreamInfo {
        StreamInfo {
            width: self.plan.width,
            height: self.plan.height,
            video_timescale: self.video.timescale,
            video_extradata: self.video.extradata(),
            frame_ticks: self.video.frame_ticks(),
            audio_extradata: self.audio.extradata(),
            sample_rate: SAMPLE_RATE,
            channels: CHANNELS as u16,
        }
    }

    /// Seconds of output composed so far, and in all.
    pub fn progress(&self) -> (f64, f64) {
        (
            self.frame as f64 / self.plan.rate.as_f64(),
            self.plan.duration,
        )
    }

    /// Composes and encodes the next frame and its audio. Returns the
    /// packets now ready, or `None` once everything is flushed.
    pub fn step(&mut self) -> Result<Option<Vec<(Stream, Encoded)>>, MediaError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        if self.frame < self.frames {
            let t = self.frame as f64 / self.plan.rate.as_f64();
            self.draw(t)?;
            for p in self.video.encode(&self.canvas.picture, self.frame)? {
                out.push((Stream::Video, p));
            }
            self.frame += 1;
            let until = (self.frame as f64 / self.plan.rate.as_f64() * f64::from(SAMPLE_RATE))
                .round() as u64;
            let mix = self.mix(until)?;
            for p in self.audio.push(&mix)? {
                out.push((Stream::Audio, p));
            }
        } else {
            for p in self.video.finish()? {
                out.push((Stream::Video, p));
            }
            for p in self.audio.finish()? {
                out.push((Stream::Audio, p));
            }
            self.finished = true;
        }
        Ok(Some(out))
    }

    fn draw(&mut self, t: f64) -> Result<(), MediaError> {
        self.canvas.clear(self.plan.background);
        for state in &mut self.layers {
            let l = &state.layer;
            if t < l.start || t >= l.start + l.length {
                continue;
            }
            let alpha = l.opacity * envelope(t - l.start, l.length, l.fade_in, l.fade_out);
            match &mut state.drawable {
                Drawable::Static { picture, rect } => {
                    self.canvas.draw(picture, rect.x, rect.y, alpha)
                }
                Drawable::Video { reader, trim, rect } => {
                    if let Some(picture) =
                        reader.frame_at(*trim + (t - l.start), rect.width, rect.height)?
                    {
                        self.canvas.draw(picture, rect.x, rect.y, alpha);
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
            if state.reader.is_none() {
                let mut reader = AudioReader::open(&state.path, &s.src)?;
                if let Some(r) = reader.as_mut() {
                    r.seek(s.trim)?;
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
            let a = start.max(from);
            let b = end.min(until);
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
