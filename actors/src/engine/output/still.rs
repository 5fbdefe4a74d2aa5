//! Still images, one frame each: JPEG (FFmpeg's mjpeg encoder, JFIF's
//! BT.601 full range, a fixed quantiser by quality), PNG (RGB, lossless)
//! and BMP (24-bit). The encoder's one packet is the whole file.

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use super::codec::{VideoCodec, VideoSettings};
use super::Codecs;
use crate::engine::edit::{Format, Quality};
use crate::engine::media::MediaError;
use crate::engine::plan::Plan;

pub fn encoder(plan: &Plan) -> Result<Codecs, MediaError> {
    let o = &plan.output;
    let (codec, pixel, qscale) = match o.format {
        Format::Png => ("png", Pixel::RGB24, None),
        Format::Bmp => ("bmp", Pixel::BGR24, None),
        _ => (
            "mjpeg",
            Pixel::YUVJ420P,
            Some(match o.quality {
                Quality::Low => 8,
                Quality::Medium => 4,
                Quality::High => 2,
            }),
        ),
    };
    let video = VideoCodec::open(VideoSettings {
        qscale,
        ..VideoSettings::new(codec, pixel, plan)
    })?;
    Ok(Codecs::new(Some(video), None))
}
