//! The one place where a composed frame becomes what an encoder takes:
//! scaled to the output size (`scaleTo`, thumbnails) and converted to the
//! codec's pixel format with the right colour matrix and range.
//!
//! Composed frames are planar YUV 4:2:0, BT.709, limited range. H.264 and
//! VP9 take that as it is (a copy, or a scale). GIF, PNG and BMP take RGB:
//! swscale is told the source is BT.709 limited, or it would assume
//! BT.601 and shift every colour. JPEG (JFIF) is BT.601 full range, a
//! different matrix, which swscale does not convert between YUV formats:
//! that goes through RGB.

use ffmpeg::ffi;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{self, Flags};
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::Frame;
use crate::media::MediaError;

fn error(e: ffmpeg::Error) -> MediaError {
    MediaError::Encode(format!("cannot convert a frame: {e}"))
}

/// Tells swscale the source is BT.709 limited range (and the destination
/// full range when it is RGB or JPEG YUV).
fn bt709_source(ctx: &mut scaling::Context, dst_full: bool) {
    // SAFETY: the context is valid; the coefficient tables are FFmpeg's
    // static ones.
    unsafe {
        let src = ffi::sws_getCoefficients(ffi::SWS_CS_ITU709);
        let dst = ffi::sws_getCoefficients(ffi::SWS_CS_ITU601);
        ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            src,
            0,
            dst,
            i32::from(dst_full),
            0,
            1 << 16,
            1 << 16,
        );
    }
}

enum Route {
    /// Same size, YUV 4:2:0: the planes are copied.
    Copy,
    /// One swscale pass.
    Scale(scaling::Context),
    /// To RGB (with scaling), then to the destination.
    ViaRgb(scaling::Context, frame::Video, scaling::Context),
}

pub struct Converter {
    route: Route,
    src: frame::Video,
    dst: frame::Video,
    width: u32,
    height: u32,
}

// SAFETY: the swscale contexts and frames are owned by the converter and
// used by one thread at a time; swscale has no thread affinity.
unsafe impl Send for Converter {}

impl Converter {
    /// Converts `width`×`height` composed frames to `format` at
    /// `out_width`×`out_height`.
    pub fn new(
        width: u32,
        height: u32,
        format: Pixel,
        out_width: u32,
        out_height: u32,
    ) -> Result<Converter, MediaError> {
        let same_size = (width, height) == (out_width, out_height);
        let get = |sf, sw, sh, df| {
            scaling::Context::get(sf, sw, sh, df, out_width, out_height, Flags::BICUBIC)
                .map_err(error)
        };
        let route = match format {
            Pixel::YUV420P if same_size => Route::Copy,
            Pixel::YUV420P => Route::Scale(get(Pixel::YUV420P, width, height, Pixel::YUV420P)?),
            Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P => {
                let mut to_rgb = get(Pixel::YUV420P, width, height, Pixel::RGB24)?;
                bt709_source(&mut to_rgb, true);
                let to_dst = scaling::Context::get(
                    Pixel::RGB24,
                    out_width,
                    out_height,
                    format,
                    out_width,
                    out_height,
                    Flags::BICUBIC | Flags::FULL_CHR_H_INT | Flags::ACCURATE_RND,
                )
                .map_err(error)?;
                Route::ViaRgb(
                    to_rgb,
                    frame::Video::new(Pixel::RGB24, out_width, out_height),
                    to_dst,
                )
            }
            _ => {
                let mut ctx = scaling::Context::get(
                    Pixel::YUV420P,
                    width,
                    height,
                    format,
                    out_width,
                    out_height,
                    Flags::BICUBIC | Flags::FULL_CHR_H_INT | Flags::ACCURATE_RND,
                )
                .map_err(error)?;
                bt709_source(&mut ctx, true);
                Route::Scale(ctx)
            }
        };
        Ok(Converter {
            route,
            src: frame::Video::new(Pixel::YUV420P, width, height),
            dst: frame::Video::new(format, out_width, out_height),
            width,
            height,
        })
    }

    /// The frame in the encoder's format and size.
    pub fn convert(&mut self, frame: &Frame) -> Result<&mut frame::Video, MediaError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::Encode(format!(
                "a {}×{} frame for a {}×{} output",
                frame.width, frame.height, self.width, self.height
            )));
        }
        let target = match self.route {
            Route::Copy => &mut self.dst,
            _ => &mut self.src,
        };
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        for (i, (plane, w, h)) in [
            (&frame.y, self.width, self.height),
            (&frame.u, cw, ch),
            (&frame.v, cw, ch),
        ]
        .into_iter()
        .enumerate()
        {
            let (w, h) = (w as usize, h as usize);
            if plane.len() < w * h {
                return Err(MediaError::Encode("a frame plane is too short".into()));
            }
            let stride = target.stride(i);
            let data = target.data_mut(i);
            for row in 0..h {
                data[row * stride..row * stride + w]
                    .copy_from_slice(&plane[row * w..(row + 1) * w]);
            }
        }
        match &mut self.route {
            Route::Copy => {}
            Route::Scale(ctx) => ctx.run(&self.src, &mut self.dst).map_err(error)?,
            Route::ViaRgb(to_rgb, rgb, to_dst) => {
                to_rgb.run(&self.src, rgb).map_err(error)?;
                to_dst.run(rgb, &mut self.dst).map_err(error)?;
            }
        }
        Ok(&mut self.dst)
    }
}

/// The rows of a packed frame (RGB24, BGR24) without their padding.
pub fn packed_rows(frame: &frame::Video, bytes_per_pixel: usize) -> Vec<u8> {
    let (w, h) = (
        frame.width() as usize * bytes_per_pixel,
        frame.height() as usize,
    );
    let stride = frame.stride(0);
    let data = frame.data(0);
    let mut out = Vec::with_capacity(w * h);
    for row in 0..h {
        out.extend_from_slice(&data[row * stride..row * stride + w]);
    }
    out
}
