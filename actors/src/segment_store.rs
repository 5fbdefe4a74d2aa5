//! Where encoded segments outlive the process: the server hands the
//! [`SegmentCache`](crate::segments::SegmentCache) a [`SegmentStore`]
//! (the storage crate's blob store and repository; this crate does not
//! depend on storage), and segments are written to it and read back from
//! it in the compact form below.
//!
//! Stored form, little-endian: `CSEG`, the format version (u32), the
//! packet count (u32), then per packet pts, dts, duration (i64 each), flags
//! (u8, bit 0: keyframe), length (u32) and the bytes. It is read back only
//! from this machine's own store, yet a reader never trusts it: every count
//! and length is checked against what is there, and anything amiss is an
//! error (the segment is then rendered again), never a panic.

use bytes::Bytes;

use crate::engine::output::Encoded;

/// A segment's content key (a digest of what its window shows; see
/// `segments::key`). It lives here, where segments are stored by it, so the
/// store needs nothing from the module that computes it.
pub type Key = [u8; 32];

const MAGIC: &[u8; 4] = b"CSEG";

/// The version of the stored form; another version reads as absent.
pub const STORED_VERSION: u32 = 1;

/// Fixed bytes per packet before its data.
const PACKET_HEAD: usize = 8 * 3 + 1 + 4;

/// A durable home for encoded segments, keyed by content.
pub trait SegmentStore: Send + Sync {
    /// The stored form of segment `key`, if kept. Errors are the store's to
    /// log: to the caller a segment that cannot be read is one not kept.
    fn get(&self, key: &Key) -> Option<Vec<u8>>;

    /// Keeps `body` (a segment's stored form) under `key`, within the
    /// store's own bound; failures are the store's to log.
    fn put(&self, key: &Key, body: Vec<u8>);

    /// Keeps `body` under `key` before returning, whatever its size
    /// (another machine waits for it); `true` once it is kept. A store
    /// with no such guarantee writes as [`SegmentStore::put`] and says
    /// `false`.
    fn keep(&self, key: &Key, body: Vec<u8>) -> bool {
        self.put(key, body);
        false
    }
}

/// `packets` in the stored form.
pub fn encode(packets: &[Encoded]) -> Vec<u8> {
    let data: usize = packets.iter().map(|p| p.data.len() + PACKET_HEAD).sum();
    let mut out = Vec::with_capacity(12 + data);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STORED_VERSION.to_le_bytes());
    out.extend_from_slice(&(packets.len() as u32).to_le_bytes());
    for p in packets {
        out.extend_from_slice(&p.pts.to_le_bytes());
        out.extend_from_slice(&p.dts.to_le_bytes());
        out.extend_from_slice(&p.duration.to_le_bytes());
        out.push(u8::from(p.keyframe));
        out.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.data);
    }
    out
}

