//! Reading sources with FFmpeg (ffmpeg-next): still pictures, video frames
//! at chosen times, and audio as 48 kHz stereo samples.

pub mod audio;
pub mod picture;
pub mod pixop;
pub mod probe;
mod tempo;
pub mod video;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use ffmpeg_next as ffmpeg;

use crate::engine::compose::text::TextError;

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

/// A font or an html asset that cannot be set is a source that cannot be
/// decoded, like any other.
impl From<TextError> for MediaError {
    fn from(e: TextError) -> MediaError {
        match e {
            TextError::Font { src, reason } => MediaError::Decode {
                src,
                reason: format!("not a usable font: {reason}"),
            },
            TextError::Html(e) => MediaError::Decode {
                src: "html asset".into(),
                reason: e.to_string(),
            },
        }
    }
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

/// The largest frame, in pixels, any decoder may allocate; see
/// [`set_max_pixels`].
static MAX_PIXELS: AtomicU64 = AtomicU64::new(4096 * 4096);

/// Bounds every decoder, including the ones FFmpeg runs while probing a
/// file: a frame larger than `pixels` is refused before its memory is
/// allocated, so a small file declaring a huge picture (a decompression
/// bomb) costs nothing. Set once at start from the configured source
/// limits; the sizes checked after opening give the clear message, this is
/// what holds when a stream lies or changes size midway.
pub fn set_max_pixels(pixels: u64) {
    MAX_PIXELS.store(pixels.max(1), Ordering::Relaxed);
}

fn max_pixels() -> i64 {
    i64::try_from(MAX_PIXELS.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

/// `ffmpeg::format::input`, with every stream's probing decoder bounded by
/// [`set_max_pixels`] (`input` offers no way to pass decoder options).
pub(crate) fn open_input(
    path: &Path,
    src: &str,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    open_input_with(path, src, false)
}

/// [`open_input`] for a file a client uploaded: only the file protocol,
/// so that a playlist or reference inside it (HLS, concat, a QuickTime
/// reference) cannot make the server fetch URLs or read other files
/// through other protocols, whatever FFmpeg's defaults.
pub(crate) fn open_uploaded_input(
    path: &Path,
    src: &str,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    open_input_with(path, src, true)
}

fn open_input_with(
    path: &Path,
    src: &str,
    file_only: bool,
) -> Result<ffmpeg::format::context::Input, MediaError> {
    init();
    let failed = |reason: String| MediaError::Open {
        src: src.to_owned(),
        reason,
    };
    let too_many = |w: i64, h: i64| {
        failed(format!(
            "its picture is {w}×{h}, more than the limit of {} pixels",
            max_pixels()
        ))
    };
    // A picture's header, read before FFmpeg probes (and so decodes) it.
    if let Ok(declared) = imagesize::size(path) {
        let (w, h) = (declared.width as i64, declared.height as i64);
        if w.saturating_mul(h) > max_pixels() {
            return Err(too_many(w, h));
        }
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| failed("the path holds a NUL byte".into()))?;
    let limit =
        CString::new(max_pixels().to_string()).map_err(|_| failed("bad pixel limit".into()))?;
    // SAFETY: the same calls as `ffmpeg::format::input`, plus one options
    // dictionary per stream, which FFmpeg reads and we free; the context is
    // closed on failure and owned by `Input` on success.
    unsafe {
        let mut ctx = std::ptr::null_mut();
        let mut open_options: *mut ffmpeg::ffi::AVDictionary = std::ptr::null_mut();
        if file_only {
            ffmpeg::ffi::av_dict_set(
                &mut open_options,
                c"protocol_whitelist".as_ptr(),
                c"file".as_ptr(),
                0,
            );
        }
        let r = ffmpeg::ffi::avformat_open_input(
            &mut ctx,
            c_path.as_ptr(),
            std::ptr::null(),
            if file_only {
                &mut open_options
            } else {
                std::ptr::null_mut()
            },
        );
        ffmpeg::ffi::av_dict_free(&mut open_options);
        if r < 0 {
            return Err(failed(ffmpeg::Error::from(r).to_string()));
        }
        let streams = (*ctx).nb_streams as usize;
        let mut options: Vec<*mut ffmpeg::ffi::AVDictionary> = vec![std::ptr::null_mut(); streams];
        for o in options.iter_mut() {
            ffmpeg::ffi::av_dict_set(o, c"max_pixels".as_ptr(), limit.as_ptr(), 0);
        }
        let r = ffmpeg::ffi::avformat_find_stream_info(
            ctx,
            if streams > 0 {
                options.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
        );
        for o in options.iter_mut() {
            ffmpeg::ffi::av_dict_free(o);
        }
        if r < 0 {
            ffmpeg::ffi::avformat_close_input(&mut ctx);
            return Err(failed(ffmpeg::Error::from(r).to_string()));
        }
        let input = ffmpeg::format::context::Input::wrap(ctx);
        // A stream that declares more pixels than any decoder may allocate
        // is named as such, rather than by the decoder's refusal later.
        for stream in input.streams() {
            let p = stream.parameters();
            let par = p.as_ptr();
            let (w, h) = (i64::from((*par).width), i64::from((*par).height));
            if w.saturating_mul(h) > max_pixels() {
                return Err(too_many(w, h));
            }
        }
        Ok(input)
    }
}

/// A decoder context for `parameters`, bounded by [`set_max_pixels`].
pub(crate) fn decoder_context(
    parameters: ffmpeg::codec::Parameters,
    src: &str,
) -> Result<ffmpeg::codec::context::Context, MediaError> {
    let mut context =
        ffmpeg::codec::context::Context::from_parameters(parameters).map_err(decode_error(src))?;
    // SAFETY: a plain field of a context we own, read when it is opened.
    unsafe {
        (*context.as_mut_ptr()).max_pixels = max_pixels();
    }
    Ok(context)
}

pub(crate) fn decode_error(src: &str) -> impl Fn(ffmpeg::Error) -> MediaError + '_ {
    move |e| MediaError::Decode {
        src: src.to_owned(),
        reason: e.to_string(),
    }
}

/// Corrupt packets in a row after which a source is given up on.
const MAX_CORRUPT_PACKETS: u32 = 1000;

/// The next packet of stream `stream`, or `None` at the end of the input.
///
/// ffmpeg-next's packet iterator retries `InvalidData` for ever, and some
/// demuxers return it again and again without moving on: a 38-byte input
/// found by fuzzing (fuzz/regressions/media/) spun a render at 100% CPU.
/// Corrupt packets in a row are bounded here; other errors end the input,
/// as the iterator does.
pub(crate) fn next_packet(
    input: &mut ffmpeg::format::context::Input,
    stream: usize,
    src: &str,
) -> Result<Option<ffmpeg::Packet>, MediaError> {
    while let Some(packet) = next_any_packet(input, src)? {
        if packet.stream() == stream {
            return Ok(Some(packet));
        }
    }
    Ok(None)
}

/// The next packet of any stream, or `None` at the end of the input, with
/// the bound on corrupt packets in a row of [`next_packet`].
pub(crate) fn next_any_packet(
    input: &mut ffmpeg::format::context::Input,
    src: &str,
) -> Result<Option<ffmpeg::Packet>, MediaError> {
    let mut corrupt = 0;
    loop {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(input) {
            Ok(()) => return Ok(Some(packet)),
            Err(ffmpeg::Error::Eof) => return Ok(None),
            Err(ffmpeg::Error::InvalidData) => {
                corrupt += 1;
                if corrupt >= MAX_CORRUPT_PACKETS {
                    return Err(MediaError::Decode {
                        src: src.to_owned(),
                        reason: format!("{corrupt} corrupt packets in a row"),
                    });
                }
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Seconds of a timestamp in `time_base`.
pub(crate) fn seconds(ts: i64, time_base: ffmpeg::Rational) -> f64 {
    ts as f64 * f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1))
}
