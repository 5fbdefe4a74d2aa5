//! The chunked-upload assembler: a sequence of chunk PUTs (any id, any
//! size, repeats) and `finished` calls, decoded from the input, checked
//! against a model: a chunk is accepted exactly when its id and size fit,
//! `finished` succeeds exactly when every chunk is there, and the asset is
//! then the chunks' latest bodies in order.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use clipstream_storage::{Error, Store, StoreOptions, UploadLimits};
use libfuzzer_sys::fuzz_target;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    uid: String,
    rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // On tmpfs when there is one: every step of an upload is fsynced.
        let dir = tempfile::Builder::new()
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "."
            })
            .expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let uid = rt.block_on(async {
            let key = store.create_account_with_key().await.expect("account");
            store
                .create_project(&key.account, "p")
                .await
                .expect("project")
                .uid
        });
        World {
            _dir: dir,
            store,
            uid,
            rt,
        }
    })
}

const LIMITS: UploadLimits = UploadLimits {
    max_chunk_count: 8,
    max_chunk_bytes: 16,
    max_asset_bytes: 100,
};

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let (Some(count), Some(size)) = (next(), next()) else {
        return;
    };
    let (count, size) = (u32::from(count % 10), u64::from(size % 20));
    w.rt.block_on(async {
        let begun = w
            .store
            .begin_upload(&w.uid, "a.bin", count, size, LIMITS)
            .await;
        let valid = (1..=LIMITS.max_chunk_count).contains(&count)
            && (1..=LIMITS.max_chunk_bytes).contains(&size)
            && u64::from(count) * size - size < LIMITS.max_asset_bytes;
        let upload = match begun {
            Ok(u) => {
                assert!(valid, "accepted {count}×{size}");
                u
            }
            Err(_) => {
                assert!(!valid, "refused {count}×{size}");
                return;
            }
        };
        let mut model: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        while let Some(op) = next() {
            if op % 4 == 3 {
                let finished = w
                    .store
                    .finish_upload(&w.uid, &upload.id, "application/octet-stream")
                    .await;
                let complete = (0..count).all(|id| model.contains_key(&id));
                match finished {
                    Ok(_) => {
                        assert!(complete, "finished with chunks missing");
                        let path = w
                            .store
                            .asset_local_path(&w.uid, "a.bin")
                            .await
                            .expect("asset");
                        let body = std::fs::read(path).expect("asset body");
                        let expected: Vec<u8> = model.values().flatten().copied().collect();
                        assert_eq!(body, expected, "the asset is the chunks in order");
                        return;
                    }
                    Err(e) => assert!(!complete, "a complete upload failed: {e}"),
                }
                continue;
            }
            let (Some(id), Some(len)) = (next(), next()) else {
                return;
            };
            let id = u32::from(id) % (count + 2);
            let len = usize::from(len) % (size as usize + 3);
            let body: Vec<u8> = (0..len).map(|i| op.wrapping_add(i as u8)).collect();
            let mut writer = w.store.new_chunk_body(&upload).await.expect("chunk body");
            let fits = id < count
                && len > 0
                && (len as u64) <= size
                && (id == count - 1 || len as u64 == size);
            if let Err(e) = writer.write(&body).await {
                assert!(
                    matches!(e, Error::TooLarge { .. }) && len as u64 > size,
                    "{e}"
                );
                continue;
            }
            match w.store.put_chunk(&w.uid, &upload.id, id, writer).await {
                Ok(_) => {
                    assert!(fits, "accepted chunk {id} of {len} bytes");
                    model.insert(id, body);
                }
                Err(e) => assert!(!fits, "refused chunk {id} of {len} bytes: {e}"),
            }
        }
    });
});
