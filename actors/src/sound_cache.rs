//! Encoded sound, kept between renders. A personalised template changes
//! its pictures with each viewer's params (a name in a title) but rarely
//! its sound: the soundtrack, the clips' own audio and their volumes are
//! the same for every token. Mixing and encoding that sound again is about
//! a tenth of a 720p render's CPU (decoding MP3 and AAC, FFmpeg's AAC
//! encoder), so a render whose mix was encoded before takes its packets
//! from here instead.
//!
//! The key is everything the encoded sound depends on: the output's
//! format and quality, the span and frame rate rendered, every sound of
//! the plan, and the *content* of each sound's file, so that a replaced
//! asset or a different download is a different key. Only a render that
//! finished puts its sound here; a failed one leaves nothing behind.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use crate::engine::output::Encoded;
use crate::engine::plan::Plan;
use crate::engine::timeline::Sources;

/// Bytes of encoded sound kept unless [`set_capacity`] says otherwise: 70
/// minutes of 128 kb/s AAC in all, a few hundred templates' sounds.
pub const DEFAULT_CAPACITY: usize = 64 * 1024 * 1024;

/// Files up to this size are identified by a hash of their content;
/// larger ones by their path, size, modification time and inode, which a
/// replaced asset (a new blob) or a new download (a new file) changes too.
const HASHED_FILE_LIMIT: u64 = 32 * 1024 * 1024;

pub type Key = [u8; 32];

/// One encoded sound: its packets in order, as the encoder gave them.
pub type Sound = Arc<Vec<Released>>;

/// An encoded sound packet, and the frame after which the render that
/// encoded it handed it to the muxer. A render that takes the sound from
/// the cache hands each packet out after the same frame, so that both
/// interleave sound and pictures alike and mux to the same bytes: an
/// output's bytes never depend on what the cache held.
#[derive(Debug, Clone)]
pub struct Released {
    pub after_frame: i64,
    pub packet: Encoded,
}

/// The process's cache, shared by every render.
pub fn shared() -> &'static SoundCache {
    &CACHE
}

static CACHE: LazyLock<SoundCache> = LazyLock::new(|| SoundCache::new(DEFAULT_CAPACITY));

/// Bytes the process's cache may keep (`render.sound_cache_bytes`); 0 keeps
/// nothing, and every render mixes and encodes its sound.
pub fn set_capacity(bytes: usize) {
    CACHE.capacity.store(bytes, Ordering::Relaxed);
}

