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
use crate::engine::compose::filter::Lut;
use crate::engine::compose::frame::{ColorMap, SourceColor};
use crate::engine::compose::{Frame, Picture};
use crate::engine::plan::Crop;

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
    /// The decoded frame on screen at the last asked time, cropped.
    current: Option<(f64, frame::Video)>,
    /// A frame as its layer draws it: `current`'s once `fresh`, an earlier
    /// one's otherwise (kept for its buffers).
    converted: Option<Frame>,
    fresh: bool,
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
            converted: None,
            fresh: false,
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
        self.advance(t, spec.crop)?;
        let Some((_, decoded)) = &self.current else {
            return Ok(None);
        };
        if !self.fresh {
            let out = self
                .converted
                .get_or_insert_with(|| Frame::filled(spec.width, spec.height, [0, 0, 0, 255]));
            convert_yuv(&mut self.scaler, &self.src, decoded, spec, out)?;
            self.fresh = true;
        }
        Ok(self.converted.as_ref())
    }

    /// Copies the frame on screen at source time `t` straight into `dst`
    /// when it already is what `spec` asks (its size, YUV 4:2:0 in the
    /// output's colours, no filter): a full-frame bottom layer then costs
    /// one copy rather than two. False, and `dst` untouched, otherwise.
    pub fn paint(&mut self, t: f64, spec: &Spec, dst: &mut Frame) -> Result<bool, MediaError> {
        if spec.filter.is_some()
            || dst.a.is_some()
            || (dst.width, dst.height) != (spec.width, spec.height)
        {
            return Ok(false);
        }
        self.advance(t, spec.crop)?;
        let Some((_, decoded)) = &self.current else {
            return Ok(false);
        };
        let as_is = decoded.format() == Pixel::YUV420P
            && (decoded.width(), decoded.height()) == (spec.width, spec.height)
            && source_color(decoded) == SourceColor::BT709;
        if as_is {
            copy_planes(decoded, dst);
        }
        Ok(as_is)
    }

    /// Decodes forward to the frame on screen at `t`. A frame that a later
    /// one replaces before `t` is never shown, and never converted.
    fn advance(&mut self, t: f64, crop: Crop) -> Result<(), MediaError> {
        loop {
            if self.pending.is_none() && !self.eof {
                self.pending = self.decode_next()?;
                self.eof = self.pending.is_none();
            }
            match self.pending.take() {
                Some((pts, mut frame)) if pts <= t + 1e-6 || self.current.is_none() => {
                    apply_crop(&mut frame, crop);
                    self.current = Some((pts, frame));
                    self.fresh = false;
                }
                not_yet => {
                    self.pending = not_yet;
                    return Ok(());
                }
            }
        }
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
        let rgba = scale(
            &mut self.scaler,
            &self.src,
            &frame,
            Pixel::RGBA,
            width,
            height,
        )?;
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
}

/// `frame` scaled to `width`×`height` in `format`, with the scaler kept in
/// `scaler` for as long as the sizes and formats stay the same.
fn scale(
    scaler: &mut Option<(scaling::Context, ScalerKey)>,
    src: &str,
    frame: &frame::Video,
    format: Pixel,
    width: u32,
    height: u32,
) -> Result<frame::Video, MediaError> {
    let key = (frame.format(), frame.width(), frame.height(), width, height);
    let ctx = match scaler {
        Some((ctx, k)) if *k == key => ctx,
        _ => {
            let ctx = scaling::Context::get(
                frame.format(),
                frame.width(),
                frame.height(),
                format,
                width,
                height,
                Flags::BICUBIC,
            )
            .map_err(decode_error(src))?;
            &mut scaler.insert((ctx, key)).0
        }
    };
    let mut out = frame::Video::empty();
    ctx.run(frame, &mut out).map_err(decode_error(src))?;
    Ok(out)
}

