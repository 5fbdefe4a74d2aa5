//! WebM: VP9 (libvpx-vp9) and Opus (libopus), muxed by libavformat.
//!
//! VP9 runs in libvpx's realtime mode (`deadline=realtime`, no lookahead,
//! row multithreading) so that a render keeps pace with its viewers;
//! quality picks the speed step and a constrained-quality target with a
//! bit-rate ceiling that grows with the picture's size and rate.

use ffmpeg_next as ffmpeg;

use super::avmux::AvMuxer;
use super::codec::{AudioCodec, VideoCodec, VideoSettings};
use super::Codecs;
use crate::engine::edit::Quality;
use crate::engine::media::MediaError;
use crate::engine::mux::MuxError;
use crate::engine::plan::Plan;

pub fn encoder(plan: &Plan) -> Result<Codecs, MediaError> {
    let o = &plan.output;
    // (cpu-used, crf, bits per pixel per frame for the ceiling)
    let (speed, crf, bpp) = match o.quality {
        Quality::Low => (8, 42, 0.05),
        Quality::Medium => (8, 36, 0.08),
        Quality::High => (7, 30, 0.12),
    };
    let pixels_per_second = f64::from(o.width) * f64::from(o.height) * plan.rate.as_f64();
    let video = VideoCodec::open(VideoSettings {
        bit_rate: Some((pixels_per_second * bpp) as usize),
        options: vec![
            ("deadline", "realtime".into()),
            ("cpu-used", speed.to_string()),
            ("crf", crf.to_string()),
            ("lag-in-frames", "0".into()),
            ("row-mt", "1".into()),
            ("tile-columns", "2".into()),
        ],
        ..VideoSettings::new("libvpx-vp9", ffmpeg::format::Pixel::YUV420P, plan)
            .keyframe_every_second()
    })?;
    let audio = if plan.mute {
        None
    } else {
        Some(AudioCodec::open(
            "libopus",
            match o.quality {
                Quality::Low => 64_000,
                Quality::Medium => 96_000,
                Quality::High => 128_000,
            },
            false,
        )?)
    };
    Ok(Codecs::new(Some(video), audio))
}

pub fn packager() -> Result<AvMuxer, MuxError> {
    // Clusters of about a second stream as they close.
    AvMuxer::new("webm", vec![("cluster_time_limit", "1000".into())])
}
