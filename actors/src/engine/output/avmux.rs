//! Packaging with libavformat's own muxers (WebM, MP3) into memory, through
//! a custom `AVIOContext`, so that bytes are published as they are made.
//!
//! The output is declared seekable: the matroska muxer then seeks back at
//! the end to write the segment size, the duration and the seek head that
//! points at its cues, and the mp3 muxer to fill its Xing/LAME frame, so
//! the cached file is seekable and knows its length. Every write that
//! lands on bytes already produced comes out as a [`Piece::Patch`]; what
//! the muxers write before the end is a valid stream on its own (unknown
//! sizes, a void where the duration goes), so live viewers play it as it
//! comes.

use std::ffi::{c_int, c_void, CString};
use std::ptr;

use bytes::Bytes;
use ffmpeg::codec::packet::Mut as _;
use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::Encoded;
use super::{Package, Piece, Stream, StreamDesc, Streams};
use crate::engine::mux::MuxError;

/// The AVIO buffer: writes reach [`Sink`] in pieces of at most this.
const BUFFER: usize = 64 * 1024;

/// Where the muxer's bytes go, with the position it believes it is at.
#[derive(Default)]
struct Sink {
    pos: u64,
    len: u64,
    /// Appended bytes not yet taken.
    appended: Vec<u8>,
    patches: Vec<(u64, Vec<u8>)>,
}

impl Sink {
    fn write(&mut self, mut data: &[u8]) {
        if self.pos > self.len {
            // A seek past the end: the gap reads as zeros.
            let gap = (self.pos - self.len) as usize;
            self.appended.resize(self.appended.len() + gap, 0);
            self.len = self.pos;
        }
        if self.pos < self.len {
            let overlap = ((self.len - self.pos) as usize).min(data.len());
            let (old, rest) = data.split_at(overlap);
            // Bytes already taken are patched; the untaken tail is
            // changed in place.
            let taken = self.len - self.appended.len() as u64;
            let patched = (taken.saturating_sub(self.pos) as usize).min(overlap);
            if patched > 0 {
                self.patches.push((self.pos, old[..patched].to_vec()));
            }
            if patched < overlap {
                let at = (self.pos + patched as u64 - taken) as usize;
                self.appended[at..at + overlap - patched].copy_from_slice(&old[patched..]);
            }
            self.pos += overlap as u64;
            data = rest;
        }
        self.appended.extend_from_slice(data);
        self.pos += data.len() as u64;
        self.len = self.len.max(self.pos);
    }

    fn seek(&mut self, offset: i64, whence: c_int) -> i64 {
        let whence = whence & !ffi::AVSEEK_FORCE;
        let base = match whence {
            ffi::AVSEEK_SIZE => return self.len as i64,
            0 => 0,               // SEEK_SET
            1 => self.pos as i64, // SEEK_CUR
            2 => self.len as i64, // SEEK_END
            _ => return -i64::from(libc_einval()),
        };
        match base.checked_add(offset) {
            Some(p) if p >= 0 => {
                self.pos = p as u64;
                p
            }
            _ => -i64::from(libc_einval()),
        }
    }

    /// What was written since the last call: patches first (they touch
    /// bytes already published), then the new bytes.
    fn take(&mut self, first: bool, seconds: f64) -> Vec<Piece> {
        let mut out: Vec<Piece> = self
            .patches
            .drain(..)
            .map(|(offset, bytes)| Piece::Patch {
                offset,
                bytes: Bytes::from(bytes),
            })
            .collect();
        if !self.appended.is_empty() {
            let bytes = Bytes::from(std::mem::take(&mut self.appended));
            out.push(if first {
                Piece::Init(bytes)
            } else {
                Piece::Fragment(bytes, seconds)
            });
        }
        out
    }
}

fn libc_einval() -> c_int {
    ffmpeg::util::error::EINVAL
}

unsafe extern "C" fn write_packet(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    if opaque.is_null() || buf.is_null() || size < 0 {
        return -libc_einval();
    }
    // SAFETY: `opaque` is the boxed `Sink` of the `AvMuxer` that owns this
    // AVIO context and outlives it; FFmpeg hands `size` readable bytes.
    let sink = unsafe { &mut *opaque.cast::<Sink>() };
    let data = unsafe { std::slice::from_raw_parts(buf, size as usize) };
    sink.write(data);
    size
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    if opaque.is_null() {
        return -i64::from(libc_einval());
    }
    // SAFETY: as in `write_packet`.
    let sink = unsafe { &mut *opaque.cast::<Sink>() };
    sink.seek(offset, whence)
}

