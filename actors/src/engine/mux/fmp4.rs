//! Fragmented MP4 for streaming while rendering (and for HLS): an init
//! segment (`ftyp` + `moov` with `mvex`, no samples) and self-contained
//! `moof` + `mdat` fragments.
//!
//! Boxes come from the `mp4` crate (0.14). It exports only its top-level
//! box types, so inner boxes are made with `Default` and filled in field by
//! field. Three containers are framed here around the crate's boxes:
//! `mvex` (its `MvexBox` holds a single `trex`; we need one per track),
//! hence `moov` around it, and `traf` (its writer leaves out `tfdt` and
//! `trun`), hence `moof`.

use std::io::Write;

use bytes::Bytes;
use mp4::{
    AudioObjectType, ChannelConfig, FourCC, FtypBox, MoofBox, MoovBox, Mp4Box, SampleFreqIndex,
    WriteBox,
};

use super::avc;
use super::MuxError;

pub enum TrackConfig {
    /// `extradata` as libx264 gives it with a global header (Annex-B SPS
    /// and PPS), or an avcC record.
    Video {
        width: u32,
        height: u32,
        timescale: u32,
        extradata: Vec<u8>,
    },
    /// `extradata`: the AAC AudioSpecificConfig.
    Audio {
        sample_rate: u32,
        channels: u16,
        timescale: u32,
        extradata: Vec<u8>,
    },
}

/// One encoded frame; times in its track's timescale.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index into the writer's tracks.
    pub track: usize,
    pub dts: u64,
    pub cts_offset: i32,
    pub duration: u32,
    pub keyframe: bool,
    /// Video: Annex-B as the encoder emits it.
    pub data: Bytes,
}

pub struct Fmp4Writer {
    tracks: Vec<TrackConfig>,
    sequence: u32,
}

/// trun sample flags: a sync sample, and one that depends on others.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;
/// tfhd: data offsets are relative to the moof (ISO/IEC 14496-12 8.8.7).
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// trun: which per-sample fields are present (8.8.8).
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;

fn mp4_err(e: mp4::Error) -> MuxError {
    MuxError::Write(e.to_string())
}

fn header(out: &mut Vec<u8>, kind: &[u8; 4], size: u64) -> Result<(), MuxError> {
    let size = u32::try_from(size).map_err(|_| MuxError::Write("box larger than 4 GiB".into()))?;
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    Ok(())
}

impl Fmp4Writer {
    pub fn new(tracks: Vec<TrackConfig>) -> Result<Fmp4Writer, MuxError> {
        if tracks.is_empty() {
            return Err(MuxError::Config("no tracks".into()));
        }
        Ok(Fmp4Writer {
            tracks,
            sequence: 0,
        })
    }

