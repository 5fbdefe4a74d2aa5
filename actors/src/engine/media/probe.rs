//! Media facts as FFprobe reports them (`-show_streams -show_format`), for
//! the Shotstack API's probe: read from the container and the streams'
//! parameters, without decoding a frame.

use std::path::Path;

use ffmpeg::format::context::Input;
use ffmpeg::media::Type;
use ffmpeg::Rational;
use ffmpeg_next as ffmpeg;

use super::{open_input, seconds, MediaError};

/// One stream; `None` where FFmpeg does not know the value or the kind of
/// stream has none (so that it is left out rather than sent as zero).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFacts {
    pub index: usize,
    /// `video`, `audio`, `subtitle`, `data` or `attachment`.
    pub codec_type: Option<&'static str>,
    pub codec_name: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// FFprobe's rationals, such as `25/1`.
    pub r_frame_rate: Option<String>,
    pub avg_frame_rate: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub duration: Option<f64>,
    pub bit_rate: Option<i64>,
    /// Degrees, as FFprobe's `tags.rotate` (from the display matrix).
    pub rotate: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormatFacts {
    pub nb_streams: u32,
    /// FFmpeg's demuxer names, such as `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    pub duration: Option<f64>,
    pub size: Option<u64>,
    pub bit_rate: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub streams: Vec<StreamFacts>,
    pub format: FormatFacts,
}

/// What FFmpeg reads of the file at `path` (`src` names it in errors).
/// Bounded like every source: a stream declaring a picture larger than the
/// decoders' pixel limit is refused (see `set_max_pixels`).
pub fn probe(path: &Path, src: &str) -> Result<Facts, MediaError> {
    let input = open_input(path, src)?;
    let streams = input.streams().map(|s| stream_facts(&s)).collect();
    let size = std::fs::metadata(path).ok().map(|m| m.len());
    Ok(Facts {
        streams,
        format: format_facts(&input, size),
    })
}

fn positive<T: PartialOrd + Default>(v: T) -> Option<T> {
    (v > T::default()).then_some(v)
}

fn rational(r: Rational) -> Option<String> {
    (r.numerator() > 0 && r.denominator() > 0)
        .then(|| format!("{}/{}", r.numerator(), r.denominator()))
}

fn stream_facts(stream: &ffmpeg::format::stream::Stream) -> StreamFacts {
    let parameters = stream.parameters();
    let medium = parameters.medium();
    let codec_type = match medium {
        Type::Video => Some("video"),
        Type::Audio => Some("audio"),
        Type::Subtitle => Some("subtitle"),
        Type::Data => Some("data"),
        Type::Attachment => Some("attachment"),
        Type::Unknown => None,
    };
    let id = parameters.id();
    let codec_name = (id != ffmpeg::codec::Id::None).then(|| id.name());
    // SAFETY: plain fields of the stream's parameters, which the input
    // owns and which live as long as `stream`.
    let (width, height, sample_rate, channels) = unsafe {
        let par = parameters.as_ptr();
        (
            positive((*par).width).and_then(|w| u32::try_from(w).ok()),
            positive((*par).height).and_then(|h| u32::try_from(h).ok()),
            positive((*par).sample_rate).and_then(|r| u32::try_from(r).ok()),
            positive((*par).ch_layout.nb_channels).and_then(|c| u32::try_from(c).ok()),
        )
    };
    let video = medium == Type::Video;
    let duration = (stream.duration() > 0).then(|| seconds(stream.duration(), stream.time_base()));
    StreamFacts {
        index: stream.index(),
        codec_type,
        codec_name,
        width: if video { width } else { None },
        height: if video { height } else { None },
        r_frame_rate: if video { rational(stream.rate()) } else { None },
        avg_frame_rate: if video {
            rational(stream.avg_frame_rate())
        } else {
            None
        },
        sample_rate: if medium == Type::Audio {
            sample_rate
        } else {
            None
        },
        channels: if medium == Type::Audio {
            channels
        } else {
            None
        },
        duration,
        bit_rate: positive(parameters.bit_rate()),
        rotate: if video { rotation(stream) } else { None },
    }
}

/// The rotation a player applies, in FFprobe's convention (the tag is the
/// display matrix's angle negated, in 0..360); none when upright.
fn rotation(stream: &ffmpeg::format::stream::Stream) -> Option<i64> {
    if let Some(tag) = stream.metadata().get("rotate") {
        return tag.trim().parse().ok().filter(|r| *r != 0);
    }
    let matrix = stream
        .side_data()
        .find(|d| d.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)?;
    let data = matrix.data();
    if data.len() < 9 * 4 {
        return None;
    }
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        *v = i32::from_ne_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]);
    }
    // SAFETY: reads the nine values of `m`, which it outlives.
    let angle = unsafe { ffmpeg::ffi::av_display_rotation_get(m.as_ptr()) };
    if !angle.is_finite() {
        return None;
    }
    let degrees = (-angle).round() as i64;
    Some(degrees.rem_euclid(360)).filter(|r| *r != 0)
}

fn format_facts(input: &Input, size: Option<u64>) -> FormatFacts {
    // The container's duration is in AV_TIME_BASE units (microseconds).
    let duration = (input.duration() > 0).then(|| input.duration() as f64 / 1_000_000.0);
    FormatFacts {
        nb_streams: input.nb_streams(),
        format_name: input.format().name().to_owned(),
        duration,
        size,
        bit_rate: positive(input.bit_rate()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_media_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"this is not a video at all, just some text").unwrap();
        let err = probe(&path, "x").unwrap_err();
        assert!(matches!(err, MediaError::Open { .. }), "{err}");
    }
}