/// Why a stored segment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a stored segment")]
    Magic,
    #[error("stored segment version {0}, this build reads {STORED_VERSION}")]
    Version(u32),
    #[error("stored segment cut short at byte {0}")]
    Truncated(usize),
    #[error("stored segment has {0} bytes after its last packet")]
    Trailing(usize),
    #[error("stored segment packet {0} has unknown flags")]
    Flags(usize),
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or(DecodeError::Truncated(self.at))?;
        let bytes = &self.body[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.at;
        self.take(N)?
            .try_into()
            .map_err(|_| DecodeError::Truncated(at))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

/// The packets of a segment's stored form. The packets' data are slices
/// of `body` (no copy).
pub fn decode(body: Bytes) -> Result<Vec<Encoded>, DecodeError> {
    let mut r = Reader { body: &body, at: 0 };
    if r.take(4).map_err(|_| DecodeError::Magic)? != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = r.u32()?;
    if version != STORED_VERSION {
        return Err(DecodeError::Version(version));
    }
    let count = r.u32()? as usize;
    // Every packet needs its head: a count the body cannot hold is cut
    // short, found before anything is allocated for it.
    if count.saturating_mul(PACKET_HEAD) > body.len() - r.at {
        return Err(DecodeError::Truncated(body.len()));
    }
    let mut packets = Vec::with_capacity(count);
    for i in 0..count {
        let pts = r.i64()?;
        let dts = r.i64()?;
        let duration = r.i64()?;
        let [flags] = r.array()?;
        if flags > 1 {
            return Err(DecodeError::Flags(i));
        }
        let len = r.u32()? as usize;
        let start = r.at;
        r.take(len)?;
        packets.push(Encoded {
            pts,
            dts,
            duration,
            keyframe: flags == 1,
            data: body.slice(start..start + len),
        });
    }
    if r.at != body.len() {
        return Err(DecodeError::Trailing(body.len() - r.at));
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets() -> Vec<Encoded> {
        (0..3)
            .map(|i| Encoded {
                pts: 512 * i + 1024,
                dts: 512 * i - 512,
                duration: 512,
                keyframe: i == 0,
                data: Bytes::from(vec![i as u8; 10 + i as usize]),
            })
            .collect()
    }

    fn same(a: &[Encoded], b: &[Encoded]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.pts, x.dts, x.duration, x.keyframe, &x.data)
                    == (y.pts, y.dts, y.duration, y.keyframe, &y.data)
            })
    }

    #[test]
    fn packets_come_back_as_they_went_in() {
        let body = encode(&packets());
        assert!(same(&decode(Bytes::from(body)).unwrap(), &packets()));
        assert!(decode(Bytes::from(encode(&[]))).unwrap().is_empty());
    }

    /// A store in a map, as the server's is in blobs and records.
    #[derive(Default)]
    struct Map(std::sync::Mutex<std::collections::HashMap<Key, Vec<u8>>>);

    impl SegmentStore for Map {
        fn get(&self, key: &Key) -> Option<Vec<u8>> {
            self.0.lock().unwrap().get(key).cloned()
        }
        fn put(&self, key: &Key, body: Vec<u8>) {
            self.0.lock().unwrap().insert(*key, body);
        }
    }

    #[test]
    fn a_cache_over_a_store_finds_what_another_process_kept() {
        let store = std::sync::Arc::new(Map::default());
        let before = crate::segments::SegmentCache::new(1 << 20);
        before.set_store(store.clone());
        before.put([1; 32], packets());
        // Another process: empty memory, the same store.
        let after = crate::segments::SegmentCache::new(1 << 20);
        assert!(after.get(&[1; 32]).is_none(), "no store yet");
        after.set_store(store.clone());
        let found = after.get(&[1; 32]).expect("kept in the store");
        assert!(same(&found, &packets()));
        assert!(
            std::sync::Arc::ptr_eq(&found, &after.get(&[1; 32]).unwrap()),
            "then served from memory"
        );
        store.put(&[2; 32], b"CSEG damaged".to_vec());
        assert!(after.get(&[2; 32]).is_none(), "unreadable: rendered again");
        // Memory too small to keep it: the store still does.
        let small = crate::segments::SegmentCache::new(0);
        small.set_store(store.clone());
        small.put([3; 32], packets());
        assert!(small.get(&[3; 32]).is_some());
    }

    #[test]
    fn every_damage_is_an_error_not_a_panic() {
        let body = encode(&packets());
        for cut in 0..body.len() {
            assert!(
                decode(Bytes::copy_from_slice(&body[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            decode(Bytes::from(longer)).unwrap_err(),
            DecodeError::Trailing(1)
        );
        let mut version = body.clone();
        version[4] = 2;
        assert_eq!(
            decode(Bytes::from(version)).unwrap_err(),
            DecodeError::Version(2)
        );
        let mut count = body.clone();
        count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(Bytes::from(count)).unwrap_err(),
            DecodeError::Truncated(_)
        ));
        let mut len = body.clone();
        len[12 + 25..12 + 29].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(Bytes::from(len)).unwrap_err(),
            DecodeError::Truncated(_)
        ));
        let mut flags = body;
        flags[12 + 24] = 7;
        assert_eq!(
            decode(Bytes::from(flags)).unwrap_err(),
            DecodeError::Flags(0)
        );
        assert_eq!(
            decode(Bytes::from_static(b"nope")).unwrap_err(),
            DecodeError::Magic
        );
    }
}