pub struct SoundCache {
    capacity: AtomicUsize,
    inner: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Entries {
    sounds: HashMap<Key, Sound>,
    /// Least recently used first.
    order: VecDeque<Key>,
    bytes: usize,
}

fn size_of(sound: &[Released]) -> usize {
    sound.iter().map(|r| r.packet.data.len() + 40).sum()
}

impl SoundCache {
    pub fn new(capacity: usize) -> SoundCache {
        SoundCache {
            capacity: AtomicUsize::new(capacity),
            inner: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Sound> {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sound) = e.sounds.get(key).cloned() else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        e.order.retain(|k| k != key);
        e.order.push_back(*key);
        Some(sound)
    }

    /// Lookups that found a sound, and those that did not, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Keeps `sound` under `key`, dropping the least recently used sounds
    /// to make room; a sound larger than a quarter of the cache is not kept.
    pub fn put(&self, key: Key, sound: Vec<Released>) {
        let size = size_of(&sound);
        let capacity = self.capacity.load(Ordering::Relaxed);
        if size > capacity / 4 {
            return;
        }
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = e.sounds.remove(&key) {
            e.bytes -= size_of(&old);
            e.order.retain(|k| *k != key);
        }
        while e.bytes + size > capacity {
            let Some(oldest) = e.order.pop_front() else {
                break;
            };
            if let Some(old) = e.sounds.remove(&oldest) {
                e.bytes -= size_of(&old);
            }
        }
        e.bytes += size;
        e.order.push_back(key);
        e.sounds.insert(key, Arc::new(sound));
    }
}

/// The key of `plan`'s encoded sound, or `None` when a sound's file cannot
/// be read (the render then mixes as usual and reports the problem).
pub fn key(plan: &Plan, sources: &Sources) -> Option<Key> {
    let mut h = blake3::Hasher::new();
    // Debug forms are complete and stable within one build of the
    // process, which is as long as this cache lives.
    let o = &plan.output;
    h.update(format!("{:?} {:?} {:?}", o.format, o.quality, plan.rate).as_bytes());
    h.update(format!("{} {} {}", plan.start, plan.duration, plan.mute).as_bytes());
    if !plan.mute {
        for sound in &plan.sounds {
            h.update(format!("{sound:?}").as_bytes());
            identify(&mut h, sources.get(&sound.src)?).ok()?;
        }
    }
    Some(*h.finalize().as_bytes())
}

pub(crate) fn identify(h: &mut blake3::Hasher, path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    h.update(&meta.len().to_le_bytes());
    if meta.len() <= HASHED_FILE_LIMIT {
        h.update_reader(std::fs::File::open(path)?)?;
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(&meta.ino().to_le_bytes());
    h.update(&meta.mtime_nsec().to_le_bytes());
    h.update(&meta.mtime().to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(pts: i64, len: usize) -> Released {
        Released {
            after_frame: 0,
            packet: Encoded {
                pts,
                dts: pts,
                duration: 1024,
                keyframe: true,
                data: Bytes::from(vec![0u8; len]),
            },
        }
    }

    #[test]
    fn the_least_recently_used_sound_makes_room() {
        let cache = SoundCache::new(4 * (1000 + 40));
        cache.put([1; 32], vec![packet(0, 1000)]);
        cache.put([2; 32], vec![packet(0, 1000)]);
        cache.put([3; 32], vec![packet(0, 1000)]);
        cache.put([4; 32], vec![packet(0, 1000)]);
        assert!(cache.get(&[1; 32]).is_some(), "1 is now the most recent");
        cache.put([5; 32], vec![packet(0, 1000)]);
        assert!(cache.get(&[2; 32]).is_none(), "2 was the least recent");
        for k in [1, 3, 4, 5] {
            assert!(cache.get(&[k; 32]).is_some(), "{k} stays");
        }
    }

    #[test]
    fn a_sound_larger_than_a_quarter_of_the_cache_is_not_kept() {
        let cache = SoundCache::new(4000);
        cache.put([1; 32], vec![packet(0, 1200)]);
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn the_key_follows_the_content_of_the_sound_files() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("music.mp3");
        std::fs::write(&file, b"first").expect("write");
        let plan = |name: &str| {
            let edit: crate::engine::edit::Edit = serde_json::from_value(serde_json::json!({
                "timeline": { "soundtrack": { "src": "music.mp3" }, "tracks": [{ "clips": [
                    { "asset": { "type": "title", "text": format!("Hello {name}") },
                      "start": 0, "length": 1 }
                ]}]},
                "output": { "format": "mp4", "resolution": "sd" }
            }))
            .expect("edit");
            crate::engine::plan::plan(&edit).expect("plan")
        };
        let sources = Sources::from([("music.mp3".to_owned(), file.clone())]);
        let jane = key(&plan("Jane"), &sources).expect("key");
        assert_eq!(
            key(&plan("John"), &sources),
            Some(jane),
            "another name in a title leaves the sound as it was"
        );
        std::fs::write(&file, b"other").expect("write");
        assert_ne!(
            key(&plan("Jane"), &sources),
            Some(jane),
            "new content, new key"
        );
        let mut louder = plan("Jane");
        louder.sounds[0].volume = 0.5;
        assert_ne!(key(&louder, &sources), key(&plan("Jane"), &sources));
        assert_eq!(key(&plan("Jane"), &Sources::new()), None, "no file, no key");
    }
}
