//! Playback speed for sound with its pitch kept: FFmpeg's `atempo`
//! filter (a WSOLA time-stretcher) on the reader's 48 kHz stereo samples.
//! One `atempo` stage covers 0.5–100×, so slower speeds chain stages.

use ffmpeg::format::sample::{Sample, Type};
use ffmpeg::util::frame;
use ffmpeg::ChannelLayout;
use ffmpeg_next as ffmpeg;

use super::{MediaError, CHANNELS, SAMPLE_RATE};

pub struct Tempo {
    graph: ffmpeg::filter::Graph,
    src: String,
}

fn error(src: &str) -> impl Fn(ffmpeg::Error) -> MediaError + '_ {
    move |e| MediaError::Decode {
        src: src.to_owned(),
        reason: format!("speed change: {e}"),
    }
}

/// The `atempo` chain for `speed` (> 0).
fn chain(speed: f64) -> String {
    let mut stages = Vec::new();
    let mut left = speed;
    while left < 0.5 {
        stages.push("atempo=0.5".to_owned());
        left /= 0.5;
    }
    stages.push(format!("atempo={left:.6}"));
    stages.join(",")
}

impl Tempo {
    pub fn new(speed: f64, src: &str) -> Result<Tempo, MediaError> {
        let mut graph = ffmpeg::filter::Graph::new();
        let buffer = ffmpeg::filter::find("abuffer").ok_or_else(|| MediaError::Decode {
            src: src.to_owned(),
            reason: "this FFmpeg has no abuffer filter".into(),
        })?;
        let sink = ffmpeg::filter::find("abuffersink").ok_or_else(|| MediaError::Decode {
            src: src.to_owned(),
            reason: "this FFmpeg has no abuffersink filter".into(),
        })?;
        let args = format!(
            "time_base=1/{SAMPLE_RATE}:sample_rate={SAMPLE_RATE}:sample_fmt=flt:channel_layout=stereo"
        );
        graph.add(&buffer, "in", &args).map_err(error(src))?;
        graph.add(&sink, "out", "").map_err(error(src))?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&chain(speed)))
            .map_err(error(src))?;
        graph.validate().map_err(error(src))?;
        Ok(Tempo {
            graph,
            src: src.to_owned(),
        })
    }

    /// Feeds interleaved samples (or, with `None`, the end) and appends
    /// whatever the filter has ready to `out`.
    pub fn run(
        &mut self,
        samples: Option<&[f32]>,
        pts: i64,
        out: &mut Vec<f32>,
    ) -> Result<(), MediaError> {
        let src = self.src.clone();
        {
            let Some(mut input) = self.graph.get("in") else {
                return Err(error(&src)(ffmpeg::Error::Bug));
            };
            match samples {
                Some(samples) => {
                    let n = samples.len() / CHANNELS;
                    let mut f =
                        frame::Audio::new(Sample::F32(Type::Packed), n, ChannelLayout::STEREO);
                    f.set_rate(SAMPLE_RATE);
                    f.set_pts(Some(pts));
                    let data = f.data_mut(0);
                    for (chunk, s) in data.chunks_exact_mut(4).zip(samples) {
                        chunk.copy_from_slice(&s.to_ne_bytes());
                    }
                    input.source().add(&f).map_err(error(&src))?;
                }
                None => input.source().flush().map_err(error(&src))?,
            }
        }
        let Some(mut output) = self.graph.get("out") else {
            return Err(error(&src)(ffmpeg::Error::Bug));
        };
        let mut f = frame::Audio::empty();
        loop {
            match output.sink().frame(&mut f) {
                Ok(()) => {
                    let n = f.samples() * CHANNELS;
                    let data = f.data(0);
                    out.extend(
                        data[..(n * 4).min(data.len())]
                            .chunks_exact(4)
                            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(error(&src)(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_speeds_chain_stages() {
        assert_eq!(chain(2.0), "atempo=2.000000");
        assert_eq!(chain(0.25), "atempo=0.5,atempo=0.500000");
    }

    #[test]
    fn double_speed_halves_the_samples() {
        let mut tempo = Tempo::new(2.0, "test").unwrap();
        let input: Vec<f32> = (0..SAMPLE_RATE as usize * CHANNELS)
            .map(|i| ((i / 2) as f32 * 0.05).sin() * 0.5)
            .collect();
        let mut out = Vec::new();
        for (i, chunk) in input.chunks(4096).enumerate() {
            tempo.run(Some(chunk), (i * 2048) as i64, &mut out).unwrap();
        }
        tempo.run(None, 0, &mut out).unwrap();
        let secs = out.len() as f64 / CHANNELS as f64 / f64::from(SAMPLE_RATE);
        assert!((secs - 0.5).abs() < 0.05, "{secs}");
    }
}