    /// The `trak` of track `index`, added to `moov`.
    fn add_trak(&self, moov: &mut MoovBox, index: usize) -> Result<(), MuxError> {
        moov.traks.push(Default::default());
        let Some(trak) = moov.traks.last_mut() else {
            return Err(MuxError::Config("no trak".into()));
        };
        trak.tkhd.track_id = index as u32 + 1;
        let mdia = &mut trak.mdia;
        mdia.mdhd.language = "und".into();
        mdia.minf.stbl.stco = Some(Default::default());
        match &self.tracks[index] {
            TrackConfig::Video {
                width,
                height,
                timescale,
                extradata,
            } => {
                let w = u16::try_from(*width)
                    .map_err(|_| MuxError::Config(format!("width {width}")))?;
                let h = u16::try_from(*height)
                    .map_err(|_| MuxError::Config(format!("height {height}")))?;
                trak.tkhd.set_width(w);
                trak.tkhd.set_height(h);
                trak.tkhd.volume = mp4::FixedPointU8::new(0);
                mdia.mdhd.timescale = *timescale;
                mdia.hdlr.handler_type = FourCC::from(*b"vide");
                mdia.hdlr.name = "Clipstream video".into();
                mdia.minf.vmhd = Some(Default::default());
                let (sps, pps) = avc::parameter_sets(extradata)?;
                let stsd = &mut mdia.minf.stbl.stsd;
                stsd.avc1 = Some(Default::default());
                let Some(avc1) = stsd.avc1.as_mut() else {
                    return Err(MuxError::Config("avc1".into()));
                };
                avc1.data_reference_index = 1;
                avc1.width = w;
                avc1.height = h;
                let avcc = &mut avc1.avcc;
                avcc.configuration_version = 1;
                avcc.avc_profile_indication = sps[1];
                avcc.profile_compatibility = sps[2];
                avcc.avc_level_indication = sps[3];
                avcc.length_size_minus_one = 0xff;
                avcc.sequence_parameter_sets.push(sps.as_slice().into());
                avcc.picture_parameter_sets.push(pps.as_slice().into());
            }
            TrackConfig::Audio {
                sample_rate,
                channels,
                timescale,
                extradata,
            } => {
                let (b0, b1) = match extradata.as_slice() {
                    [b0, b1, ..] => (*b0, *b1),
                    _ => return Err(MuxError::Config("the AAC extradata is too short".into())),
                };
                let bad = |what: &str| MuxError::Config(format!("unsupported AAC {what}"));
                let profile = AudioObjectType::try_from(b0 >> 3).map_err(|_| bad("profile"))?;
                let freq_index = SampleFreqIndex::try_from(((b0 & 7) << 1) | (b1 >> 7))
                    .map_err(|_| bad("rate"))?;
                let chan_conf =
                    ChannelConfig::try_from((b1 >> 3) & 0xf).map_err(|_| bad("channels"))?;
                mdia.mdhd.timescale = *timescale;
                mdia.hdlr.handler_type = FourCC::from(*b"soun");
                mdia.hdlr.name = "Clipstream audio".into();
                mdia.minf.smhd = Some(Default::default());
                let stsd = &mut mdia.minf.stbl.stsd;
                stsd.mp4a = Some(Default::default());
                let Some(mp4a) = stsd.mp4a.as_mut() else {
                    return Err(MuxError::Config("mp4a".into()));
                };
                mp4a.data_reference_index = 1;
                mp4a.channelcount = *channels;
                mp4a.samplerate = mp4::FixedPointU16::new(u16::try_from(*sample_rate).unwrap_or(0));
                let Some(esds) = mp4a.esds.as_mut() else {
                    return Err(MuxError::Config("esds".into()));
                };
                esds.es_desc.es_id = 1;
                let dec = &mut esds.es_desc.dec_config;
                dec.object_type_indication = 0x40; // MPEG-4 audio
                dec.stream_type = 0x05; // audio stream
                dec.max_bitrate = 128_000;
                dec.avg_bitrate = 128_000;
                dec.dec_specific.profile = profile as u8;
                dec.dec_specific.freq_index = freq_index as u8;
                dec.dec_specific.chan_conf = chan_conf as u8;
            }
        }
        Ok(())
    }

    /// `ftyp` + `moov`: everything a player needs before the first fragment.
    pub fn init_segment(&self) -> Result<Bytes, MuxError> {
        let mut out = Vec::new();
        let ftyp = FtypBox {
            major_brand: FourCC::from(*b"iso5"),
            minor_version: 512,
            compatible_brands: [b"iso5", b"iso6", b"mp41", b"avc1", b"dash"]
                .iter()
                .map(|b| FourCC::from(**b))
                .collect(),
        };
        ftyp.write_box(&mut out).map_err(mp4_err)?;

        let mut moov = MoovBox::default();
        moov.mvhd.timescale = 1000;
        moov.mvhd.next_track_id = self.tracks.len() as u32 + 1;
        for i in 0..self.tracks.len() {
            self.add_trak(&mut moov, i)?;
        }
        // A `trex` made by the crate, reached through its single-trex mvex.
        let template = MoovBox {
            mvex: Some(Default::default()),
            ..MoovBox::default()
        }
        .mvex
        .map(|mvex| mvex.trex)
        .ok_or_else(|| MuxError::Config("no trex".into()))?;
        let trexes: Vec<_> = (0..self.tracks.len())
            .map(|i| {
                let mut trex = template.clone();
                trex.track_id = i as u32 + 1;
                trex.default_sample_description_index = 1;
                trex
            })
            .collect();
        let mvex_size = 8 + trexes.iter().map(Mp4Box::box_size).sum::<u64>();
        let mut moov_bytes = Vec::new();
        moov.write_box(&mut moov_bytes).map_err(mp4_err)?;
        // The crate's moov, grown by the mvex appended to it.
        let moov_size = moov_bytes.len() as u64 + mvex_size;
        header(&mut out, b"moov", moov_size)?;
        out.extend_from_slice(&moov_bytes[8..]);
        header(&mut out, b"mvex", mvex_size)?;
        for trex in &trexes {
            trex.write_box(&mut out).map_err(mp4_err)?;
        }
        Ok(Bytes::from(out))
    }

