//! The sound of an MP4 encoded in chunks, one per fragment, each by a
//! fresh AAC encoder. One continuous AAC stream makes every packet depend
//! on all the sound before it, so a segment rendered on its own (a player
//! seeking into an HLS stream) had to encode the whole timeline's sound up
//! to it; encoded in chunks, it encodes only its own chunks.
//!
//! A chunk's encoder starts [`PRE_ROLL`] frames before the chunk (the mix
//! there, so its bit allocation and window decisions have settled and its
//! first kept packet overlaps the sound before it as the previous chunk's
//! last packet does) and is fed until it has handed out the chunk's last
//! packet (its own delay is the post-roll); only the chunk's packets are
//! kept. Its frames carry the stream's timestamps, so packet `j` is
//! numbered `origin + j * frame` (origin: minus the encoder's priming) as
//! a continuous encoder numbers it, and the packager and every timing
//! stay the same. The mix stays continuous and exact: only the encoding
//! is cut, and a chunk's packets depend only on the mix from its pre-roll
//! on, whoever encodes it (a whole render, a segment alone).

use std::collections::BTreeMap;
use std::ops::Range;

use super::codec::AudioCodec;
use super::{Encoded, StreamDesc};
use crate::engine::media::{MediaError, CHANNELS};

/// Encoder frames fed before a chunk's first packet's frame.
pub const PRE_ROLL: i64 = 5;

/// Where each chunk starts, in packets of the sound (packet `j` starts at
/// audio time `j * frame` from the sound's origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundChunks {
    /// Increasing, the first 0.
    starts: Vec<i64>,
}

/// The first packet at or after video time `v` (ticks of `video_scale`)
/// for packets of `frame` samples at `audio_rate`: the packager puts a
/// packet in the fragment whose video time range holds its start
/// (`Fmp4Packager::audio_before`: `a * video_scale < v * audio_rate`), so
/// this is the first packet of a fragment that starts at `v`.
pub fn first_packet_at(v: i64, video_scale: i64, audio_rate: i64, frame: i64) -> i64 {
    let num = i128::from(v.max(0)) * i128::from(audio_rate);
    let den = i128::from(frame.max(1)) * i128::from(video_scale.max(1));
    ((num + den - 1) / den) as i64
}

impl SoundChunks {
    /// One chunk: the sound encoded in one piece.
    pub fn whole() -> SoundChunks {
        SoundChunks { starts: vec![0] }
    }

