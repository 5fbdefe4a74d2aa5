//! Audio as interleaved 48 kHz stereo f32, read in order.

use std::collections::VecDeque;
use std::path::Path;

use ffmpeg::format::sample::{Sample, Type};
use ffmpeg::software::resampling;
use ffmpeg::util::frame;
use ffmpeg::ChannelLayout;
use ffmpeg_next as ffmpeg;

use super::tempo::Tempo;
use super::{decode_error, open_input, seconds, MediaError, CHANNELS, SAMPLE_RATE};

pub struct AudioReader {
    src: String,
    input: ffmpeg::format::context::Input,
    stream: usize,
    time_base: ffmpeg::Rational,
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<resampling::Context>,
    /// Decoded samples not yet read, interleaved.
    fifo: VecDeque<f32>,
    /// Samples still to drop to reach the seek target exactly.
    skip_until: f64,
    /// A speed other than 1, pitch kept.
    tempo: Option<Tempo>,
    /// Samples fed to the tempo filter so far (its timestamps).
    tempo_pts: i64,
    eof: bool,
}

impl AudioReader {
    /// The audio of `path` played at `speed` (> 0), or `None` when it has
    /// none (a silent video).
    pub fn open(path: &Path, src: &str, speed: f64) -> Result<Option<AudioReader>, MediaError> {
        let input = open_input(path, src)?;
        let Some(stream) = input.streams().best(ffmpeg::media::Type::Audio) else {
            return Ok(None);
        };
        let index = stream.index();
        let time_base = stream.time_base();
        let context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(decode_error(src))?;
        let decoder = context.decoder().audio().map_err(decode_error(src))?;
        Ok(Some(AudioReader {
            src: src.to_owned(),
            input,
            stream: index,
            time_base,
            decoder,
            resampler: None,
            fifo: VecDeque::new(),
            skip_until: 0.0,
            tempo: if (speed - 1.0).abs() > 1e-9 {
                Some(Tempo::new(speed, src)?)
            } else {
                None
            },
            tempo_pts: 0,
            eof: false,
        }))
    }

    pub fn seek(&mut self, t: f64) -> Result<(), MediaError> {
        if t > 0.0 {
            let ts = (t * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
            self.input.seek(ts, ..ts).map_err(decode_error(&self.src))?;
            self.decoder.flush();
            self.skip_until = t;
        }
        Ok(())
    }

    /// Fills `out` (interleaved stereo) with the next samples; returns how
    /// many values were written, fewer than asked only at the end.
    pub fn read(&mut self, out: &mut [f32]) -> Result<usize, MediaError> {
        while self.fifo.len() < out.len() && !self.eof {
            self.decode_more()?;
        }
        let n = out.len().min(self.fifo.len());
        for (o, s) in out.iter_mut().zip(self.fifo.drain(..n)) {
            *o = s;
        }
        Ok(n)
    }

    fn decode_more(&mut self) -> Result<(), MediaError> {
        let mut frame = frame::Audio::empty();
        match self.decoder.receive_frame(&mut frame) {
            Ok(()) => return self.push(&mut frame),
            Err(ffmpeg::Error::Eof) => {
                self.eof = true;
                if let Some(tempo) = self.tempo.as_mut() {
                    let mut out = Vec::new();
                    tempo.run(None, self.tempo_pts, &mut out)?;
                    self.fifo.extend(out);
                }
                return Ok(());
            }
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {}
            Err(e) => return Err(decode_error(&self.src)(e)),
        }
        if let Some(packet) = super::next_packet(&mut self.input, self.stream, &self.src)? {
            return self
                .decoder
                .send_packet(&packet)
                .map_err(decode_error(&self.src));
        }
        match self.decoder.send_eof() {
            Ok(()) | Err(ffmpeg::Error::Eof) => Ok(()),
            Err(e) => Err(decode_error(&self.src)(e)),
        }
    }

    fn push(&mut self, frame: &mut frame::Audio) -> Result<(), MediaError> {
        // Some files (WAV, raw PCM) leave the layout unset; the resampler
        // compares every frame with the layout it was made for, so the
        // frame gets the default layout of its channel count.
        if frame.channel_layout().channels() == 0 {
            frame.set_channel_layout(ChannelLayout::default(i32::from(frame.channels())));
        }
        if self.resampler.is_none() {
            let layout = frame.channel_layout();
            let resampler = resampling::Context::get(
                frame.format(),
                layout,
                frame.rate(),
                Sample::F32(Type::Packed),
                ChannelLayout::STEREO,
                SAMPLE_RATE,
            )
            .map_err(decode_error(&self.src))?;
            self.resampler = Some(resampler);
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let mut out = frame::Audio::empty();
        resampler
            .run(frame, &mut out)
            .map_err(decode_error(&self.src))?;
        let values = out.samples() * CHANNELS;
        let data = out.data(0);
        let samples: &[f32] = bytemuck_f32(&data[..(values * 4).min(data.len())]);
        // Drop what lies before the seek target, to the sample.
        let start = frame
            .timestamp()
            .or(frame.pts())
            .map(|ts| seconds(ts, self.time_base));
        let mut skip = 0;
        if let Some(start) = start {
            if start < self.skip_until {
                skip = (((self.skip_until - start) * f64::from(SAMPLE_RATE)) as usize * CHANNELS)
                    .min(samples.len());
            }
        }
        let kept = &samples[skip..];
        match self.tempo.as_mut() {
            Some(tempo) if !kept.is_empty() => {
                let mut out = Vec::new();
                tempo.run(Some(kept), self.tempo_pts, &mut out)?;
                self.tempo_pts += (kept.len() / CHANNELS) as i64;
                self.fifo.extend(out);
            }
            Some(_) => {}
            None => self.fifo.extend(kept),
        }
        Ok(())
    }
}

/// Reads little-endian f32 values out of bytes (FFmpeg's packed float).
fn bytemuck_f32(bytes: &[u8]) -> &[f32] {
    // SAFETY: FFmpeg's sample buffers are allocated with at least 16-byte
    // alignment, and only whole 4-byte values are viewed.
    let (head, body, _) = unsafe { bytes.align_to::<f32>() };
    if head.is_empty() {
        body
    } else {
        &[]
    }
}