    /// One `moof` + `mdat` with `samples`, grouped by track in the order
    /// given (each track's samples in decode order).
    /// The next fragment's sequence number will be `next`: a fragment
    /// written on its own (an HLS segment rendered out of order) has the
    /// number it has in the whole file.
    pub fn set_next_sequence(&mut self, next: u32) {
        self.sequence = next.saturating_sub(1);
    }

    pub fn fragment(&mut self, samples: &[Sample]) -> Result<Bytes, MuxError> {
        if samples.is_empty() {
            return Err(MuxError::Write("an empty fragment".into()));
        }
        self.sequence += 1;
        let mut moof = MoofBox::default();
        moof.mfhd.sequence_number = self.sequence;
        let mut payloads: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.tracks.len()];
        for (t, track) in self.tracks.iter().enumerate() {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.track == t).collect();
            let Some(first) = mine.first() else { continue };
            let is_video = matches!(track, TrackConfig::Video { .. });
            let data: Vec<Vec<u8>> = mine
                .iter()
                .map(|s| {
                    if is_video {
                        avc::to_length_prefixed(&s.data)
                    } else {
                        s.data.to_vec()
                    }
                })
                .collect();
            moof.trafs.push(Default::default());
            let Some(traf) = moof.trafs.last_mut() else {
                continue;
            };
            traf.tfhd.flags = DEFAULT_BASE_IS_MOOF;
            traf.tfhd.track_id = t as u32 + 1;
            traf.tfdt = Some(Default::default());
            if let Some(tfdt) = traf.tfdt.as_mut() {
                tfdt.version = 1;
                tfdt.base_media_decode_time = first.dts;
            }
            traf.trun = Some(Default::default());
            if let Some(trun) = traf.trun.as_mut() {
                // Version 1: composition offsets are signed; the crate
                // stores their bits.
                trun.version = 1;
                trun.flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTS;
                trun.sample_count = mine.len() as u32;
                trun.data_offset = Some(0);
                trun.sample_durations = mine.iter().map(|s| s.duration).collect();
                trun.sample_sizes = data.iter().map(|d| d.len() as u32).collect();
                trun.sample_flags = mine
                    .iter()
                    .map(|s| if s.keyframe { SYNC } else { NON_SYNC })
                    .collect();
                trun.sample_cts = mine.iter().map(|s| s.cts_offset as u32).collect();
            }
            payloads[t] = data;
        }
        // Data offsets count from the start of the moof to each track's
        // first byte in the mdat, which follows the moof's 8-byte header.
        let traf_sizes: Vec<u64> = moof
            .trafs
            .iter()
            .map(|traf| {
                8 + traf.tfhd.box_size()
                    + traf.tfdt.as_ref().map_or(0, Mp4Box::box_size)
                    + traf.trun.as_ref().map_or(0, Mp4Box::box_size)
            })
            .collect();
        let moof_size = 8 + moof.mfhd.box_size() + traf_sizes.iter().sum::<u64>();
        let mut offset = moof_size + 8;
        let mut t = 0;
        for traf in &mut moof.trafs {
            while payloads[t].is_empty() {
                t += 1;
            }
            if let Some(trun) = traf.trun.as_mut() {
                trun.data_offset = Some(
                    i32::try_from(offset)
                        .map_err(|_| MuxError::Write("fragment too large".into()))?,
                );
            }
            offset += payloads[t].iter().map(|d| d.len() as u64).sum::<u64>();
            t += 1;
        }
        let mdat_size = offset - moof_size;
        let mut out = Vec::with_capacity(offset as usize);
        // moof and traf are framed here: the crate's TrafBox writer leaves
        // out tfdt and trun (mp4 0.14).
        header(&mut out, b"moof", moof_size)?;
        moof.mfhd.write_box(&mut out).map_err(mp4_err)?;
        for (traf, size) in moof.trafs.iter().zip(&traf_sizes) {
            header(&mut out, b"traf", *size)?;
            traf.tfhd.write_box(&mut out).map_err(mp4_err)?;
            if let Some(tfdt) = &traf.tfdt {
                tfdt.write_box(&mut out).map_err(mp4_err)?;
            }
            if let Some(trun) = &traf.trun {
                trun.write_box(&mut out).map_err(mp4_err)?;
            }
        }
        header(&mut out, b"mdat", mdat_size)?;
        for track in &payloads {
            for d in track {
                out.write_all(d)
                    .map_err(|e| MuxError::Write(e.to_string()))?;
            }
        }
        Ok(Bytes::from(out))
    }
}
