//! FFmpeg encoders as every format uses them: a video encoder fed
//! composed frames through the [`Converter`], an audio encoder fed the
//! interleaved mix, each draining the packets it has ready.

use bytes::Bytes;
use ffmpeg::ffi;
use ffmpeg::format::sample::{Sample, Type};
use ffmpeg::format::Pixel;
use ffmpeg::util::frame;
use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::convert::{Converter, Spares};
use super::Encoded;
use super::{Frame, Stream, StreamDesc};
use crate::engine::media::{init, MediaError, CHANNELS, SAMPLE_RATE};
use crate::engine::plan::{Plan, Rate};

pub fn enc_error(e: ffmpeg::Error) -> MediaError {
    MediaError::Encode(e.to_string())
}

fn drain(encoder: &mut ffmpeg::encoder::Encoder, out: &mut Vec<Encoded>) -> Result<(), MediaError> {
    let mut packet = Packet::empty();
    loop {
        match encoder.receive_packet(&mut packet) {
            Ok(()) => out.push(Encoded {
                pts: packet.pts().unwrap_or(0),
                dts: packet.dts().or(packet.pts()).unwrap_or(0),
                duration: packet.duration(),
                keyframe: packet.is_key(),
                data: Bytes::copy_from_slice(packet.data().unwrap_or(&[])),
            }),
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                return Ok(())
            }
            Err(e) => return Err(enc_error(e)),
        }
    }
}

fn find(name: &str) -> Result<ffmpeg::Codec, MediaError> {
    init();
    ffmpeg::encoder::find_by_name(name)
        .ok_or_else(|| MediaError::Encode(format!("{name} is not available in this FFmpeg")))
}

/// How a video encoder is set up.
#[derive(Clone)]
pub struct VideoSettings {
    pub codec: &'static str,
    pub pixel: Pixel,
    /// The composed frames' size.
    pub compose: (u32, u32),
    /// The encoded size.
    pub size: (u32, u32),
    pub rate: Rate,
    /// Frames between keyframes.
    pub gop: Option<u32>,
    /// The codec's global header in `extradata` (MP4 wants it).
    pub global_header: bool,
    /// A fixed quantiser (FFmpeg's qscale: MJPEG).
    pub qscale: Option<i32>,
    pub bit_rate: Option<usize>,
    /// The codec's private options.
    pub options: Vec<(&'static str, String)>,
    /// Frame threads (throughput) rather than slice threads (no delay).
    pub frame_threads: bool,
    /// One thread, whatever the cores: the bytes do not depend on the
    /// machine, and nothing is held back for other threads (parallelism
    /// comes from encoding several segments at once instead).
    pub one_thread: bool,
    /// A forced keyframe starts a fresh encoder (see [`VideoCodec::encode`]).
    pub restart_at_forced_key: bool,
    /// Frame threads for an encoder whose first frame is the stream's
    /// frame 0, up to its first restart (the short first fragment, which a
    /// viewer waits for with nothing else to encode yet; all of segment 0
    /// when there is no forced keyframe), a fixed count whatever the
    /// cores, so that those bytes too are the same on every machine; later
    /// encoders keep `one_thread`.
    pub opening_threads: Option<i32>,
}

impl VideoSettings {
    /// `codec` taking `pixel` frames at the plan's sizes and rate, with no
    /// options yet.
    pub fn new(codec: &'static str, pixel: Pixel, plan: &Plan) -> VideoSettings {
        VideoSettings {
            codec,
            pixel,
            compose: (plan.width, plan.height),
            size: (plan.output.width, plan.output.height),
            rate: plan.rate,
            gop: None,
            global_header: false,
            qscale: None,
            bit_rate: None,
            options: Vec::new(),
            frame_threads: false,
            one_thread: false,
            restart_at_forced_key: false,
            opening_threads: None,
        }
    }

