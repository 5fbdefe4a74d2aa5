//! Encoding composed frames to H.264 (libx264) and the mix to AAC, with
//! the settings of CONTRACT section 6 and the bench: x264 `veryfast`, a
//! keyframe every second, AAC 128 kb/s.

use bytes::Bytes;
use ffmpeg::format::sample::{Sample, Type};
use ffmpeg::format::Pixel;
use ffmpeg::util::frame;
use ffmpeg::{ChannelLayout, Dictionary, Packet};
use ffmpeg_next as ffmpeg;

use crate::compose::Frame;
use crate::edit::Quality;
use crate::media::{init, MediaError, CHANNELS, SAMPLE_RATE};
use crate::plan::Rate;

/// An encoded packet, times in its stream's timescale.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

fn enc_error(e: ffmpeg::Error) -> MediaError {
    MediaError::Encode(e.to_string())
}

/// The codec's global header (`extradata`): SPS/PPS for H.264, the
/// AudioSpecificConfig for AAC.
fn extradata(ctx: *const ffmpeg::ffi::AVCodecContext) -> Vec<u8> {
    // SAFETY: the context is open and owned by the caller; FFmpeg keeps
    // `extradata_size` bytes at `extradata` for its lifetime.
    unsafe {
        let ctx = &*ctx;
        if ctx.extradata.is_null() || ctx.extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(ctx.extradata, ctx.extradata_size as usize).to_vec()
        }
    }
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

pub struct VideoEncoder {
    encoder: ffmpeg::encoder::Video,
    yuv: frame::Video,
    /// Ticks of the timescale per frame.
    frame_ticks: i64,
    pub timescale: u32,
    pub width: u32,
    pub height: u32,
}

impl VideoEncoder {
    pub fn new(
        width: u32,
        height: u32,
        rate: Rate,
        quality: Quality,
    ) -> Result<VideoEncoder, MediaError> {
        init();
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or_else(|| MediaError::Encode("libx264 is not available in this FFmpeg".into()))?;
        // A timescale where one frame is a whole number of ticks: 12800
        // for integer rates (as FFmpeg's mp4 muxer), num for NTSC rates.
        let (timescale, frame_ticks) = if rate.den == 1 {
            (rate.num * 512, 512)
        } else {
            (rate.num, i64::from(rate.den))
        };
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(enc_error)?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(ffmpeg::Rational::new(1, timescale as i32));
        enc.set_frame_rate(Some(ffmpeg::Rational::new(
            rate.num as i32,
            rate.den as i32,
        )));
        // A keyframe every second: fragments of about one second each
        // start on one.
        enc.set_gop(((f64::from(rate.num) / f64::from(rate.den)).round() as u32).max(1));
        // No B-frames: decode order is presentation order, so fragments
        // need no composition offsets or edit lists and start cleanly.
        enc.set_max_b_frames(0);
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        // Frames are composed in BT.709 limited range (compose::frame);
        // say so in the stream, so that players do not guess.
        enc.set_colorspace(ffmpeg::color::Space::BT709);
        enc.set_color_range(ffmpeg::color::Range::MPEG);
        // SAFETY: the context is not opened yet and owned here.
        unsafe {
            let ctx = enc.as_mut_ptr();
            (*ctx).color_primaries = ffmpeg::ffi::AVColorPrimaries::AVCOL_PRI_BT709;
            (*ctx).color_trc = ffmpeg::ffi::AVColorTransferCharacteristic::AVCOL_TRC_BT709;
        }
        let mut options = Dictionary::new();
        options.set("preset", "veryfast");
        options.set(
            "crf",
            match quality {
                Quality::Low => "28",
                Quality::Medium => "23",
                Quality::High => "18",
            },
        );
        let encoder = enc.open_as_with(codec, options).map_err(enc_error)?;
        Ok(VideoEncoder {
            encoder,
            yuv: frame::Video::new(Pixel::YUV420P, width, height),
            frame_ticks,
            timescale,
            width,
            height,
        })
    }

    pub fn extradata(&self) -> Vec<u8> {
        extradata(unsafe { self.encoder.as_ptr() })
    }

    pub fn frame_ticks(&self) -> i64 {
        self.frame_ticks
    }

    /// Encodes frame number `index`, as a keyframe if `key`; returns the
    /// packets now ready.
    pub fn encode(
        &mut self,
        frame: &Frame,
        index: i64,
        key: bool,
    ) -> Result<Vec<Encoded>, MediaError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::Encode(format!(
                "a {}×{} frame for a {}×{} stream",
                frame.width, frame.height, self.width, self.height
            )));
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (
            frame.chroma_width() as usize,
            frame.chroma_height() as usize,
        );
        for (plane, data, pw, ph) in [
            (0, &frame.y, w, h),
            (1, &frame.u, cw, ch),
            (2, &frame.v, cw, ch),
        ] {
            let stride = self.yuv.stride(plane);
            let dst = self.yuv.data_mut(plane);
            for y in 0..ph {
                dst[y * stride..y * stride + pw].copy_from_slice(&data[y * pw..(y + 1) * pw]);
            }
        }
        self.yuv.set_pts(Some(index * self.frame_ticks));
        // libx264 starts a new closed GOP (an IDR frame) at a frame marked I.
        self.yuv.set_kind(if key {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        self.encoder.send_frame(&self.yuv).map_err(enc_error)?;
        let mut out = Vec::new();
        drain(&mut self.encoder, &mut out)?;
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<Encoded>, MediaError> {
        self.encoder.send_eof().map_err(enc_error)?;
        let mut out = Vec::new();
        drain(&mut self.encoder, &mut out)?;
        Ok(out)
    }
}

pub struct AudioEncoder {
    encoder: ffmpeg::encoder::Audio,
    frame: frame::Audio,
    /// Interleaved samples waiting for a whole encoder frame.
    pending: Vec<f32>,
    next_pts: i64,
    pub frame_size: usize,
}

impl AudioEncoder {
    pub fn new() -> Result<AudioEncoder, MediaError> {
        init();
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC)
            .ok_or_else(|| MediaError::Encode("no AAC encoder in this FFmpeg".into()))?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(enc_error)?;
        enc.set_rate(SAMPLE_RATE as i32);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_format(Sample::F32(Type::Planar));
        enc.set_bit_rate(128_000);
        enc.set_time_base(ffmpeg::Rational::new(1, SAMPLE_RATE as i32));
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        let encoder = enc.open_as(codec).map_err(enc_error)?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let frame = frame::Audio::new(Sample::F32(Type::Planar), frame_size, ChannelLayout::STEREO);
        Ok(AudioEncoder {
            encoder,
            frame,
            pending: Vec::new(),
            next_pts: 0,
            frame_size,
        })
    }

    pub fn extradata(&self) -> Vec<u8> {
        extradata(unsafe { self.encoder.as_ptr() })
    }

    /// Adds interleaved stereo samples; returns the packets now ready.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Encoded>, MediaError> {
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let whole = self.frame_size * CHANNELS;
        while self.pending.len() >= whole {
            let chunk: Vec<f32> = self.pending.drain(..whole).collect();
            self.send(&chunk, &mut out)?;
        }
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
        for ch in 0..CHANNELS {
            let plane = self.frame.plane_mut::<f32>(ch);
            for (i, s) in plane.iter_mut().enumerate().take(self.frame_size) {
                *s = interleaved[i * CHANNELS + ch];
            }
        }
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += self.frame_size as i64;
        self.encoder.send_frame(&self.frame).map_err(enc_error)?;
        drain(&mut self.encoder, out)
    }
}
