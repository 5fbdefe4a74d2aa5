//! MP4: H.264 (libx264 `veryfast`, a keyframe every second) and AAC, cut
//! into fragments of about the configured length, each starting on a
//! video keyframe; the init segment first.

use std::collections::VecDeque;

use bytes::Bytes;
use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::chunked_audio::AudioSettings;
use super::codec::{AudioCodec, VideoCodec, VideoSettings};
use super::{Codecs, Package, Packets, Piece, Stream, StreamDesc, Streams};
use crate::engine::edit::Quality;
use crate::engine::mux::{Fmp4Writer, MuxError, Sample, TrackConfig};
use crate::engine::output::Fragments;
use crate::engine::plan::Plan;

const VIDEO: usize = 0;
const AUDIO: usize = 1;

/// Samples per channel in an AAC packet (FFmpeg's encoder: checked by
/// `chunked_audio`'s tests).
pub const AAC_FRAME: i64 = 1024;

/// How the sound's AAC encoders are opened: one, or one per chunk.
pub fn audio_settings(plan: &Plan) -> AudioSettings {
    AudioSettings {
        codec: "aac",
        bit_rate: super::audio_bit_rate(plan.output.quality),
        global_header: true,
    }
}

pub fn encoder(plan: &Plan) -> Result<Codecs, crate::engine::media::MediaError> {
    let o = &plan.output;
    let video = VideoCodec::open(VideoSettings {
        global_header: true,
        options: vec![
            ("preset", "veryfast".into()),
            (
                "crf",
                match o.quality {
                    Quality::Low => "28",
                    Quality::Medium => "23",
                    Quality::High => "18",
                }
                .into(),
            ),
        ],
        // One thread per encoder: a render's segments are encoded several
        // at once (one per core), each by a fresh encoder, so frame
        // threads would only add their drain at every segment's end; and
        // x264's output depends on its thread count, so with one thread a
        // segment's bytes are the same on every machine (a cluster shares
        // them).
        one_thread: true,
        restart_at_forced_key: true,
        // The stream's first frames on two frame threads (flushed at the
        // forced keyframe ending the short first fragment, or with segment
        // 0 if there is none, so no drain idles a core later), fixed at
        // two so their bytes do not depend on the machine either.
        opening_threads: Some(2),
        ..VideoSettings::new("libx264", ffmpeg::format::Pixel::YUV420P, plan)
            .keyframe_every_second()
    })?;
    // An MP4 always has its audio track (silent when muted), so players
    // that expect one are never surprised.
    let s = audio_settings(plan);
    let audio = AudioCodec::open(s.codec, s.bit_rate, s.global_header)?;
    Ok(Codecs::new(Some(video), Some(audio)).chunkable(s))
}

/// `extradata` of a stream's parameters.
fn extradata(desc: &StreamDesc) -> Vec<u8> {
    // SAFETY: the parameters are valid; FFmpeg keeps `extradata_size`
    // bytes at `extradata`.
    unsafe {
        let p = &*desc.params.as_ptr();
        if p.extradata.is_null() || p.extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
        }
    }
}

fn raw(desc: &StreamDesc) -> &ffi::AVCodecParameters {
    // SAFETY: valid for as long as `desc`.
    unsafe { &*desc.params.as_ptr() }
}

/// Cuts the packet stream into fragments. Where a fragment ends is decided
/// by the video alone (a keyframe at least a fragment's length after the
/// fragment's start, a segment's start, or the end of the short first
/// fragment), and which audio samples it holds by their timestamps alone
/// (those starting before its end): so the bytes do not depend on how
/// the encoders interleaved their packets, and a render whose sound or
/// segments came from a cache is the same file as one that encoded them.
pub struct Fmp4Packager {
    fragments: Fragments,
    /// Frames per segment: a fragment never spans two.
    segment_frames: Option<i64>,
    /// Fragment ends decided so far: the first fragment may be shorter.
    decided: usize,
    writer: Option<Fmp4Writer>,
    video_timescale: u32,
    audio_timescale: u32,
    frame_ticks: i64,
    /// The frame where the short first fragment ends, if there is one.
    first_key: Option<i64>,
    video: VecDeque<Sample>,
    audio: VecDeque<Sample>,
    /// Video decode time where the next undecided fragment starts.
    fragment_start: Option<i64>,
    /// Decided fragment ends (video ticks) not flushed yet, waiting for
    /// the sound to reach them.
    ends: VecDeque<i64>,
    /// Where the audio has reached: the end of its last sample, in ticks
    /// of its own timescale.
    audio_end: u64,
    /// First audio timestamp: AAC's priming makes it negative.
    audio_origin: Option<i64>,
}