    /// A keyframe every second: fragments and clusters start on one.
    pub fn keyframe_every_second(mut self) -> VideoSettings {
        self.gop = Some(self.rate.as_f64().round() as u32);
        self
    }
}

pub struct VideoCodec {
    /// `None` only between closing an encoder and opening its successor.
    encoder: Option<ffmpeg::encoder::Video>,
    convert: Converter,
    frame_ticks: i64,
    time_base: Rational,
    /// No frame was sent to this encoder yet.
    fresh: bool,
    /// The settings to open a fresh encoder with at the forced keyframe.
    restart: Option<VideoSettings>,
}

/// A time base where one frame is a whole number of ticks: 12800 for 25
/// fps (as FFmpeg's mp4 muxer), num for NTSC rates; and the ticks.
pub(crate) fn timing(rate: Rate) -> (Rational, i64) {
    if rate.den == 1 {
        (Rational::new(1, (rate.num * 512) as i32), 512)
    } else {
        (Rational::new(1, rate.num as i32), i64::from(rate.den))
    }
}

/// An encoder's global header (H.264: its SPS and PPS), which the
/// container carries once for the whole stream.
fn extradata(encoder: &ffmpeg::encoder::Video) -> &[u8] {
    // SAFETY: an opened encoder keeps `extradata_size` bytes at
    // `extradata` for as long as it lives.
    unsafe {
        let ctx = &*encoder.as_ptr();
        if ctx.extradata.is_null() || ctx.extradata_size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ctx.extradata, ctx.extradata_size as usize)
        }
    }
}

/// An opened video encoder as `s` says.
fn open_video(s: &VideoSettings) -> Result<ffmpeg::encoder::Video, MediaError> {
    let codec = find(s.codec)?;
    let (time_base, _) = timing(s.rate);
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(enc_error)?;
    enc.set_width(s.size.0);
    enc.set_height(s.size.1);
    enc.set_format(s.pixel);
    enc.set_time_base(time_base);
    // Square pixels, said so: MJPEG writes its JFIF header only then.
    enc.set_aspect_ratio(Rational::new(1, 1));
    enc.set_frame_rate(Some(Rational::new(s.rate.num as i32, s.rate.den as i32)));
    if let Some(gop) = s.gop {
        enc.set_gop(gop.max(1));
    }
    // No B-frames: decode order is presentation order, fragments need
    // no composition offsets and start cleanly.
    enc.set_max_b_frames(0);
    if let Some(rate) = s.bit_rate {
        enc.set_bit_rate(rate);
    }
    let yuv = matches!(s.pixel, Pixel::YUV420P | Pixel::YUVJ420P);
    if s.pixel == Pixel::YUV420P {
        // What the compositor makes: players must not guess BT.601.
        enc.set_colorspace(ffmpeg::color::Space::BT709);
        enc.set_color_range(ffmpeg::color::Range::MPEG);
    } else if yuv {
        enc.set_color_range(ffmpeg::color::Range::JPEG);
    }
    let mut flags = ffmpeg::codec::Flags::empty();
    if s.global_header {
        flags |= ffmpeg::codec::Flags::GLOBAL_HEADER;
    }
    if let Some(q) = s.qscale {
        flags |= ffmpeg::codec::Flags::QSCALE;
        enc.set_global_quality(q * ffi::FF_QP2LAMBDA);
    }
    enc.set_flags(flags);
    // SAFETY: the context is not open yet; these are plain fields.
    unsafe {
        let ctx = enc.as_mut_ptr();
        if s.pixel == Pixel::YUV420P {
            (*ctx).color_primaries = ffi::AVColorPrimaries::AVCOL_PRI_BT709;
            (*ctx).color_trc = ffi::AVColorTransferCharacteristic::AVCOL_TRC_BT709;
        }
        // Frame threads keep both cores busy but hold frames back
        // (x264: its threads and look-ahead); slice threads hand each
        // frame out as soon as it is encoded.
        (*ctx).thread_type = if s.frame_threads {
            ffi::FF_THREAD_FRAME
        } else {
            ffi::FF_THREAD_SLICE
        };
        if let Some(n) = s.opening_threads {
            (*ctx).thread_type = ffi::FF_THREAD_FRAME;
            (*ctx).thread_count = n;
        } else if s.one_thread {
            (*ctx).thread_count = 1;
        } else if s.frame_threads {
            // A frame thread per core, not x264's 1.5 per core: each holds
            // a frame's buffers (9 MiB a 720p render on two cores), and the
            // extra one adds nothing while the compositor shares the cores.
            (*ctx).thread_count =
                std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
        }
    }
    let mut options = Dictionary::new();
    for (k, v) in &s.options {
        options.set(k, v);
    }
    enc.open_as_with(codec, options).map_err(enc_error)
}

