//! MP4: H.264 (libx264 `veryfast`, a keyframe every second) and AAC, cut
//! into fragments of about the configured length, each starting on a
//! video keyframe; the init segment first.

use bytes::Bytes;
use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::codec::{AudioCodec, VideoCodec, VideoSettings};
use super::{Codecs, Package, Packets, Piece, Stream, StreamDesc, Streams};
use crate::engine::edit::Quality;
use crate::engine::mux::{Fmp4Writer, MuxError, Sample, TrackConfig};
use crate::engine::output::Fragments;
use crate::engine::plan::Plan;

const VIDEO: usize = 0;
const AUDIO: usize = 1;

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
        // Frame threads: x264's slice threads leave a third of the two
        // cores idle; the delay they add is taken back by restarting the
        // encoder where the short first fragment ends.
        frame_threads: true,
        restart_at_forced_key: true,
        ..VideoSettings::new("libx264", ffmpeg::format::Pixel::YUV420P, plan)
            .keyframe_every_second()
    })?;
    // An MP4 always has its audio track (silent when muted), so players
    // that expect one are never surprised.
    let audio = AudioCodec::open("aac", super::audio_bit_rate(o.quality), true)?;
    Ok(Codecs::new(Some(video), Some(audio)))
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

pub struct Fmp4Packager {
    fragments: Fragments,
    /// Fragments published so far: the first may be shorter.
    published: usize,
    writer: Option<Fmp4Writer>,
    video_timescale: u32,
    frame_ticks: i64,
    /// The frame where the short first fragment ends, if there is one.
    first_key: Option<i64>,
    pending: Vec<Sample>,
    /// Video decode time where the pending fragment starts, in ticks.
    fragment_start: Option<i64>,
    /// First audio timestamp: AAC's priming makes it negative.
    audio_origin: Option<i64>,
}

impl Fmp4Packager {
    pub fn new(fragments: Fragments) -> Fmp4Packager {
        Fmp4Packager {
            fragments,
            published: 0,
            writer: None,
            video_timescale: 1,
            frame_ticks: 1,
            first_key: None,
            pending: Vec::new(),
            fragment_start: None,
            audio_origin: None,
        }
    }

    fn flush(&mut self) -> Result<Vec<Piece>, MuxError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(MuxError::Write("packets before the init segment".into()));
        };
        let seconds = self
            .pending
            .iter()
            .filter(|s| s.track == VIDEO)
            .map(|s| f64::from(s.duration))
            .sum::<f64>()
            / f64::from(self.video_timescale);
        // Samples go in track order: all video, then all audio.
        self.pending.sort_by_key(|s| s.track);
        let bytes: Bytes = writer.fragment(&self.pending)?;
        self.pending.clear();
        self.published += 1;
        Ok(vec![Piece::Fragment(bytes, seconds)])
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
        self.frame_ticks = video.frame_ticks;
        let fps = f64::from(self.video_timescale) / self.frame_ticks.max(1) as f64;
        self.first_key = self.fragments.forced_key(fps);
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
        let mut out = Vec::new();
        for (stream, p) in packets {
            match stream {
                Stream::Video => {
                    let target = if self.published == 0 {
                        self.fragments.first
                    } else {
                        self.fragments.rest
                    };
                    let fragment_ticks =
                        (target.as_secs_f64() * f64::from(self.video_timescale)) as i64;
                    let start = *self.fragment_start.get_or_insert(p.dts);
                    if p.keyframe
                        && p.dts - start >= fragment_ticks
                        && self.pending.iter().any(|s| s.track == VIDEO)
                    {
                        out.extend(self.flush()?);
                        self.fragment_start = Some(p.dts);
                    }
                    let duration = if p.duration > 0 {
                        p.duration
                    } else {
                        self.frame_ticks
                    };
                    let end = p.dts + duration;
                    self.pending.push(Sample {
                        track: VIDEO,
                        dts: p.dts.max(0) as u64,
                        cts_offset: (p.pts - p.dts) as i32,
                        duration: duration as u32,
                        keyframe: p.keyframe,
                        data: p.data,
                    });
                    // The short first fragment ends where a keyframe is
                    // forced: it is whole with its last frame, and leaves
                    // without waiting for the keyframe to be encoded.
                    if self.published == 0
                        && self
                            .first_key
                            .is_some_and(|k| end - start >= k * self.frame_ticks)
                    {
                        out.extend(self.flush()?);
                        self.fragment_start = None;
                    }
                }
                Stream::Audio => {
                    let origin = *self.audio_origin.get_or_insert(p.dts);
                    self.pending.push(Sample {
                        track: AUDIO,
                        dts: (p.dts - origin).max(0) as u64,
                        cts_offset: 0,
                        duration: if p.duration > 0 {
                            p.duration as u32
                        } else {
                            1024
                        },
                        keyframe: true,
                        data: p.data,
                    });
                }
            }
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<Piece>, MuxError> {
        self.flush()
    }
}
