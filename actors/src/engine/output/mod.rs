//! Every output format of the composition language (what the Edit's
//! `output` asks is part of the plan: [`crate::engine::plan::output`]):
//! for each format the [`Encode`] that turns composed frames and the mix
//! into packets (on the encoding thread) and the [`Package`] that turns
//! packets into published bytes (in the muxer actor):
//!
//! | format | encoder | packager |
//! |---|---|---|
//! | mp4 | H.264 (libx264) + AAC | fragmented MP4 from `mp4` boxes ([`crate::engine::mux`]) |
//! | webm | VP9 (libvpx-vp9) + Opus (libopus) | libavformat's webm muxer ([`avmux`]) |
//! | mp3 | MP3 (libmp3lame) | libavformat's mp3 muxer (ID3v2, Xing) |
//! | gif | the `gif` crate: a NeuQuant palette per frame, LZW | the bytes as they come |
//! | jpg, png, bmp | FFmpeg's mjpeg, png, bmp encoders: one frame | the file |
//!
//! A frame enters an encoder through [`Encode::video`] only, and its
//! conversion to what the codec takes (size, pixel format, colour matrix
//! and range) happens in one place, [`convert`].

pub mod avmux;
pub mod chunked_audio;
pub mod codec;
pub mod convert;
pub mod gif;
pub mod mp3;
pub mod mp4;
pub mod still;
pub mod webm;

use std::time::Duration;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;

use crate::engine::edit::{Format, Quality};
use crate::engine::media::MediaError;
use crate::engine::mux::MuxError;
use crate::engine::plan::Plan;
use chunked_audio::{AudioSettings, ChunkedAudio, SoundChunks};
use codec::{tagged, AudioCodec, VideoCodec};

pub use convert::Spares;

/// The version of what the renderer makes of its inputs. It is part of
/// every output's content key: bump it whenever a change makes the same
/// Edit and sources render to other bytes (an encoder setting, a blending
/// fix, a muxer's box layout), so that cached outputs of the old renderer
/// are never served as the new one's. The golden test (`golden.rs`
/// beside the actors, `a_fixed_edit_renders_to_its_golden_bytes`) fails
/// until it is bumped.
pub const FORMAT_VERSION: u32 = 5;

pub use crate::engine::compose::Frame;

/// How the stream is cut into fragments, each starting on a keyframe. A
/// short first fragment (a keyframe is forced where it ends) puts the
/// first picture in a viewer's player sooner than a whole GOP would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fragments {
    pub first: Duration,
    pub rest: Duration,
}

impl Fragments {
    /// The frame where the first fragment ends and a keyframe is forced,
    /// if the first fragment is shorter than the others.
    pub fn forced_key(&self, fps: f64) -> Option<i64> {
        (self.first < self.rest).then(|| (self.first.as_secs_f64() * fps).round().max(1.0) as i64)
    }
}

/// An encoded packet, times in its stream's time base.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// Which stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Video,
    Audio,
}

/// One stream as the packager must know it before its first packet.
pub struct StreamDesc {
    /// Codec, size or sample rate, and the codec's global header.
    pub params: ffmpeg::codec::Parameters,
    /// The time base of the packets' timestamps.
    pub time_base: ffmpeg::Rational,
    /// Video: ticks of `time_base` per frame.
    pub frame_ticks: i64,
}

/// The streams of an output; a format has one or both.
#[derive(Default)]
pub struct Streams {
    pub video: Option<StreamDesc>,
    pub audio: Option<StreamDesc>,
}

pub type Packets = Vec<(Stream, Encoded)>;

