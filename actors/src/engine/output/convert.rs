//! The one place where a composed frame becomes what an encoder takes:
//! scaled to the output size (`scaleTo`, thumbnails) and converted to the
//! codec's pixel format with the right colour matrix and range.
//!
//! Composed frames are planar YUV 4:2:0, BT.709, limited range. H.264 and
//! VP9 take that as it is: the composed frame itself is lent to FFmpeg,
//! which gives it back (to [`Spares`]) once the encoder has read it, or it
//! is scaled. GIF, PNG and BMP take RGB:
//! swscale is told the source is BT.709 limited, or it would assume
//! BT.601 and shift every colour. JPEG (JFIF) is BT.601 full range, a
//! different matrix, which swscale does not convert between YUV formats:
//! that goes through RGB.

use std::ffi::c_void;
use std::ops::{Deref, DerefMut};

use ffmpeg::ffi;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{self, Flags};
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::Frame;
use crate::engine::media::MediaError;

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

/// Where an encoder hands back the composed frames it has finished with,
/// for the compositor to draw later frames in; a frame sent after the
/// receiver has gone is dropped.
pub type Spares = std::sync::mpsc::Sender<Frame>;

enum Route {
    /// Same size, YUV 4:2:0: the composed frame is lent to the encoder.
    Lend,
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
            Pixel::YUV420P if same_size => Route::Lend,
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
        // A lent frame needs neither.
        let (src, dst) = match route {
            Route::Lend => (frame::Video::empty(), frame::Video::empty()),
            _ => (
                frame::Video::new(Pixel::YUV420P, width, height),
                frame::Video::new(format, out_width, out_height),
            ),
        };
        Ok(Converter {
            route,
            src,
            dst,
            width,
            height,
        })
    }

    /// The frame in the encoder's format and size. The composed frame goes
    /// back to `spares` once nothing reads it any more: at once when it was
    /// converted, when FFmpeg lets go of it when it was lent.
    pub fn convert(&mut self, frame: Frame, spares: &Spares) -> Result<Converted<'_>, MediaError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(MediaError::Encode(format!(
                "a {}×{} frame for a {}×{} output",
                frame.width, frame.height, self.width, self.height
            )));
        }
        check_planes(&frame)?;
        if matches!(self.route, Route::Lend) {
            return Ok(Converted::Lent(lend(frame, spares)?));
        }
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
            let stride = self.src.stride(i);
            let data = self.src.data_mut(i);
            for row in 0..h {
                data[row * stride..row * stride + w]
                    .copy_from_slice(&plane[row * w..(row + 1) * w]);
            }
        }
        let _ = spares.send(frame);
        match &mut self.route {
            Route::Lend => {}
            Route::Scale(ctx) => ctx.run(&self.src, &mut self.dst).map_err(error)?,
            Route::ViaRgb(to_rgb, rgb, to_dst) => {
                to_rgb.run(&self.src, rgb).map_err(error)?;
                to_dst.run(rgb, &mut self.dst).map_err(error)?;
            }
        }
        Ok(Converted::Own(&mut self.dst))
    }
}

/// A frame ready for the encoder, for as long as it is being encoded.
pub enum Converted<'a> {
    /// The composed frame's own planes (see [`lend`]).
    Lent(frame::Video),
    /// The converter's output frame, rewritten by the next conversion.
    Own(&'a mut frame::Video),
}

impl Deref for Converted<'_> {
    type Target = frame::Video;

    fn deref(&self) -> &frame::Video {
        match self {
            Converted::Lent(f) => f,
            Converted::Own(f) => f,
        }
    }
}

impl DerefMut for Converted<'_> {
    fn deref_mut(&mut self) -> &mut frame::Video {
        match self {
            Converted::Lent(f) => f,
            Converted::Own(f) => f,
        }
    }
}

fn check_planes(frame: &Frame) -> Result<(), MediaError> {
    let luma = frame.width as usize * frame.height as usize;
    let chroma = frame.chroma_width() as usize * frame.chroma_height() as usize;
    if frame.y.len() < luma || frame.u.len() < chroma || frame.v.len() < chroma {
        return Err(MediaError::Encode("a frame plane is too short".into()));
    }
    Ok(())
}

/// What a lent frame's FFmpeg buffer owns: the frame, and where it goes
/// when FFmpeg drops its last reference.
struct Lent {
    frame: Frame,
    home: Spares,
}

