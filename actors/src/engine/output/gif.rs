//! Animated GIF with the `gif` crate: each frame gets its own 256-colour
//! palette from NeuQuant (far better than one palette for a whole video
//! whose colours change, and it needs no second pass, so the file streams
//! while it renders); `repeat` writes the NETSCAPE loop extension (loop
//! forever) or leaves it out (play once). The encoder writes the file as
//! it goes; its bytes travel as packets that the packager passes on.
//!
//! FFmpeg's own gif encoder would need a palettegen/paletteuse filter
//! graph per frame for the same result; the crate does it in a few lines.

use bytes::Bytes;
use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use super::convert::{packed_rows, Converter, Spares};
use super::Encoded;
use super::{Encode, Frame, Packets, Stream, Streams};
use crate::engine::edit::Quality;
use crate::engine::media::MediaError;
use crate::engine::plan::{Plan, Rate};

fn gif_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Encode(format!("GIF: {e}"))
}

pub struct GifEncoder {
    encoder: Option<gif::Encoder<Vec<u8>>>,
    convert: Converter,
    width: u16,
    height: u16,
    rate: Rate,
    /// NeuQuant's sampling step: 1 is the best and slowest.
    speed: i32,
}

impl GifEncoder {
    pub fn new(plan: &Plan) -> Result<GifEncoder, MediaError> {
        let o = &plan.output;
        let (width, height) = (
            u16::try_from(o.width).map_err(gif_error)?,
            u16::try_from(o.height).map_err(gif_error)?,
        );
        let mut encoder = gif::Encoder::new(Vec::new(), width, height, &[]).map_err(gif_error)?;
        if o.repeat {
            encoder
                .set_repeat(gif::Repeat::Infinite)
                .map_err(gif_error)?;
        }
        Ok(GifEncoder {
            encoder: Some(encoder),
            convert: Converter::new(plan.width, plan.height, Pixel::RGB24, o.width, o.height)?,
            width,
            height,
            rate: plan.rate,
            speed: match o.quality {
                Quality::Low => 20,
                Quality::Medium => 10,
                Quality::High => 5,
            },
        })
    }

    /// The time of frame `index` in hundredths of a second, GIF's unit.
    fn centis(&self, index: i64) -> i64 {
        (index as f64 * 100.0 / self.rate.as_f64()).round() as i64
    }

    fn take(&mut self, index: i64) -> Packets {
        let Some(encoder) = self.encoder.as_mut() else {
            return Vec::new();
        };
        let bytes = std::mem::take(encoder.get_mut());
        packet(bytes, self.centis(index))
    }
}

fn packet(bytes: Vec<u8>, pts: i64) -> Packets {
    if bytes.is_empty() {
        return Vec::new();
    }
    vec![(
        Stream::Video,
        Encoded {
            pts,
            dts: pts,
            duration: 0,
            keyframe: true,
            data: Bytes::from(bytes),
        },
    )]
}

impl Encode for GifEncoder {
    fn streams(&self) -> Streams {
        Streams::default()
    }

    fn video(
        &mut self,
        frame: Frame,
        index: i64,
        _key: bool,
        spares: &Spares,
    ) -> Result<Packets, MediaError> {
        let rgb = packed_rows(&*self.convert.convert(frame, spares)?, 3);
        let mut gif_frame = gif::Frame::from_rgb_speed(self.width, self.height, &rgb, self.speed);
        // Rounded per frame from the start, so the total stays exact.
        gif_frame.delay = (self.centis(index + 1) - self.centis(index)).clamp(1, 65535) as u16;
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(gif_error("a frame after the end"));
        };
        encoder.write_frame(&gif_frame).map_err(gif_error)?;
        Ok(self.take(index))
    }

    fn audio(&mut self, _: &[f32]) -> Result<Packets, MediaError> {
        Ok(Vec::new())
    }

    fn finish(&mut self) -> Result<Packets, MediaError> {
        match self.encoder.take() {
            Some(encoder) => Ok(packet(encoder.into_inner().map_err(gif_error)?, 0)),
            None => Ok(Vec::new()),
        }
    }
}