/// Encodes one output: composed frames and the mix in, packets out.
pub trait Encode: Send {
    fn streams(&self) -> Streams;
    /// Frame number `index` of the output; a keyframe if `key` (where
    /// the short first fragment ends). The frame goes back to `spares`
    /// once the encoder has read it.
    fn video(
        &mut self,
        frame: Frame,
        index: i64,
        key: bool,
        spares: &Spares,
    ) -> Result<Packets, MediaError>;
    /// Interleaved stereo samples at 48 kHz, following the previous ones.
    fn audio(&mut self, samples: &[f32]) -> Result<Packets, MediaError>;
    /// Flushes the encoders.
    fn finish(&mut self) -> Result<Packets, MediaError>;
    /// Ends a segment: the video encoder hands out what it holds and a
    /// fresh one takes the frames that follow (see [`codec::VideoCodec::restart`]).
    /// Formats that are not cut into segments refuse.
    fn cut(&mut self) -> Result<Packets, MediaError> {
        Err(MediaError::Encode(
            "this format is not cut into segments".into(),
        ))
    }
    /// Encodes the sound in `chunks` from here on (call before any
    /// sound): see [`chunked_audio`]. Formats whose sound is not cut
    /// (WebM, MP3) keep one encoder.
    fn sound_in_chunks(&mut self, _chunks: SoundChunks) -> Result<(), MediaError> {
        Ok(())
    }
}

/// The sound chunks of a render of `plan` (see [`chunked_audio`]): for
/// an MP4 in segments of `segment_frames`, one per fragment (the short
/// first one to `forced_key`, then one per segment); the whole sound in
/// one otherwise.
pub fn sound_chunks(
    plan: &Plan,
    forced_key: Option<i64>,
    segment_frames: Option<i64>,
) -> SoundChunks {
    let Some(per) = segment_frames.filter(|f| *f > 0) else {
        return SoundChunks::whole();
    };
    if plan.output.format != Format::Mp4 {
        return SoundChunks::whole();
    }
    let (time_base, ticks) = codec::timing(plan.rate);
    let total = (plan.duration * plan.rate.as_f64()).round().max(1.0) as i64;
    let starts = forced_key
        .filter(|k| *k < per)
        .into_iter()
        .chain((per..total).step_by(per as usize))
        .map(|frame| frame * ticks);
    SoundChunks::at_fragments(
        starts,
        i64::from(time_base.denominator()),
        i64::from(crate::engine::media::SAMPLE_RATE),
        mp4::AAC_FRAME,
    )
}

/// Bytes for the publisher, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// The first bytes (for MP4 the init segment).
    Init(Bytes),
    /// Bytes that follow, covering `seconds` of media.
    Fragment(Bytes, f64),
    /// New bytes for a range already published (a muxer seeking back).
    Patch { offset: u64, bytes: Bytes },
}

/// Packages the packets of one output into its container.
pub trait Package: Send {
    fn start(&mut self, streams: &Streams) -> Result<Vec<Piece>, MuxError>;
    fn packets(&mut self, packets: Packets) -> Result<Vec<Piece>, MuxError>;
    fn finish(&mut self) -> Result<Vec<Piece>, MuxError>;
}

/// AAC and MP3 bit rates by quality.
fn audio_bit_rate(quality: Quality) -> usize {
    match quality {
        Quality::Low => 96_000,
        Quality::Medium => 128_000,
        Quality::High => 192_000,
    }
}

/// The encoder of a plan's output format.
pub fn encoder(plan: &Plan) -> Result<Box<dyn Encode>, MediaError> {
    Ok(match plan.output.format {
        Format::Mp4 => Box::new(mp4::encoder(plan)?),
        Format::Webm => Box::new(webm::encoder(plan)?),
        Format::Mp3 => Box::new(mp3::encoder(plan)?),
        Format::Gif => Box::new(gif::GifEncoder::new(plan)?),
        Format::Jpg | Format::Png | Format::Bmp => Box::new(still::encoder(plan)?),
    })
}

/// The packager of a plan's output format; MP4 is cut as `fragments`
/// says, and never across the start of a segment of `segment_frames`.
pub fn packager(
    plan: &Plan,
    fragments: Fragments,
    segment_frames: Option<i64>,
) -> Result<Box<dyn Package>, MuxError> {
    Ok(match plan.output.format {
        Format::Mp4 => Box::new(mp4::Fmp4Packager::new(fragments).with_segments(segment_frames)),
        Format::Webm => Box::new(webm::packager()?),
        Format::Mp3 => Box::new(mp3::packager()?),
        Format::Gif | Format::Jpg | Format::Png | Format::Bmp => Box::new(Passthrough::default()),
    })
}