impl Fmp4Packager {
    pub fn new(fragments: Fragments) -> Fmp4Packager {
        Fmp4Packager {
            fragments,
            segment_frames: None,
            decided: 0,
            writer: None,
            video_timescale: 1,
            audio_timescale: 1,
            frame_ticks: 1,
            first_key: None,
            video: VecDeque::new(),
            audio: VecDeque::new(),
            fragment_start: None,
            ends: VecDeque::new(),
            audio_end: 0,
            audio_origin: None,
        }
    }

    /// Fragments end where every segment of `frames` frames starts, and
    /// only there (and at the forced keyframe of the short first one).
    pub fn with_segments(mut self, frames: Option<i64>) -> Fmp4Packager {
        self.segment_frames = frames.filter(|f| *f > 0);
        self
    }

    /// The sequence number of segment `n`'s fragment (its first, for
    /// segment 0) in the whole file.
    pub fn sequence_of(&self, n: usize) -> u32 {
        let short_first = u32::from(self.first_key.is_some());
        if n == 0 {
            1
        } else {
            n as u32 + 1 + short_first
        }
    }

    /// Writes segment `n` alone, as the whole file has it: `video` its
    /// packets, `audio` sound packets that include the segment's (`origin`
    /// the timestamp of the sound's first packet). Call after `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn segment_alone(
        &mut self,
        n: usize,
        first_frame: i64,
        frames: i64,
        last: bool,
        video: Vec<super::Encoded>,
        audio: &[super::Encoded],
        origin: i64,
    ) -> Result<Vec<Piece>, MuxError> {
        let sequence = self.sequence_of(n);
        let Some(writer) = self.writer.as_mut() else {
            return Err(MuxError::Write("a segment before the init segment".into()));
        };
        writer.set_next_sequence(sequence);
        if n > 0 {
            self.decided = 1;
        }
        self.audio_origin = Some(origin);
        let from = first_frame * self.frame_ticks;
        let to = (first_frame + frames) * self.frame_ticks;
        let window: Vec<super::Encoded> = audio
            .iter()
            .filter(|p| {
                let at = (p.dts - origin).max(0) as u64;
                !self.audio_before(at, from) && (last || self.audio_before(at, to))
            })
            .cloned()
            .collect();
        let mut packets: Packets = video.into_iter().map(|p| (Stream::Video, p)).collect();
        packets.extend(window.into_iter().map(|p| (Stream::Audio, p)));
        let mut out = self.packets(packets)?;
        out.extend(self.finish()?);
        Ok(out)
    }

    /// Whether audio time `a` (its ticks) is before video time `v`.
    fn audio_before(&self, a: u64, v: i64) -> bool {
        u128::from(a) * u128::from(self.video_timescale)
            < (v.max(0) as u128) * u128::from(self.audio_timescale)
    }

    /// Writes the fragment of the samples before video time `end` (every
    /// sample left when `None`).
    fn flush(&mut self, end: Option<i64>) -> Result<Vec<Piece>, MuxError> {
        let mut samples = Vec::new();
        while let Some(s) = self.video.front() {
            if end.is_some_and(|e| s.dts as i64 >= e) {
                break;
            }
            samples.extend(self.video.pop_front());
        }
        while let Some(s) = self.audio.front() {
            if end.is_some_and(|e| !self.audio_before(s.dts, e)) {
                break;
            }
            samples.extend(self.audio.pop_front());
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(MuxError::Write("packets before the init segment".into()));
        };
        let seconds = samples
            .iter()
            .filter(|s| s.track == VIDEO)
            .map(|s| f64::from(s.duration))
            .sum::<f64>()
            / f64::from(self.video_timescale);
        let bytes: Bytes = writer.fragment(&samples)?;
        Ok(vec![Piece::Fragment(bytes, seconds)])
    }

    /// Writes every decided fragment whose sound is complete.
    fn ready(&mut self) -> Result<Vec<Piece>, MuxError> {
        let mut out = Vec::new();
        while let Some(&end) = self.ends.front() {
            if self.audio_before(self.audio_end, end) {
                break;
            }
            self.ends.pop_front();
            out.extend(self.flush(Some(end))?);
        }
        Ok(out)
    }

    fn decide(&mut self, end: i64) {
        self.ends.push_back(end);
        self.decided += 1;
    }

    fn video_packet(&mut self, p: super::Encoded) {
        let target = if self.decided == 0 {
            self.fragments.first
        } else {
            self.fragments.rest
        };
        let fragment_ticks = (target.as_secs_f64() * f64::from(self.video_timescale)) as i64;
        let start = *self.fragment_start.get_or_insert(p.dts);
        let segment_start = self
            .segment_frames
            .is_some_and(|f| p.dts > 0 && p.dts % (f * self.frame_ticks) == 0);
        let pending = self.video.back().is_some_and(|s| s.dts as i64 >= start);
        // In segments, a fragment is a whole segment (the first may be cut
        // at the forced keyframe): so a segment's fragment depends on that
        // segment alone, and can be written out of order.
        let long_enough = self.segment_frames.is_none() && p.dts - start >= fragment_ticks;
        if p.keyframe && pending && (long_enough || segment_start) {
            self.decide(p.dts);
            self.fragment_start = Some(p.dts);
        }
        let duration = if p.duration > 0 {
            p.duration
        } else {
            self.frame_ticks
        };
        let end = p.dts + duration;
        self.video.push_back(Sample {
            track: VIDEO,
            dts: p.dts.max(0) as u64,
            cts_offset: (p.pts - p.dts) as i32,
            duration: duration as u32,
            keyframe: p.keyframe,
            data: p.data,
        });
        // The short first fragment ends where a keyframe is forced: it is
        // whole with its last frame, and leaves without waiting for the
        // keyframe to be encoded.
        if self.decided == 0
            && self
                .first_key
                .is_some_and(|k| end - start >= k * self.frame_ticks)
        {
            self.decide(end);
            self.fragment_start = None;
        }
    }
}

