//! H.264 bitstream plumbing: libx264 emits Annex-B (start codes), MP4
//! carries length-prefixed NAL units and an avcC record.

use super::MuxError;

/// The NAL units of an Annex-B buffer (3- or 4-byte start codes), without
/// their start codes.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::new();
    for (k, &(_, body)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(sc, _)| sc);
        // A 4-byte start code's leading zero belongs to no unit.
        while end > body && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > body {
            units.push(&data[body..end]);
        }
    }
    units
}

fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |b| b & 0x1f)
}

/// An access unit as MP4 samples carry it: 4-byte big-endian lengths.
/// Parameter sets and access-unit delimiters are left out: the avcC record
/// carries the parameter sets, and every keyframe can rely on it.
pub fn to_length_prefixed(data: &[u8]) -> Vec<u8> {
    let units = nal_units(data);
    if units.is_empty() && !data.is_empty() {
        // Already length-prefixed (an encoder without Annex-B output).
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    for unit in units {
        if matches!(nal_type(unit), 7..=9) {
            continue;
        }
        out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out
}

/// The first SPS and PPS in Annex-B `extradata`, or in an avcC record.
pub fn parameter_sets(extradata: &[u8]) -> Result<(Vec<u8>, Vec<u8>), MuxError> {
    if extradata.first() == Some(&1) {
        return parse_avcc(extradata);
    }
    let units = nal_units(extradata);
    let sps = units.iter().find(|u| nal_type(u) == 7);
    let pps = units.iter().find(|u| nal_type(u) == 8);
    match (sps, pps) {
        (Some(sps), Some(pps)) if sps.len() >= 4 => Ok((sps.to_vec(), pps.to_vec())),
        _ => Err(MuxError::Config(
            "the H.264 extradata holds no SPS and PPS".into(),
        )),
    }
}

fn parse_avcc(record: &[u8]) -> Result<(Vec<u8>, Vec<u8>), MuxError> {
    let bad = || MuxError::Config("truncated avcC record".into());
    let take = |at: usize| -> Result<(Vec<u8>, usize), MuxError> {
        let len = usize::from(u16::from_be_bytes([
            *record.get(at).ok_or_else(bad)?,
            *record.get(at + 1).ok_or_else(bad)?,
        ]));
        let unit = record.get(at + 2..at + 2 + len).ok_or_else(bad)?;
        Ok((unit.to_vec(), at + 2 + len))
    };
    if record.len() < 7 || record[5] & 0x1f == 0 {
        return Err(bad());
    }
    let (sps, next) = take(6)?;
    if record.get(next).is_none_or(|n| n & 0x1f == 0) {
        return Err(bad());
    }
    let (pps, _) = take(next + 1)?;
    Ok((sps, pps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9,
        ];
        let units = nal_units(&data);
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9, 9][..]]
        );
        assert_eq!(to_length_prefixed(&data), vec![0, 0, 0, 3, 0x65, 9, 9]);
        let (sps, pps) =
            parameter_sets(&[0, 0, 0, 1, 0x67, 0x64, 0, 0x1f, 0, 0, 1, 0x68, 0xee]).unwrap();
        assert_eq!((sps, pps), (vec![0x67, 0x64, 0, 0x1f], vec![0x68, 0xee]));
        assert!(parameter_sets(&[0, 0, 1, 0x65]).is_err());
    }

    #[test]
    fn reads_an_avcc_record() {
        let record = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee,
        ];
        assert_eq!(
            parse_avcc(&record).unwrap(),
            (vec![0x67, 0x64, 0, 0x1f], vec![0x68, 0xee])
        );
        assert!(parse_avcc(&record[..9]).is_err());
    }
}