/// FFmpeg encoders for a format's video and audio streams.
pub struct Codecs {
    video: Option<VideoCodec>,
    audio: Option<Audio>,
    /// How the sound's encoders are opened, if it may be cut in chunks.
    chunkable: Option<AudioSettings>,
}

/// A format's sound encoder: one, or one per chunk.
enum Audio {
    One(AudioCodec),
    Chunked(ChunkedAudio),
}

impl Codecs {
    fn new(video: Option<VideoCodec>, audio: Option<AudioCodec>) -> Codecs {
        Codecs {
            video,
            audio: audio.map(Audio::One),
            chunkable: None,
        }
    }

    /// The sound may be cut in chunks, each encoder opened as `settings`.
    fn chunkable(mut self, settings: AudioSettings) -> Codecs {
        self.chunkable = Some(settings);
        self
    }
}

impl Encode for Codecs {
    fn streams(&self) -> Streams {
        Streams {
            video: self.video.as_ref().map(VideoCodec::desc),
            audio: self.audio.as_ref().map(|a| match a {
                Audio::One(a) => a.desc(),
                Audio::Chunked(a) => a.desc(),
            }),
        }
    }

    fn video(
        &mut self,
        frame: Frame,
        index: i64,
        key: bool,
        spares: &Spares,
    ) -> Result<Packets, MediaError> {
        match self.video.as_mut() {
            Some(v) => Ok(tagged(Stream::Video, v.encode(frame, index, key, spares)?)),
            None => Ok(Vec::new()),
        }
    }

    fn audio(&mut self, samples: &[f32]) -> Result<Packets, MediaError> {
        match self.audio.as_mut() {
            Some(Audio::One(a)) => Ok(tagged(Stream::Audio, a.push(samples)?)),
            Some(Audio::Chunked(a)) => Ok(tagged(Stream::Audio, a.push(samples)?)),
            None => Ok(Vec::new()),
        }
    }

    fn sound_in_chunks(&mut self, chunks: SoundChunks) -> Result<(), MediaError> {
        if let (Some(settings), Some(audio)) = (self.chunkable, self.audio.as_mut()) {
            *audio = Audio::Chunked(ChunkedAudio::new(settings, chunks, None)?);
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<Packets, MediaError> {
        match self.video.as_mut() {
            Some(v) => Ok(tagged(Stream::Video, v.restart()?)),
            None => Ok(Vec::new()),
        }
    }

    fn finish(&mut self) -> Result<Packets, MediaError> {
        let mut out = Vec::new();
        if let Some(v) = self.video.as_mut() {
            out.extend(tagged(Stream::Video, v.finish()?));
        }
        match self.audio.as_mut() {
            Some(Audio::One(a)) => out.extend(tagged(Stream::Audio, a.finish()?)),
            Some(Audio::Chunked(a)) => out.extend(tagged(Stream::Audio, a.finish()?)),
            None => {}
        }
        Ok(out)
    }
}

/// For encoders whose packets are already the file's bytes (GIF, still
/// images): published as they come.
#[derive(Default)]
pub struct Passthrough {
    started: bool,
}

impl Package for Passthrough {
    fn start(&mut self, _: &Streams) -> Result<Vec<Piece>, MuxError> {
        Ok(Vec::new())
    }

    fn packets(&mut self, packets: Packets) -> Result<Vec<Piece>, MuxError> {
        Ok(packets
            .into_iter()
            .map(|(_, p)| {
                if std::mem::replace(&mut self.started, true) {
                    Piece::Fragment(p.data, 0.0)
                } else {
                    Piece::Init(p.data)
                }
            })
            .collect())
    }

    fn finish(&mut self) -> Result<Vec<Piece>, MuxError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests;