/// FFmpeg's free callback of a lent frame's buffer.
unsafe extern "C" fn give_back(opaque: *mut c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the `Box<Lent>` that `lend` leaked for this
    // buffer, and FFmpeg calls this once, when its last reference goes.
    let lent = unsafe { Box::from_raw(opaque.cast::<Lent>()) };
    let Lent { frame, home } = *lent;
    // The compositor may have finished: then the frame just goes.
    let _ = home.send(frame);
}

/// The composed frame as an FFmpeg frame over its own planes, read-only,
/// with no copy. The encoders copy what they keep (x264 and libvpx into
/// their look-ahead) before `send_frame` returns, so the frame usually
/// comes back as soon as the encoder has taken it.
fn lend(frame: Frame, home: &Spares) -> Result<frame::Video, MediaError> {
    let (width, height) = (frame.width, frame.height);
    let (luma, chroma) = (width as i32, frame.chroma_width() as i32);
    let mut lent = Box::new(Lent {
        frame,
        home: home.clone(),
    });
    let size = lent.frame.y.len();
    let planes = [
        lent.frame.y.as_mut_ptr(),
        lent.frame.u.as_mut_ptr(),
        lent.frame.v.as_mut_ptr(),
    ];
    let opaque = Box::into_raw(lent);
    let mut picture = frame::Video::empty();
    // SAFETY: the planes are on the heap, owned by the boxed frame that
    // only `give_back` frees, so they stay valid for as long as the buffer
    // (and any frame referencing it) does.
    unsafe {
        let buf = ffi::av_buffer_create(
            planes[0],
            size as _,
            Some(give_back),
            opaque.cast(),
            ffi::AV_BUFFER_FLAG_READONLY,
        );
        if buf.is_null() {
            drop(Box::from_raw(opaque));
            return Err(MediaError::Encode("no memory to lend a frame".into()));
        }
        let f = picture.as_mut_ptr();
        (*f).buf[0] = buf;
        for (i, (plane, stride)) in planes.into_iter().zip([luma, chroma, chroma]).enumerate() {
            (*f).data[i] = plane;
            (*f).linesize[i] = stride;
        }
        (*f).format = ffi::AVPixelFormat::AV_PIX_FMT_YUV420P as i32;
        (*f).width = width as i32;
        (*f).height = height as i32;
    }
    Ok(picture)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn red() -> Frame {
        Frame::filled(64, 36, [255, 0, 0, 255])
    }

    #[test]
    fn a_lent_frame_comes_back_once_ffmpeg_lets_go() {
        let mut convert = Converter::new(64, 36, Pixel::YUV420P, 64, 36).unwrap();
        let (spares, back) = std::sync::mpsc::channel();
        let converted = convert.convert(red(), &spares).unwrap();
        // The encoder reads the composed planes as they are.
        assert_eq!(converted.stride(0), 64);
        assert_eq!(&converted.data(0)[..64 * 36], &red().y[..]);
        assert_eq!(&converted.data(1)[..32 * 18], &red().u[..]);
        // An encoder keeping a reference keeps the frame.
        // SAFETY: a new reference to a valid frame, freed below.
        let mut kept = unsafe { ffi::av_frame_clone(converted.as_ptr()) };
        assert!(!kept.is_null());
        drop(converted);
        assert!(back.try_recv().is_err(), "still referenced");
        // SAFETY: `kept` is the clone made above, freed once.
        unsafe { ffi::av_frame_free(&mut kept) };
        assert_eq!(back.try_recv().expect("handed back"), red());
    }

    #[test]
    fn a_converted_frame_comes_back_at_once() {
        let mut convert = Converter::new(64, 36, Pixel::YUV420P, 32, 18).unwrap();
        let (spares, back) = std::sync::mpsc::channel();
        let converted = convert.convert(red(), &spares).unwrap();
        assert_eq!((converted.width(), converted.height()), (32, 18));
        assert_eq!(back.try_recv().expect("handed back"), red());
    }

    #[test]
    fn a_frame_of_another_size_is_refused() {
        let mut convert = Converter::new(32, 18, Pixel::YUV420P, 32, 18).unwrap();
        let (spares, _) = std::sync::mpsc::channel();
        assert!(convert.convert(red(), &spares).is_err());
    }
}
