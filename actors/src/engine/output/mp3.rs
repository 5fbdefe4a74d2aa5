//! MP3: the mix alone, libmp3lame at a constant bit rate chosen by
//! quality, muxed by libavformat (an ID3v2 tag, then a Xing/LAME frame
//! filled in at the end with the frame count, so players know the
//! duration and can seek).

use super::avmux::AvMuxer;
use super::codec::AudioCodec;
use super::Codecs;
use crate::engine::media::MediaError;
use crate::engine::mux::MuxError;
use crate::engine::plan::Plan;

pub fn encoder(plan: &Plan) -> Result<Codecs, MediaError> {
    let audio = AudioCodec::open(
        "libmp3lame",
        super::audio_bit_rate(plan.output.quality),
        false,
    )?;
    Ok(Codecs::new(None, Some(audio)))
}

pub fn packager() -> Result<AvMuxer, MuxError> {
    AvMuxer::new("mp3", Vec::new())
}
