//! Token parsing: any string offered as `/render/<token>` or
//! `/v2/render/<token>/status` is either the token that was issued or
//! unknown, and is never anything else (no panic, no other request).
#![no_main]

use std::sync::OnceLock;

use clipstream_storage::renders::is_token_shaped;
use clipstream_storage::{Error, MovieChoice, Store, StoreOptions};
use libfuzzer_sys::fuzz_target;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    token: String,
    rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let token = rt.block_on(async {
            let key = store.create_account_with_key().await.expect("account");
            let project = store
                .create_project(&key.account, "p")
                .await
                .expect("project");
            store
                .put_render_request(
                    &project.uid,
                    MovieChoice::One("m".into()),
                    Default::default(),
                    1,
                    None,
                )
                .await
                .expect("render request")
                .token
        });
        World {
            _dir: dir,
            store,
            token,
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = &w.rt;
    match w.store.render_request(s) {
        Ok(request) => {
            assert_eq!(s, w.token, "only the issued token is found");
            assert_eq!(request.token, w.token);
        }
        Err(Error::TokenNotFound) => assert_ne!(s, w.token),
        Err(e) => panic!("a lookup of {s:?} failed with {e}"),
    }
    if is_token_shaped(s) {
        assert_eq!(s.len(), 22);
    }
});
