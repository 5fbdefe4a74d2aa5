//! Reading sources with FFmpeg (ffmpeg-next): still pictures, video frames
//! at chosen times, and audio as 48 kHz stereo samples.

pub mod audio;
pub mod picture;
mod tempo;
pub mod video;

use std::path::Path;
use std::sync::Once;

use ffmpeg_next as ffmpeg;

/// Sample rate and channel count of every mix.
pub const SAMPLE_RATE: u32 = 48_000;
pub const CHANNELS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{src}: cannot be opened as media: {reason}")]
    Open { src: String, reason: String },
    #[error("{src}: has no {kind} stream")]
    NoStream { src: String, kind: &'static str },
    #[error("{src}: cannot be decoded: {reason}")]
    Decode { src: String, reason: String },
    #[error("{src}: {width}×{height} is larger than the limit of {max_width}×{max_height}")]
    TooLarge {
        src: String,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// FFmpeg's global set-up, once per process; its log is kept to errors so
/// that hostile inputs cannot flood the server's output.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration cannot fail in FFmpeg ≥ 4; the result only mirrors
        // the old C API.
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    });
}

pub(crate) fn open_input(
    path: &Path,
    src: &str,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    init();
    ffmpeg::format::input(path).map_err(|e| MediaError::Open {
        src: src.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode_error(src: &str) -> impl Fn(ffmpeg::Error) -> MediaError + '_ {
    move |e| MediaError::Decode {
        src: src.to_owned(),
        reason: e.to_string(),
    }
}

/// Seconds of a timestamp in `time_base`.
pub(crate) fn seconds(ts: i64, time_base: ffmpeg::Rational) -> f64 {
    ts as f64 * f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1))
}
