//! Video frames by time: decode forward, keep the frame on screen at t,
//! converted once per decoded frame to what its layer draws: YUV 4:2:0 at
//! the layer's size in the output's colours (see `compose::frame`), or
//! RGBA for stills.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{self, Flags};
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::{decode_error, open_input, seconds, MediaError};
use crate::compose::filter::Lut;
use crate::compose::frame::{ColorMap, SourceColor};
use crate::compose::{Frame, Picture};
use crate::plan::Crop;

/// What a layer wants of each frame.
pub struct Spec {
    pub width: u32,
    pub height: u32,
    pub crop: Crop,
    pub filter: Option<Box<Lut>>,
}

/// What a scaler was made for: source format, source size, output size.
type ScalerKey = (Pixel, u32, u32, u32, u32);

pub struct VideoReader {
    src: String,
    input: ffmpeg::format::context::Input,
    stream: usize,
    time_base: ffmpeg::Rational,
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(scaling::Context, ScalerKey)>,
    /// The frame on screen at the last asked time, converted.
    current: Option<(f64, Frame)>,
    /// The next decoded frame, not yet on screen.
    pending: Option<(f64, frame::Video)>,
    eof: bool,
}

impl VideoReader {
    pub fn open(path: &Path, src: &str) -> Result<VideoReader, MediaError> {
        let input = open_input(path, src)?;
        let stream =
            input
                .streams()
                .best(ffmpeg::media::Type::Video)
                .ok_or(MediaError::NoStream {
                    src: src.to_owned(),
                    kind: "video",
                })?;
        let index = stream.index();
        let time_base = stream.time_base();
        // One decoding thread: the encoder's threads keep both cores busy,
        // and FFmpeg's frame threads cost 8 % more CPU for a 1080p render
        // without making it sooner (bench/analysis.md).
        let context = super::decoder_context(stream.parameters(), src)?;
        let decoder = context.decoder().video().map_err(decode_error(src))?;
        Ok(VideoReader {
            src: src.to_owned(),
            input,
            stream: index,
            time_base,
            decoder,
            scaler: None,
            current: None,
            pending: None,
            eof: false,
        })
    }

    /// The size the stream declares.
    pub fn size(&self) -> (u32, u32) {
        (self.decoder.width(), self.decoder.height())
    }

    /// Starts reading at `t` seconds (a clip's trim).
    pub fn seek(&mut self, t: f64) -> Result<(), MediaError> {
        if t > 0.0 {
            let ts = (t * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
            // Seeking lands on a keyframe at or before t; frames before t
            // are then decoded and skipped by `frame_at`.
            self.input.seek(ts, ..ts).map_err(decode_error(&self.src))?;
            self.decoder.flush();
        }
        Ok(())
    }

    /// The frame on screen at source time `t`, as `spec` asks; the last
    /// frame stays on screen past the end of the stream.
    pub fn frame_at(&mut self, t: f64, spec: &Spec) -> Result<Option<&Frame>, MediaError> {
        loop {
            if self.pending.is_none() && !self.eof {
                self.pending = self.decode_next()?;
                if self.pending.is_none() {
                    self.eof = true;
                }
            }
            match &self.pending {
                Some((pts, _)) if *pts <= t + 1e-6 || self.current.is_none() => {
                    let Some((pts, mut frame)) = self.pending.take() else {
                        break;
                    };
                    // A frame that a later one replaces before `t` is
                    // never shown: skip its conversion.
                    if self.current.is_some() {
                        if let Some(next) = self.peek_next()? {
                            if next <= t + 1e-6 {
                                continue;
                            }
                        }
                    }
                    let mut out = self.current.take().map(|(_, f)| f);
                    self.convert_yuv(&mut frame, spec, &mut out)?;
                    if let Some(out) = out {
                        self.current = Some((pts, out));
                    }
                }
                _ => break,
            }
        }
        Ok(self.current.as_ref().map(|(_, p)| p))
    }

    /// The time of the next decoded frame, decoding it if needed.
    fn peek_next(&mut self) -> Result<Option<f64>, MediaError> {
        if self.pending.is_none() && !self.eof {
            self.pending = self.decode_next()?;
            if self.pending.is_none() {
                self.eof = true;
            }
        }
        Ok(self.pending.as_ref().map(|(pts, _)| *pts))
    }

    /// The first frame as RGBA at `width`×`height` after `crop` (stills).
    pub fn first_rgba(
        &mut self,
        crop: Crop,
        width: u32,
        height: u32,
    ) -> Result<Picture, MediaError> {
        let Some((_, mut frame)) = self.decode_next()? else {
            return Err(MediaError::Decode {
                src: self.src.clone(),
                reason: "no frame".into(),
            });
        };
        apply_crop(&mut frame, crop);
        let rgba = self.scale(&frame, Pixel::RGBA, width, height)?;
        Ok(packed(&rgba, width, height))
    }

    fn decode_next(&mut self) -> Result<Option<(f64, frame::Video)>, MediaError> {
        let mut frame = frame::Video::empty();
        loop {
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    let pts = frame.timestamp().or(frame.pts()).unwrap_or(0);
                    return Ok(Some((seconds(pts, self.time_base), frame)));
                }
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {}
                Err(e) => return Err(decode_error(&self.src)(e)),
            }
            let mut sent = false;
            if let Some(packet) = super::next_packet(&mut self.input, self.stream, &self.src)? {
                self.decoder
                    .send_packet(&packet)
                    .map_err(decode_error(&self.src))?;
                sent = true;
            }
            if !sent {
                // The end of the file: drain what the decoder still holds.
                match self.decoder.send_eof() {
                    Ok(()) | Err(ffmpeg::Error::Eof) => {}
                    Err(e) => return Err(decode_error(&self.src)(e)),
                }
            }
        }
    }

    fn scale(
        &mut self,
        frame: &frame::Video,
        format: Pixel,
        width: u32,
        height: u32,
    ) -> Result<frame::Video, MediaError> {
        let key = (frame.format(), frame.width(), frame.height(), width, height);
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let ctx = scaling::Context::get(
                frame.format(),
                frame.width(),
                frame.height(),
                format,
                width,
                height,
                Flags::BICUBIC,
            )
            .map_err(decode_error(&self.src))?;
            self.scaler = Some((ctx, key));
        }
        let Some((scaler, _)) = self.scaler.as_mut() else {
            return Err(MediaError::Decode {
                src: self.src.clone(),
                reason: "no scaler".into(),
            });
        };
        let mut out = frame::Video::empty();
        scaler
            .run(frame, &mut out)
            .map_err(decode_error(&self.src))?;
        Ok(out)
    }

    /// Converts a decoded frame into `out` (reusing its buffers).
    fn convert_yuv(
        &mut self,
        frame: &mut frame::Video,
        spec: &Spec,
        out: &mut Option<Frame>,
    ) -> Result<(), MediaError> {
        let color = source_color(frame);
        apply_crop(frame, spec.crop);
        let (w, h) = (spec.width, spec.height);
        let same = frame.format() == Pixel::YUV420P && (frame.width(), frame.height()) == (w, h);
        let scaled;
        let yuv = if same {
            &*frame
        } else {
            scaled = self.scale(frame, Pixel::YUV420P, w, h)?;
            &scaled
        };
        let target = out.get_or_insert_with(|| Frame::filled(w, h, [0, 0, 0, 255]));
        if (target.width, target.height) != (w, h) {
            *target = Frame::filled(w, h, [0, 0, 0, 255]);
        }
        let (cw, ch) = (
            target.chroma_width() as usize,
            target.chroma_height() as usize,
        );
        copy_plane(yuv, 0, &mut target.y, w as usize, h as usize);
        copy_plane(yuv, 1, &mut target.u, cw, ch);
        copy_plane(yuv, 2, &mut target.v, cw, ch);
        if let Some(map) = ColorMap::to_output(color) {
            map.apply(target);
        }
        if let Some(lut) = &spec.filter {
            lut.apply(target);
        }
        Ok(())
    }
}