impl VideoCodec {
    pub fn open(s: VideoSettings) -> Result<VideoCodec, MediaError> {
        let (time_base, frame_ticks) = timing(s.rate);
        // With one thread; reopened with `opening_threads` if its first
        // frame is the stream's frame 0.
        let encoder = open_video(&VideoSettings {
            opening_threads: None,
            ..s.clone()
        })?;
        let convert = Converter::new(s.compose.0, s.compose.1, s.pixel, s.size.0, s.size.1)?;
        Ok(VideoCodec {
            encoder: Some(encoder),
            convert,
            frame_ticks,
            time_base,
            fresh: true,
            restart: s.restart_at_forced_key.then_some(s),
        })
    }

    pub fn desc(&self) -> StreamDesc {
        StreamDesc {
            params: self.encoder.as_ref().map_or_else(
                ffmpeg::codec::Parameters::new,
                ffmpeg::codec::Parameters::from,
            ),
            time_base: self.time_base,
            frame_ticks: self.frame_ticks,
        }
    }

    /// Encodes frame number `index`, as a keyframe if `key`; the frame
    /// goes back to `spares` once encoded.
    pub fn encode(
        &mut self,
        frame: Frame,
        index: i64,
        key: bool,
        spares: &Spares,
    ) -> Result<Vec<Encoded>, MediaError> {
        let mut out = Vec::new();
        if key && self.restart.is_some() {
            // The encoder holds frames back (x264: its frame threads and
            // look-ahead, about 16 frames). Ending it here hands out every
            // frame before the forced keyframe at once, so the short
            // first fragment leaves as soon as its frames are composed;
            // a fresh encoder with the same settings starts at the
            // keyframe, which is a clean start (an IDR frame) anyway.
            out = self.restart()?;
        }
        if std::mem::take(&mut self.fresh) && index == 0 {
            if let Some(settings) = self
                .restart
                .as_ref()
                .filter(|s| s.opening_threads.is_some())
            {
                // Where a stream starts, whoever encodes it: the same
                // stream headers, or the init segment would lie.
                let headers = extradata(opened(&mut self.encoder)?).to_vec();
                self.encoder = None;
                let opening = self.encoder.insert(open_video(settings)?);
                if extradata(opening) != headers.as_slice() {
                    return Err(MediaError::Encode(
                        "the opening encoder's stream headers differ".into(),
                    ));
                }
            }
        }
        let mut picture = self.convert.convert(frame, spares)?;
        picture.set_pts(Some(index * self.frame_ticks));
        // libx264 starts a closed GOP (an IDR frame), libvpx a keyframe, at
        // a frame marked I.
        picture.set_kind(if key {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        let encoder = opened(&mut self.encoder)?;
        encoder.send_frame(&picture).map_err(enc_error)?;
        drain(encoder, &mut out)?;
        Ok(out)
    }

    /// Ends the stream so far (its last packets are returned) and opens a
    /// fresh encoder with the same settings, whose first frame is an IDR
    /// frame: what follows depends on nothing before, so a segment encoded
    /// this way is the same bytes wherever it is encoded. Only an encoder
    /// opened with `restart_at_forced_key` can.
    pub fn restart(&mut self) -> Result<Vec<Encoded>, MediaError> {
        let Some(settings) = self.restart.clone() else {
            return Err(MediaError::Encode(
                "this encoder cannot be restarted".into(),
            ));
        };
        let settings = VideoSettings {
            opening_threads: None,
            ..settings
        };
        let out = self.finish()?;
        let headers = extradata(opened(&mut self.encoder)?).to_vec();
        // The old encoder is closed before the fresh one opens, so
        // that the fresh one's buffers can take the old one's memory
        // rather than both being held at once.
        self.encoder = None;
        let fresh = self.encoder.insert(open_video(&settings)?);
        if extradata(fresh) != headers.as_slice() {
            return Err(MediaError::Encode(
                "the restarted encoder's stream headers differ".into(),
            ));
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<Encoded>, MediaError> {
        let encoder = opened(&mut self.encoder)?;
        encoder.send_eof().map_err(enc_error)?;
        let mut out = Vec::new();
        drain(encoder, &mut out)?;
        Ok(out)
    }
}

fn opened(
    encoder: &mut Option<ffmpeg::encoder::Video>,
) -> Result<&mut ffmpeg::encoder::Video, MediaError> {
    encoder
        .as_mut()
        .ok_or_else(|| MediaError::Encode("the restarted encoder did not open".into()))
}

/// An audio encoder of the 48 kHz stereo mix.
pub struct AudioCodec {
    encoder: ffmpeg::encoder::Audio,
    frame: frame::Audio,
    planar: bool,
    /// Interleaved samples waiting for a whole encoder frame.
    pending: Vec<f32>,
    next_pts: i64,
    frame_size: usize,
}

impl AudioCodec {
    /// `codec` by name, taking f32 samples (planar or interleaved, as the
    /// codec wants) at `bit_rate` bits per second.
    pub fn open(
        codec: &'static str,
        bit_rate: usize,
        global_header: bool,
    ) -> Result<AudioCodec, MediaError> {
        AudioCodec::open_at(codec, bit_rate, global_header, 0)
    }

    /// As [`AudioCodec::open`], for samples that start at sample `start`
    /// of the stream: its packets carry the stream's timestamps, as an
    /// encoder fed from sample 0 would number them.
    pub fn open_at(
        codec: &'static str,
        bit_rate: usize,
        global_header: bool,
        start: i64,
    ) -> Result<AudioCodec, MediaError> {
        let codec = find(codec)?;
        let formats: Vec<Sample> = codec
            .audio()
            .map_err(enc_error)?
            .formats()
            .map(Iterator::collect)
            .unwrap_or_default();
        let format = [Sample::F32(Type::Planar), Sample::F32(Type::Packed)]
            .into_iter()
            .find(|f| formats.contains(f))
            .ok_or_else(|| {
                MediaError::Encode(format!("{} takes no float samples", codec.name()))
            })?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(enc_error)?;
        enc.set_rate(SAMPLE_RATE as i32);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_format(format);
        enc.set_bit_rate(bit_rate);
        enc.set_time_base(Rational::new(1, SAMPLE_RATE as i32));
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc.open_as(codec).map_err(enc_error)?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let frame = frame::Audio::new(format, frame_size, ChannelLayout::STEREO);
        Ok(AudioCodec {
            encoder,
            frame,
            planar: format.is_planar(),
            pending: Vec::new(),
            next_pts: start,
            frame_size,
        })
    }

    /// Samples per channel in a packet.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Samples the encoder puts before the first input sample (AAC's
    /// priming): its first packet's timestamp is minus this.
    pub fn initial_padding(&self) -> i64 {
        // SAFETY: a plain field of the opened context.
        i64::from(unsafe { (*self.encoder.as_ptr()).initial_padding })
    }

    pub fn desc(&self) -> StreamDesc {
        StreamDesc {
            params: ffmpeg::codec::Parameters::from(&self.encoder),
            time_base: Rational::new(1, SAMPLE_RATE as i32),
            frame_ticks: self.frame_size as i64,
        }
    }

    /// Adds interleaved stereo samples; returns the packets now ready.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Encoded>, MediaError> {
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let whole = self.frame_size * CHANNELS;
        let mut at = 0;
        while self.pending.len() - at >= whole {
            let chunk = self.pending[at..at + whole].to_vec();
            self.send(&chunk, &mut out)?;
            at += whole;
        }
        self.pending.drain(..at);
        Ok(out)
    }

    /// Encodes what is left (padded with silence) and flushes.
    pub fn finish(&mut self) -> Result<Vec<Encoded>, MediaError> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let mut chunk = std::mem::take(&mut self.pending);
            chunk.resize(self.frame_size * CHANNELS, 0.0);
            self.send(&chunk, &mut out)?;
        }
        self.encoder.send_eof().map_err(enc_error)?;
        drain(&mut self.encoder, &mut out)?;
        Ok(out)
    }

    fn send(&mut self, interleaved: &[f32], out: &mut Vec<Encoded>) -> Result<(), MediaError> {
        if self.planar {
            for ch in 0..CHANNELS {
                let plane = self.frame.plane_mut::<f32>(ch);
                for (i, s) in plane.iter_mut().enumerate().take(self.frame_size) {
                    *s = interleaved[i * CHANNELS + ch];
                }
            }
        } else {
            // Packed: one plane of interleaved samples, viewed as bytes.
            let bytes = self.frame.data_mut(0);
            for (dst, s) in bytes.chunks_exact_mut(4).zip(interleaved) {
                dst.copy_from_slice(&s.to_ne_bytes());
            }
        }
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += self.frame_size as i64;
        self.encoder.send_frame(&self.frame).map_err(enc_error)?;
        drain(&mut self.encoder, out)
    }
}

/// Tags each packet with its stream.
pub fn tagged(stream: Stream, packets: Vec<Encoded>) -> Vec<(Stream, Encoded)> {
    packets.into_iter().map(|p| (stream, p)).collect()
}
