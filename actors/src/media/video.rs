//! Video frames by time: decode forward, keep the frame on screen at t.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{self, Flags};
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::{decode_error, open_input, seconds, MediaError};
use crate::compose::Picture;

pub struct VideoReader {
    src: String,
    input: ffmpeg::format::context::Input,
    stream: usize,
    time_base: ffmpeg::Rational,
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(scaling::Context, u32, u32)>,
    /// The frame on screen at the last asked time, converted.
    current: Option<(f64, Picture)>,
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

    /// The frame on screen at source time `t`, at `width`×`height`; the
    /// last frame stays on screen past the end of the stream.
    pub fn frame_at(
        &mut self,
        t: f64,
        width: u32,
        height: u32,
    ) -> Result<Option<&Picture>, MediaError> {
        loop {
            if self.pending.is_none() && !self.eof {
                self.pending = self.decode_next()?;
                if self.pending.is_none() {
                    self.eof = true;
                }
            }
            match &self.pending {
                Some((pts, _)) if *pts <= t + 1e-6 || self.current.is_none() => {
                    let Some((pts, frame)) = self.pending.take() else {
                        break;
                    };
                    let picture = self.convert(&frame, width, height)?;
                    self.current = Some((pts, picture));
                }
                _ => break,
            }
        }
        Ok(self.current.as_ref().map(|(_, p)| p))
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

    fn convert(
        &mut self,
        frame: &frame::Video,
        width: u32,
        height: u32,
    ) -> Result<Picture, MediaError> {
        let stale = match &self.scaler {
            Some((_, w, h)) => (*w, *h) != (width, height),
            None => true,
        };
        if stale {
            let ctx = scaling::Context::get(
                frame.format(),
                frame.width(),
                frame.height(),
                Pixel::RGBA,
                width,
                height,
                Flags::BILINEAR,
            )
            .map_err(decode_error(&self.src))?;
            self.scaler = Some((ctx, width, height));
        }
        let Some((scaler, _, _)) = self.scaler.as_mut() else {
            return Err(MediaError::Decode {
                src: self.src.clone(),
                reason: "no scaler".into(),
            });
        };
        let mut rgba = frame::Video::empty();
        scaler
            .run(frame, &mut rgba)
            .map_err(decode_error(&self.src))?;
        Ok(packed(&rgba, width, height))
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