/// Converts a decoded frame into `out` as `spec` asks, reusing its buffers.
fn convert_yuv(
    scaler: &mut Option<(scaling::Context, ScalerKey)>,
    src: &str,
    frame: &frame::Video,
    spec: &Spec,
    out: &mut Frame,
) -> Result<(), MediaError> {
    let (w, h) = (spec.width, spec.height);
    let same = frame.format() == Pixel::YUV420P && (frame.width(), frame.height()) == (w, h);
    let scaled;
    let yuv = if same {
        frame
    } else {
        scaled = scale(scaler, src, frame, Pixel::YUV420P, w, h)?;
        &scaled
    };
    if (out.width, out.height) != (w, h) {
        *out = Frame::filled(w, h, [0, 0, 0, 255]);
    }
    copy_planes(yuv, out);
    if let Some(map) = ColorMap::to_output(source_color(frame)) {
        map.apply(out);
    }
    if let Some(lut) = &spec.filter {
        lut.apply(out);
    }
    Ok(())
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

/// Copies a decoded YUV 4:2:0 frame's planes into `dst`'s, of its size.
fn copy_planes(src: &frame::Video, dst: &mut Frame) {
    let (w, h) = (dst.width as usize, dst.height as usize);
    let (cw, ch) = (dst.chroma_width() as usize, dst.chroma_height() as usize);
    copy_plane(src, 0, &mut dst.y, w, h);
    copy_plane(src, 1, &mut dst.u, cw, ch);
    copy_plane(src, 2, &mut dst.v, cw, ch);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::edit::Filter;

    /// A 64×36 clip of FFmpeg's test pattern, 10 frames at 25 fps.
    fn clip(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
        let path = dir.join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=s=64x36:r=25:d=0.4")
            .args(["-pix_fmt", "yuv420p"])
            .args(extra)
            .arg(&path)
            .status()
            .expect("ffmpeg");
        assert!(status.success());
        path
    }

    fn spec(width: u32, height: u32, filter: Option<Filter>) -> Spec {
        Spec {
            width,
            height,
            crop: Crop::default(),
            filter: filter.map(|f| Box::new(Lut::new(f))),
        }
    }

    const BT709: [&str; 6] = [
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
    ];

    #[test]
    fn a_frame_painted_as_decoded_is_the_frame_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = clip(dir.path(), "hd.mp4", &BT709);
        let (mut painted, mut drawn) = (
            VideoReader::open(&path, "hd.mp4").unwrap(),
            VideoReader::open(&path, "hd.mp4").unwrap(),
        );
        let spec = spec(64, 36, None);
        let mut canvas = Frame::filled(64, 36, [0, 0, 0, 255]);
        // Every other frame of the source, and each one twice.
        for t in [0.0, 0.02, 0.08, 0.1, 0.1, 0.36, 1.0] {
            assert!(painted.paint(t, &spec, &mut canvas).unwrap(), "at {t}");
            let frame = drawn.frame_at(t, &spec).unwrap().expect("a frame");
            assert_eq!(&canvas, frame, "at {t}");
        }
    }

    #[test]
    fn a_frame_that_needs_converting_is_not_painted() {
        let dir = tempfile::tempdir().unwrap();
        let hd = clip(dir.path(), "hd.mp4", &BT709);
        // Untagged and small: taken as BT.601, which the output is not.
        let sd = clip(dir.path(), "sd.mp4", &[]);
        let mut canvas = Frame::filled(64, 36, [0, 0, 0, 255]);
        let untouched = canvas.clone();
        let paint = |path: &Path, spec: Spec, canvas: &mut Frame| {
            let mut reader = VideoReader::open(path, "clip").unwrap();
            let painted = reader.paint(0.0, &spec, canvas).unwrap();
            // Drawn the usual way instead, it is still there.
            assert!(reader.frame_at(0.0, &spec).unwrap().is_some());
            painted
        };
        assert!(
            !paint(&sd, spec(64, 36, None), &mut canvas),
            "other colours"
        );
        assert!(
            !paint(&hd, spec(64, 36, Some(Filter::Negative)), &mut canvas),
            "a filter"
        );
        assert!(!paint(&hd, spec(32, 18, None), &mut canvas), "another size");
        assert_eq!(canvas, untouched);
    }
}