    /// Chunks that start where fragments start (video times `fragment_starts`,
    /// in ticks of `video_scale`), packets of `frame` samples at
    /// `audio_rate`; fragments that hold no packet start no chunk.
    pub fn at_fragments(
        fragment_starts: impl IntoIterator<Item = i64>,
        video_scale: i64,
        audio_rate: i64,
        frame: i64,
    ) -> SoundChunks {
        let mut starts = vec![0];
        for v in fragment_starts {
            let j = first_packet_at(v, video_scale, audio_rate, frame);
            if starts.last().is_some_and(|last| j > *last) {
                starts.push(j);
            }
        }
        SoundChunks { starts }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Chunk `c`'s packets: from its start to the next chunk's (`None`:
    /// to the end of the sound).
    pub fn packets(&self, c: usize) -> (i64, Option<i64>) {
        (
            self.starts.get(c).copied().unwrap_or(i64::MAX),
            self.starts.get(c + 1).copied(),
        )
    }

    /// The chunks whose packets start in `from..to` (`to` `None`: to the
    /// end): a fragment's or a segment's.
    pub fn within(&self, from: i64, to: Option<i64>) -> Range<usize> {
        let first = self.starts.partition_point(|s| *s < from);
        let end = to.map_or(self.starts.len(), |t| {
            self.starts.partition_point(|s| *s < t)
        });
        first..end.max(first)
    }

    /// The starts, for keys of what depends on them.
    pub fn starts(&self) -> &[i64] {
        &self.starts
    }
}

/// How each chunk's fresh encoder is opened.
#[derive(Debug, Clone, Copy)]
pub struct AudioSettings {
    pub codec: &'static str,
    pub bit_rate: usize,
    pub global_header: bool,
}

/// A chunk's encoder at work.
struct Running {
    codec: AudioCodec,
    /// Its chunk's packets.
    first: i64,
    end: Option<i64>,
    /// The number of the last packet it handed out.
    last_out: Option<i64>,
}

/// Encodes the continuous mix in chunks (see the module's note); hands
/// out the packets of the chunks it encodes in order, as one encoder
/// would.
pub struct ChunkedAudio {
    settings: AudioSettings,
    chunks: SoundChunks,
    /// The chunks encoded (all, unless a segment is rendered on its own).
    wanted: Range<usize>,
    /// Describes the stream; every chunk's encoder has the same header.
    template: AudioCodec,
    frame: i64,
    padding: i64,
    /// Interleaved samples short of a whole frame.
    pending: Vec<f32>,
    /// The next frame of the mix (frames counted from the sound's start).
    next_frame: i64,
    /// The next chunk to open.
    next_chunk: usize,
    running: Vec<Running>,
    /// Packets kept, by number, until those before them are out.
    kept: BTreeMap<i64, Encoded>,
    /// The next packet to hand out.
    next_out: i64,
}

impl ChunkedAudio {
    /// Encodes chunks `wanted` of `chunks` (all when `None`).
    pub fn new(
        settings: AudioSettings,
        chunks: SoundChunks,
        wanted: Option<Range<usize>>,
    ) -> Result<ChunkedAudio, MediaError> {
        let template = AudioCodec::open(settings.codec, settings.bit_rate, settings.global_header)?;
        let frame = template.frame_size() as i64;
        let padding = template.initial_padding();
        let wanted = wanted.unwrap_or(0..chunks.len());
        let wanted = wanted.start.min(chunks.len())..wanted.end.min(chunks.len());
        let next_out = chunks.packets(wanted.start).0;
        Ok(ChunkedAudio {
            settings,
            template,
            frame,
            padding,
            pending: Vec::new(),
            next_frame: 0,
            next_chunk: wanted.start,
            running: Vec::new(),
            kept: BTreeMap::new(),
            next_out,
            chunks,
            wanted,
        })
    }

    pub fn desc(&self) -> StreamDesc {
        self.template.desc()
    }

    /// The first packet's timestamp (packet `j`'s is `origin + j * frame`).
    pub fn origin(&self) -> i64 {
        -self.padding
    }

    /// Every wanted packet is out: the mix after this is not needed (the
    /// last chunk ends only with [`ChunkedAudio::finish`]).
    pub fn done(&self) -> bool {
        self.next_chunk >= self.wanted.end && self.running.is_empty() && self.kept.is_empty()
    }

    /// Adds interleaved stereo samples of the mix; returns the packets
    /// now ready, in order.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Encoded>, MediaError> {
        self.pending.extend_from_slice(samples);
        let whole = self.frame as usize * CHANNELS;
        let mut at = 0;
        while self.pending.len() - at >= whole {
            let frame = self.pending[at..at + whole].to_vec();
            self.feed(&frame)?;
            at += whole;
        }
        self.pending.drain(..at);
        Ok(self.ready())
    }

    /// The end of the mix: what is left (padded with silence, as one
    /// encoder pads it) and every running encoder's flush.
    pub fn finish(&mut self) -> Result<Vec<Encoded>, MediaError> {
        if !self.pending.is_empty() {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(self.frame as usize * CHANNELS, 0.0);
            self.feed(&frame)?;
        }
        for mut r in std::mem::take(&mut self.running) {
            let flushed = r.codec.finish()?;
            self.keep(&mut r, flushed);
        }
        // A chunk that starts after the sound ends has no packet.
        self.next_chunk = self.wanted.end;
        Ok(std::mem::take(&mut self.kept).into_values().collect())
    }

    /// Feeds one whole frame of the mix to the encoders that want it,
    /// opening a chunk's encoder where its pre-roll starts and closing
    /// one once it has handed out its chunk's last packet.
    fn feed(&mut self, frame: &[f32]) -> Result<(), MediaError> {
        while self.next_chunk < self.wanted.end {
            let (first, end) = self.chunks.packets(self.next_chunk);
            if (first - PRE_ROLL).max(0) > self.next_frame {
                break;
            }
            let codec = AudioCodec::open_at(
                self.settings.codec,
                self.settings.bit_rate,
                self.settings.global_header,
                self.next_frame * self.frame,
            )?;
            self.running.push(Running {
                codec,
                first,
                end,
                last_out: None,
            });
            self.next_chunk += 1;
        }
        self.next_frame += 1;
        let mut running = std::mem::take(&mut self.running);
        for r in &mut running {
            let packets = r.codec.push(frame)?;
            self.keep(r, packets);
        }
        // Closed once its chunk's last packet is out.
        running.retain(|r| match (r.end, r.last_out) {
            (Some(end), Some(out)) => out < end - 1,
            _ => true,
        });
        self.running = running;
        Ok(())
    }

    /// Keeps the packets of `r`'s chunk.
    fn keep(&mut self, r: &mut Running, packets: Vec<Encoded>) {
        for p in packets {
            let j = (p.pts + self.padding).div_euclid(self.frame);
            r.last_out = Some(j);
            if j >= r.first && r.end.is_none_or(|e| j < e) {
                self.kept.insert(j, p);
            }
        }
    }

    /// The kept packets that follow every packet handed out so far.
    fn ready(&mut self) -> Vec<Encoded> {
        let mut out = Vec::new();
        while let Some(p) = self.kept.remove(&self.next_out) {
            out.push(p);
            self.next_out += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_belongs_to_the_fragment_whose_video_time_holds_its_start() {
        // 25 fps in 1/12800 (512 a frame), 1024-sample packets at 48 kHz:
        // 1.875 packets a frame.
        assert_eq!(first_packet_at(0, 12800, 48_000, 1024), 0);
        // Frame 10 (0.4 s, 19200 samples): packet 18 starts at 18432
        // (before), 19 at 19456.
        assert_eq!(first_packet_at(10 * 512, 12800, 48_000, 1024), 19);
        // Frame 50 (2 s = 96000 samples): packet 93 starts at 95232, 94 at
        // 96256.
        assert_eq!(first_packet_at(50 * 512, 12800, 48_000, 1024), 94);
        // A packet that starts exactly on the boundary is the later
        // fragment's: 8 frames = 0.32 s = 15360 samples = packet 15.
        assert_eq!(first_packet_at(8 * 512, 12800, 48_000, 1024), 15);
        // NTSC: 30000/1001 in 1/30000, 1001 a frame; 30 frames = 1.001 s =
        // 48048 samples: packet 46 (47104) before, 47 (48128) after.
        assert_eq!(first_packet_at(30 * 1001, 30000, 48_000, 1024), 47);
    }

    #[test]
    fn chunks_start_at_fragments_and_a_segment_holds_its_own() {
        // The short first fragment to frame 10, then 2 s segments.
        let c = SoundChunks::at_fragments([10 * 512, 50 * 512, 100 * 512], 12800, 48_000, 1024);
        assert_eq!(c.starts(), &[0, 19, 94, 188]);
        assert_eq!(c.packets(0), (0, Some(19)));
        assert_eq!(c.packets(3), (188, None));
        // Segment 0 is the first two fragments, segment 1 the third.
        assert_eq!(c.within(0, Some(94)), 0..2);
        assert_eq!(c.within(94, Some(188)), 2..3);
        assert_eq!(c.within(188, None), 3..4);
        // Fragments too short to hold a packet start no chunk.
        let tiny = SoundChunks::at_fragments([0, 1, 2], 12800, 48_000, 1024);
        assert_eq!(tiny.starts(), &[0, 1]);
        assert_eq!(SoundChunks::whole().within(0, None), 0..1);
    }

    fn tone(samples: usize, from: usize) -> Vec<f32> {
        (from..from + samples)
            .flat_map(|i| {
                let s = (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5;
                [s, s]
            })
            .collect()
    }

    const AAC: AudioSettings = AudioSettings {
        codec: "aac",
        bit_rate: 128_000,
        global_header: true,
    };

    #[test]
    fn ffmpegs_aac_numbers_its_packets_from_minus_its_priming() {
        let mut codec = AudioCodec::open("aac", 128_000, true).unwrap();
        assert_eq!(codec.frame_size(), 1024);
        assert_eq!(codec.initial_padding(), 1024);
        // Packet k (timestamped (k - 1) * 1024: the first is all priming)
        // comes out once frame k + 1 is in: the encoder looks a frame
        // ahead (its window decisions), so a chunk's encoder is fed a
        // frame past the chunk's last packet's.
        let mut out = Vec::new();
        let mut when = Vec::new();
        for k in 0..6 {
            let got = codec.push(&tone(1024, k * 1024)).unwrap();
            when.push(got.len());
            out.extend(got);
        }
        assert_eq!(when, vec![0, 1, 1, 1, 1, 1]);
        let pts: Vec<i64> = out.iter().map(|p| p.pts).collect();
        assert_eq!(pts, vec![-1024, 0, 1024, 2048, 3072]);
        assert!(out.iter().all(|p| p.dts == p.pts && p.duration == 1024));
        // The flush hands out the last two: frames + 1 packets in all.
        let flushed = codec.finish().unwrap();
        assert_eq!(
            flushed.iter().map(|p| p.pts).collect::<Vec<_>>(),
            vec![4096, 5120]
        );
        // Opened at a later sample, the packets carry the stream's times.
        let mut later = AudioCodec::open_at("aac", 128_000, true, 10 * 1024).unwrap();
        let mut first = later.push(&tone(1024, 10 * 1024)).unwrap();
        first.extend(later.push(&tone(1024, 11 * 1024)).unwrap());
        assert_eq!(
            first.iter().map(|p| p.pts).collect::<Vec<_>>(),
            vec![9 * 1024]
        );
    }

    /// Every packet once, in order, numbered as one encoder numbers them.
    fn numbers(packets: &[Encoded]) -> Vec<i64> {
        packets.iter().map(|p| (p.pts + 1024) / 1024).collect()
    }

    #[test]
    fn chunks_give_every_packet_once_and_a_chunk_alone_the_same_bytes() {
        let chunks = SoundChunks::at_fragments([10 * 512, 50 * 512], 12800, 48_000, 1024);
        // 2.5 s of tone, fed a 25 fps frame (1920 samples) at a time.
        let total = 120_000;
        let run = |wanted: Option<Range<usize>>, stop_when_done: bool| {
            let mut audio = ChunkedAudio::new(AAC, chunks.clone(), wanted).unwrap();
            let mut out = Vec::new();
            let mut at = 0;
            while at < total {
                let n = 1920.min(total - at);
                out.extend(audio.push(&tone(n, at)).unwrap());
                at += n;
                if stop_when_done && audio.done() {
                    return out;
                }
            }
            out.extend(audio.finish().unwrap());
            out
        };
        let all = run(None, false);
        let frames = (total as i64 + 1023) / 1024;
        assert_eq!(numbers(&all), (0..=frames).collect::<Vec<_>>());
        // One encoder gives as many packets with the same times.
        let mut one = AudioCodec::open("aac", 128_000, true).unwrap();
        let mut whole = one.push(&tone(total, 0)).unwrap();
        whole.extend(one.finish().unwrap());
        assert_eq!(
            whole.iter().map(|p| p.pts).collect::<Vec<_>>(),
            all.iter().map(|p| p.pts).collect::<Vec<_>>()
        );
        // The middle chunk alone: its packets, the same bytes, and it is
        // done before the mix ends.
        let middle = run(Some(1..2), true);
        assert_eq!(numbers(&middle), (19..94).collect::<Vec<_>>());
        for (p, q) in middle.iter().zip(&all[19..94]) {
            assert_eq!((p.pts, &p.data), (q.pts, &q.data));
        }
        let last = run(Some(2..3), true);
        assert_eq!(numbers(&last), (94..=frames).collect::<Vec<_>>());
        for (p, q) in last.iter().zip(&all[94..]) {
            assert_eq!((p.pts, &p.data), (q.pts, &q.data));
        }
    }
}
