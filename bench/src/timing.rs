//! When the bytes of one render arrive: the first byte, the end of the first
//! complete fragment (a `moof` and the `mdat` right after it, read from the
//! box stream as it comes) and the last byte, for an HTTP response and for
//! the peer's pipe alike.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::Result;

/// Reads box headers off a fragmented MP4 stream without keeping its bytes.
#[derive(Debug, Default)]
struct BoxStream {
    /// Bytes seen so far.
    pos: u64,
    /// Where the next box header starts.
    next: u64,
    header: Vec<u8>,
    previous: [u8; 4],
    /// Where the first `moof`+`mdat` pair ends, once its `mdat` is seen.
    first_fragment_end: Option<u64>,
}

impl BoxStream {
    fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            if self.pos < self.next {
                let skip = (self.next - self.pos).min(chunk.len() as u64) as usize;
                self.pos += skip as u64;
                chunk = &chunk[skip..];
                continue;
            }
            let want = if self.header.len() >= 8 && self.size32() == 1 {
                16
            } else {
                8
            };
            let take = (want - self.header.len()).min(chunk.len());
            self.header.extend_from_slice(&chunk[..take]);
            self.pos += take as u64;
            chunk = &chunk[take..];
            if self.header.len() < want || (want == 8 && self.size32() == 1) {
                continue;
            }
            let size = match self.size32() {
                1 => u64::from_be_bytes(self.header[8..16].try_into()?),
                0 => return Err("a box that runs to the end of the stream".into()),
                n => u64::from(n),
            };
            if size < self.header.len() as u64 {
                return Err(format!("a box of {size} bytes at {}", self.next).into());
            }
            let kind: [u8; 4] = self.header[4..8].try_into()?;
            if &kind == b"mdat" && &self.previous == b"moof" && self.first_fragment_end.is_none() {
                self.first_fragment_end = Some(self.next + size);
            }
            self.previous = kind;
            self.next += size;
            self.header.clear();
        }
        Ok(())
    }

    fn size32(&self) -> u32 {
        u32::from_be_bytes([
            self.header[0],
            self.header[1],
            self.header[2],
            self.header[3],
        ])
    }

    fn first_fragment_done(&self) -> bool {
        self.first_fragment_end.is_some_and(|end| self.pos >= end)
    }
}

/// The arrival times of one body, from when it was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub first_byte: Duration,
    pub first_fragment: Duration,
    pub last_byte: Duration,
    pub bytes: u64,
}

/// Reads `body` to its end, timing from `asked`. Every byte is read: the
/// fMP4 boxes are checked to line up with the end of the stream.
pub fn watch(asked: Instant, mut body: impl Read) -> Result<Arrival> {
    let mut boxes = BoxStream::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut first_byte = None;
    let mut first_fragment = None;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(|| asked.elapsed());
        boxes.feed(&buf[..n])?;
        if first_fragment.is_none() && boxes.first_fragment_done() {
            first_fragment = Some(asked.elapsed());
        }
    }
    let last_byte = asked.elapsed();
    if boxes.pos != boxes.next || !boxes.header.is_empty() {
        return Err(format!("the stream ends inside a box at {}", boxes.pos).into());
    }
    match (first_byte, first_fragment) {
        (Some(first_byte), Some(first_fragment)) => Ok(Arrival {
            first_byte,
            first_fragment,
            last_byte,
            bytes: boxes.pos,
        }),
        _ => Err(format!("no complete fragment in {} bytes", boxes.pos).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((body + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(body + 8, 7);
        b
    }

    #[test]
    fn the_first_fragment_ends_with_the_mdat_after_a_moof() {
        let mut stream = [
            mp4box(b"ftyp", 16),
            mp4box(b"moov", 700),
            mp4box(b"moof", 90),
        ]
        .concat();
        let fragment_end = stream.len() + 5008;
        stream.extend(mp4box(b"mdat", 5000));
        // A 64-bit size on the second fragment's mdat.
        stream.extend(mp4box(b"moof", 90));
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&(16u64 + 300).to_be_bytes());
        large.resize(316, 1);
        stream.extend(large);
        // Fed in awkward pieces: one byte, then odd sizes.
        let mut boxes = BoxStream::default();
        let mut done_at = None;
        let mut fed = 0;
        for piece in stream.chunks(3) {
            boxes.feed(piece).expect("valid boxes");
            fed += piece.len();
            if done_at.is_none() && boxes.first_fragment_done() {
                done_at = Some(fed);
            }
        }
        assert_eq!(boxes.first_fragment_end, Some(fragment_end as u64));
        assert!(done_at.is_some_and(|d| d >= fragment_end && d < fragment_end + 3));
        assert_eq!(boxes.next, stream.len() as u64);
        let arrival = watch(Instant::now(), &stream[..]).expect("whole stream");
        assert_eq!(arrival.bytes, stream.len() as u64);
        assert!(watch(Instant::now(), &stream[..stream.len() - 1]).is_err());
    }
}