/// The colours a decoded frame was made in. Untagged frames are guessed
/// as players guess them: BT.709 from 1280 wide or 720 high up (HD), BT.601
/// below (SD).
fn source_color(frame: &frame::Video) -> SourceColor {
    use ffmpeg::color::{Range, Space};
    let hd = frame.width() >= 1280 || frame.height() >= 720;
    let matrix = match frame.color_space() {
        Space::BT709 => SourceColor::BT709.matrix,
        Space::Unspecified if hd => SourceColor::BT709.matrix,
        _ => SourceColor::BT601,
    };
    // The YUVJ formats are full range by definition, and the scaler turns
    // them into limited range itself.
    let yuvj = matches!(
        frame.format(),
        Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P
    );
    SourceColor {
        matrix,
        full_range: frame.color_range() == Range::JPEG && !yuvj,
    }
}

/// Cuts `crop` (fractions of each side) off a decoded frame, in place.
fn apply_crop(frame: &mut frame::Video, crop: Crop) {
    if crop.is_none() {
        return;
    }
    let (w, h) = (f64::from(frame.width()), f64::from(frame.height()));
    let px = |f: f64, of: f64| (f.clamp(0.0, 1.0) * of).round() as usize;
    // SAFETY: the frame is owned and decoded; FFmpeg moves its data
    // pointers and shrinks its size within the same buffers. The cut is
    // validated (each pair of sides leaves at least one pixel).
    unsafe {
        let f = frame.as_mut_ptr();
        let (l, r) = (px(crop.left, w), px(crop.right, w));
        let (t, b) = (px(crop.top, h), px(crop.bottom, h));
        if l + r >= frame.width() as usize || t + b >= frame.height() as usize {
            return;
        }
        (*f).crop_left = l;
        (*f).crop_right = r;
        (*f).crop_top = t;
        (*f).crop_bottom = b;
        ffmpeg::ffi::av_frame_apply_cropping(f, ffmpeg::ffi::AV_FRAME_CROP_UNALIGNED as i32);
    }
}

/// Copies plane `index` of `src` (rows padded to its stride) into a packed
/// `width`×`height` plane.
fn copy_plane(src: &frame::Video, index: usize, dst: &mut [u8], width: usize, height: usize) {
    let stride = src.stride(index);
    let data = src.data(index);
    for y in 0..height {
        dst[y * width..(y + 1) * width].copy_from_slice(&data[y * stride..y * stride + width]);
    }
}

/// Copies an RGBA frame (rows padded to its stride) into a packed picture.
pub(crate) fn packed(rgba: &frame::Video, width: u32, height: u32) -> Picture {
    let stride = rgba.stride(0);
    let row = width as usize * 4;
    let data = rgba.data(0);
    let mut picture = Picture::new(width, height);
    for y in 0..height as usize {
        picture.data[y * row..(y + 1) * row].copy_from_slice(&data[y * stride..y * stride + row]);
    }
    picture
}