impl Package for Fmp4Packager {
    fn start(&mut self, streams: &Streams) -> Result<Vec<Piece>, MuxError> {
        let (Some(video), Some(audio)) = (&streams.video, &streams.audio) else {
            return Err(MuxError::Config(
                "an MP4 has a video and an audio track".into(),
            ));
        };
        let (v, a) = (raw(video), raw(audio));
        self.video_timescale = video.time_base.denominator() as u32;
        self.audio_timescale = (a.sample_rate as u32).max(1);
        self.frame_ticks = video.frame_ticks;
        let fps = f64::from(self.video_timescale) / self.frame_ticks.max(1) as f64;
        self.first_key = self
            .fragments
            .forced_key(fps)
            .filter(|k| self.segment_frames.is_none_or(|f| *k < f));
        let writer = Fmp4Writer::new(vec![
            TrackConfig::Video {
                width: v.width as u32,
                height: v.height as u32,
                timescale: self.video_timescale,
                extradata: extradata(video),
            },
            TrackConfig::Audio {
                sample_rate: a.sample_rate as u32,
                channels: a.ch_layout.nb_channels as u16,
                timescale: a.sample_rate as u32,
                extradata: extradata(audio),
            },
        ])?;
        let init = writer.init_segment()?;
        self.writer = Some(writer);
        Ok(vec![Piece::Init(init)])
    }

    fn packets(&mut self, packets: Packets) -> Result<Vec<Piece>, MuxError> {
        for (stream, p) in packets {
            match stream {
                Stream::Video => self.video_packet(p),
                Stream::Audio => {
                    let origin = *self.audio_origin.get_or_insert(p.dts);
                    let dts = (p.dts - origin).max(0) as u64;
                    let duration = if p.duration > 0 {
                        p.duration as u32
                    } else {
                        1024
                    };
                    self.audio_end = self.audio_end.max(dts + u64::from(duration));
                    self.audio.push_back(Sample {
                        track: AUDIO,
                        dts,
                        cts_offset: 0,
                        duration,
                        keyframe: true,
                        data: p.data,
                    });
                }
            }
        }
        self.ready()
    }

    fn finish(&mut self) -> Result<Vec<Piece>, MuxError> {
        let mut out = Vec::new();
        while let Some(end) = self.ends.pop_front() {
            out.extend(self.flush(Some(end))?);
        }
        out.extend(self.flush(None)?);
        Ok(out)
    }
}