fn av_error(what: &str, code: c_int) -> MuxError {
    MuxError::Write(format!("{what}: {}", ffmpeg::Error::from(code)))
}

/// A libavformat muxer writing into memory.
pub struct AvMuxer {
    ctx: *mut ffi::AVFormatContext,
    sink: Box<Sink>,
    /// Per [`Stream`]: the index of its AVStream and its packets' time base.
    video: Option<(c_int, ffi::AVRational)>,
    audio: Option<(c_int, ffi::AVRational)>,
    options: Vec<(&'static str, String)>,
    started: bool,
    /// Seconds of media muxed since the last piece, for the fragments'
    /// durations.
    seconds: f64,
    last_end: f64,
}

// SAFETY: the format context and its AVIO context are used by one thread
// at a time (the muxer actor's), never shared.
unsafe impl Send for AvMuxer {}

impl AvMuxer {
    /// A muxer for FFmpeg's `format` ("webm", "mp3") with its private
    /// `options`.
    pub fn new(format: &str, options: Vec<(&'static str, String)>) -> Result<AvMuxer, MuxError> {
        crate::engine::media::init();
        let name = CString::new(format).map_err(|e| MuxError::Config(e.to_string()))?;
        let mut ctx = ptr::null_mut();
        // SAFETY: plain FFmpeg calls; every pointer is checked, and on
        // failure what was allocated is freed by `Drop` (ctx, then pb).
        unsafe {
            let r = ffi::avformat_alloc_output_context2(
                &mut ctx,
                ptr::null_mut(),
                name.as_ptr(),
                ptr::null(),
            );
            if r < 0 || ctx.is_null() {
                return Err(av_error("no muxer", r));
            }
        }
        let mut muxer = AvMuxer {
            ctx,
            sink: Box::default(),
            video: None,
            audio: None,
            options,
            started: false,
            seconds: 0.0,
            last_end: 0.0,
        };
        unsafe {
            let buffer = ffi::av_malloc(BUFFER).cast::<u8>();
            if buffer.is_null() {
                return Err(MuxError::Write("out of memory".into()));
            }
            let opaque = (&mut *muxer.sink as *mut Sink).cast::<c_void>();
            let pb = ffi::avio_alloc_context(
                buffer,
                BUFFER as c_int,
                1,
                opaque,
                None,
                Some(write_packet),
                Some(seek),
            );
            if pb.is_null() {
                let mut b = buffer.cast::<c_void>();
                ffi::av_freep((&mut b as *mut *mut c_void).cast());
                return Err(MuxError::Write("out of memory".into()));
            }
            (*pb).seekable = ffi::AVIO_SEEKABLE_NORMAL;
            (*muxer.ctx).pb = pb;
            (*muxer.ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO;
        }
        Ok(muxer)
    }

    fn add_stream(&mut self, desc: &StreamDesc) -> Result<(c_int, ffi::AVRational), MuxError> {
        // SAFETY: ctx is valid; the new stream belongs to it.
        unsafe {
            let st = ffi::avformat_new_stream(self.ctx, ptr::null());
            if st.is_null() {
                return Err(MuxError::Config("cannot add a stream".into()));
            }
            let r = ffi::avcodec_parameters_copy((*st).codecpar, desc.params.as_ptr());
            if r < 0 {
                return Err(av_error("stream parameters", r));
            }
            (*st).time_base = desc.time_base.into();
            Ok(((*st).index, desc.time_base.into()))
        }
    }

    fn take(&mut self) -> Result<Vec<Piece>, MuxError> {
        // SAFETY: pb is the context's, valid until drop.
        unsafe { ffi::avio_flush((*self.ctx).pb) };
        let pieces = self.sink.take(!self.started, self.seconds);
        self.started = true;
        self.seconds = 0.0;
        Ok(pieces)
    }
}

impl Package for AvMuxer {
    fn start(&mut self, streams: &Streams) -> Result<Vec<Piece>, MuxError> {
        if let Some(v) = &streams.video {
            self.video = Some(self.add_stream(v)?);
        }
        if let Some(a) = &streams.audio {
            self.audio = Some(self.add_stream(a)?);
        }
        let mut dict = ffmpeg::Dictionary::new();
        for (k, v) in &self.options {
            dict.set(k, v);
        }
        // SAFETY: ctx is valid; the dictionary is ours to give and FFmpeg
        // hands back what it did not use.
        unsafe {
            let mut raw = dict.disown();
            let r = ffi::avformat_write_header(self.ctx, &mut raw);
            ffmpeg::Dictionary::own(raw);
            if r < 0 {
                return Err(av_error("cannot write the header", r));
            }
        }
        self.take()
    }

    fn packets(&mut self, packets: Vec<(Stream, Encoded)>) -> Result<Vec<Piece>, MuxError> {
        for (stream, p) in packets {
            let Some((index, tb)) = (match stream {
                Stream::Video => self.video,
                Stream::Audio => self.audio,
            }) else {
                continue;
            };
            let end = (p.pts + p.duration) as f64 * f64::from(tb.num) / f64::from(tb.den.max(1));
            if stream == Stream::Video || self.video.is_none() {
                self.seconds += (end - self.last_end).max(0.0);
                self.last_end = self.last_end.max(end);
            }
            let mut packet = ffmpeg::Packet::copy(&p.data);
            packet.set_pts(Some(p.pts));
            packet.set_dts(Some(p.dts));
            packet.set_duration(p.duration);
            if p.keyframe {
                packet.set_flags(ffmpeg::codec::packet::Flags::KEY);
            }
            packet.set_stream(index as usize);
            // SAFETY: ctx and the packet are valid; the muxer takes the
            // packet's reference and leaves it blank.
            unsafe {
                let st = *(*self.ctx).streams.add(index as usize);
                ffi::av_packet_rescale_ts(packet.as_mut_ptr(), tb, (*st).time_base);
                let r = ffi::av_interleaved_write_frame(self.ctx, packet.as_mut_ptr());
                if r < 0 {
                    return Err(av_error("cannot write a packet", r));
                }
            }
        }
        self.take()
    }

    fn finish(&mut self) -> Result<Vec<Piece>, MuxError> {
        // SAFETY: ctx is valid and its header was written.
        unsafe {
            let r = ffi::av_write_trailer(self.ctx);
            if r < 0 {
                return Err(av_error("cannot finish the file", r));
            }
        }
        self.take()
    }
}

impl Drop for AvMuxer {
    fn drop(&mut self) {
        // SAFETY: the AVIO context (and its buffer, which FFmpeg may have
        // replaced) was made in `new` and is freed once, then the format
        // context, which does not own a custom pb.
        unsafe {
            if self.ctx.is_null() {
                return;
            }
            let mut pb = (*self.ctx).pb;
            if !pb.is_null() {
                ffi::av_freep((&mut (*pb).buffer as *mut *mut u8).cast());
                ffi::avio_context_free(&mut pb);
                (*self.ctx).pb = ptr::null_mut();
            }
            ffi::avformat_free_context(self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sink;
    use crate::engine::output::Piece;

    #[test]
    fn writes_behind_the_end_become_patches_once_taken() {
        let mut sink = Sink::default();
        sink.write(b"abcdef");
        // Not taken yet: the tail is changed in place.
        sink.seek(1, 0);
        sink.write(b"B");
        let pieces = sink.take(true, 0.0);
        assert!(matches!(&pieces[..], [Piece::Init(b)] if &b[..] == b"aBcdef"));
        sink.seek(0, 2);
        sink.write(b"gh");
        sink.seek(2, 0);
        sink.write(b"CD");
        // Straddling the end: a patch and an append.
        sink.seek(7, 0);
        sink.write(b"HIJ");
        // Straddling what was taken and what was not.
        sink.seek(5, 0);
        sink.write(b"FG");
        let pieces = sink.take(false, 1.0);
        assert!(
            matches!(&pieces[..], [Piece::Patch { offset: 2, bytes }, Piece::Patch { offset: 5, bytes: f }, Piece::Fragment(tail, _)]
                if &bytes[..] == b"CD" && &f[..] == b"F" && &tail[..] == b"GHIJ"),
            "{pieces:?}"
        );
        assert_eq!(sink.seek(0, ffmpeg_next::ffi::AVSEEK_SIZE), 10);
    }
}
