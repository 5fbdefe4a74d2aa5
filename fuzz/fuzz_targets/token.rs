//! Token parsing: any string offered as `/render/<token>` or
//! `/v2/render/<token>/status` is either the token that was issued or
//! unknown, and is never anything else (no panic, no other request).
//! Likewise the capability of a hosted file: any string offered as a
//! `/hosted/<id>/<filename>` URL (a render's `src`, a hosted GET) finds the
//! one hosted file only by its exact id and name, in its own project.
#![no_main]

use std::sync::OnceLock;

use clipstream_storage::renders::is_token_shaped;
use clipstream_storage::{Error, MovieChoice, Store, StoreOptions};
use libfuzzer_sys::fuzz_target;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    token: String,
    /// The project and path of the one hosted file.
    project: String,
    hosted: String,
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
        let (token, project, hosted) = rt.block_on(async {
            let key = store.create_account_with_key().await.expect("account");
            let project = store
                .create_project(&key.account, "p")
                .await
                .expect("project");
            let mut body = store.new_body(1 << 10).await.expect("body");
            body.write(b"bytes").await.expect("write");
            store
                .put_asset(&project.uid, "a.mp4", "video/mp4", body)
                .await
                .expect("asset");
            let file = store
                .host_asset(&key.account, &project.uid, "a.mp4", "a.mp4", Some("r"), None)
                .await
                .expect("hosted file");
            let token = store
                .put_render_request(
                    &project.uid,
                    MovieChoice::One("m".into()),
                    Default::default(),
                    1,
                    None,
                )
                .await
                .expect("render request")
                .token;
            (token, project.uid, format!("/hosted/{}/a.mp4", file.id))
        });
        World {
            _dir: dir,
            store,
            token,
            project,
            hosted,
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
    for src in [s.to_owned(), format!("http://h{s}"), format!("http://h/hosted/{s}")] {
        // Any host: the id is the capability, wherever the URL says the
        // server is (a proxy, another name).
        let rest = src
            .strip_prefix("http://")
            .or_else(|| src.strip_prefix("https://"))
            .unwrap_or_default();
        let path = rest.find('/').map_or("", |at| &rest[at..]);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        // The file name may come percent-encoded; the id never does.
        let path = match path.rsplit_once('/') {
            Some((dir, name)) => format!(
                "{dir}/{}",
                percent_encoding::percent_decode_str(name).decode_utf8_lossy()
            ),
            None => path.to_owned(),
        };
        match w.store.hosted_asset_at(&w.project, &src) {
            Ok(Some(asset)) => {
                assert_eq!(path, w.hosted, "only the hosted file's own URL finds it");
                assert_eq!(asset.name, "a.mp4");
            }
            Ok(None) => assert_ne!(path, w.hosted),
            Err(e) => panic!("a lookup of {src:?} failed with {e}"),
        }
        assert!(
            w.store.hosted_asset_at("another", &src).unwrap().is_none(),
            "another project never finds it"
        );
    }
});
