//! The blob store's contract (storage/src/blob/mod.rs), checked on both
//! implementations: the files store of one node and the S3 store every
//! node shares (on a real SeaweedFS).

use std::collections::HashSet;

use clipstream_storage::{BlobStore, Error, FilesStore, S3Options, S3Store, Space};
use clipstream_tests::noise;
use clipstream_tests::peers::seaweedfs::{SeaweedFs, ACCESS_KEY, SECRET_KEY};
use tokio::io::AsyncReadExt;

fn s3_options(weed: &SeaweedFs, bucket: &str, cache_bytes: u64) -> S3Options {
    S3Options {
        endpoint: weed.endpoint(),
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: SECRET_KEY.to_owned(),
        prefix: "inst1/".to_owned(),
        cache_bytes,
        min_free: 0,
    }
}

async fn put(store: &dyn BlobStore, body: &[u8]) -> String {
    let mut writer = store.writer(body.len() as u64).await.unwrap();
    for part in body.chunks(64 << 10) {
        writer.write(part).await.unwrap();
    }
    let blob = store.commit(writer).await.unwrap();
    assert_eq!(blob.size, body.len() as u64);
    assert_eq!(blob.hash, blake3::hash(body).to_hex().to_string());
    blob.id
}

async fn read(store: &dyn BlobStore, id: &str) -> Option<Vec<u8>> {
    let mut file = store.open(id).await.unwrap()?;
    let mut body = Vec::new();
    file.read_to_end(&mut body).await.unwrap();
    Some(body)
}

/// What both stores must do alike.
async fn conformance(store: &dyn BlobStore) {
    // write, commit, open, local_path
    let id = put(store, b"a body").await;
    assert_eq!(read(store, &id).await.as_deref(), Some(&b"a body"[..]));
    let path = store.local_path(&id).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"a body");

    // the limit: one byte too many is refused, and nothing is left
    let mut writer = store.writer(5).await.unwrap();
    writer.write(b"12345").await.unwrap();
    assert!(matches!(
        writer.write(b"6").await,
        Err(Error::TooLarge { limit: 5 })
    ));
    drop(writer);

    // remove
    let gone = put(store, b"to remove").await;
    store.remove(&gone).await;
    assert!(read(store, &gone).await.is_none(), "a removed blob is gone");
    assert!(store.open("../../etc/passwd").await.is_err());

    // chunks: put, read, replaced, removed
    for (n, body) in [
        (0u32, &b"chunk zero"[..]),
        (1, b"chunk one"),
        (1, b"chunk one again"),
    ] {
        let mut writer = store.writer(100).await.unwrap();
        writer.write(body).await.unwrap();
        store.put_chunk("up1", n, writer).await.unwrap();
    }
    let mut text = String::new();
    let mut chunk = store.open_chunk("up1", 1).await.unwrap();
    chunk.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "chunk one again");
    assert_eq!(
        store.stored_size(Space::Chunks, "up1/0").await.unwrap(),
        Some(10)
    );
    store.remove_chunks("up1").await;
    assert!(store.open_chunk("up1", 0).await.is_err(), "chunks removed");
    assert_eq!(
        store.stored_size(Space::Chunks, "up1/0").await.unwrap(),
        None
    );

    // import keeps the name and skips a body of the same size
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"imported").unwrap();
    let kept = "0123456789abcdef0123456789abcdef";
    assert!(store.import(Space::Blobs, kept, &file).await.unwrap());
    assert!(
        !store.import(Space::Blobs, kept, &file).await.unwrap(),
        "same size: skipped"
    );
    assert_eq!(read(store, kept).await.as_deref(), Some(&b"imported"[..]));

    // the sweep keeps what is referenced
    let referenced = HashSet::from([id.clone(), kept.to_owned()]);
    store
        .sweep(&referenced, &HashSet::new(), &HashSet::new())
        .unwrap();
    assert_eq!(read(store, &id).await.as_deref(), Some(&b"a body"[..]));
    assert_eq!(read(store, kept).await.as_deref(), Some(&b"imported"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_store_keeps_the_contract_and_sweeps_what_no_record_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FilesStore::open(dir.path(), 0).unwrap();
    conformance(&store).await;
    let young = put(&store, b"unreferenced").await;
    // One node: nothing else can be writing, whatever its age.
    assert!(
        store
            .sweep(&HashSet::new(), &HashSet::new(), &HashSet::new())
            .unwrap()
            >= 1
    );
    assert!(read(&store, &young).await.is_none());
    assert!(!store.shared());
}

#[test]
fn the_s3_store_keeps_the_contract_shares_bodies_and_renders_and_sweeps_only_old_orphans() {
    // The peer's client is blocking: it lives outside the runtime, and is
    // called from it through block_in_place.
    let weed = SeaweedFs::start();
    weed.create_bucket("blobs");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(s3_store(&weed));
}

async fn s3_store(weed: &SeaweedFs) {
    let node_a = tempfile::tempdir().unwrap();
    let a = S3Store::open(node_a.path(), &s3_options(weed, "blobs", 1 << 30)).unwrap();
    conformance(&a).await;
    assert!(a.shared());

    // Objects are named as documented, under the prefix.
    let id = put(&a, b"shared body").await;
    let keys = tokio::task::block_in_place(|| weed.keys("blobs"));
    assert!(keys.contains(&format!("inst1/blobs/{id}")), "{keys:?}");

    // Another node (its own data dir, its own small cache) reads it.
    let node_b = tempfile::tempdir().unwrap();
    let b = S3Store::open(node_b.path(), &s3_options(weed, "blobs", 40)).unwrap();
    assert_eq!(read(&b, &id).await.as_deref(), Some(&b"shared body"[..]));
    assert!(node_b.path().join("cache/blobs").join(&id).exists());

    // B's cache holds 40 bytes: a second body pushes the first copy out,
    // which is fetched again when read.
    let other = put(&a, &[7u8; 30]).await;
    assert_eq!(read(&b, &other).await.unwrap().len(), 30);
    assert!(
        !node_b.path().join("cache/blobs").join(&id).exists(),
        "evicted"
    );
    assert_eq!(read(&b, &id).await.as_deref(), Some(&b"shared body"[..]));
    assert!(
        std::fs::read_dir(node_b.path().join("cache/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no partial file is left in the cache"
    );

    // A body larger than one part goes up in parts.
    let big = noise(3, 17 << 20);
    let big_id = put(&a, &big).await;
    assert!(
        read(&b, &big_id).await.unwrap() == big,
        "the multipart body reads back"
    );
    assert!(tokio::task::block_in_place(|| weed.pending_multipart_uploads("blobs")).is_empty());

    // Renders: put by A, fetched by B into its own render file.
    let render = node_a.path().join("r.mp4");
    std::fs::write(&render, b"render bytes").unwrap();
    a.put_render("k1.mp4", &render).await.unwrap();
    let dest = node_b.path().join("renders/k1.mp4");
    assert!(b.fetch_render("k1.mp4", &dest).await.unwrap());
    assert_eq!(std::fs::read(&dest).unwrap(), b"render bytes");
    assert!(!b
        .fetch_render("k2.mp4", &node_b.path().join("renders/k2.mp4"))
        .await
        .unwrap());
    assert!(!node_b.path().join("renders/k2.mp4").exists());

    // A sweep from any node removes nothing young: unreferenced objects
    // may be another node's commit in progress.
    assert_eq!(
        tokio::task::block_in_place(|| b.sweep(&HashSet::new(), &HashSet::new(), &HashSet::new()))
            .unwrap(),
        0
    );
    assert_eq!(read(&a, &id).await.as_deref(), Some(&b"shared body"[..]));
    assert!(b
        .fetch_render("k1.mp4", &node_b.path().join("renders/again.mp4"))
        .await
        .unwrap());
    // ... but B's own copies of blobs no record names are B's to drop.
    assert!(!node_b.path().join("cache/blobs").join(&big_id).exists());

    a.remove_render("k1.mp4").await;
    assert!(!a
        .fetch_render("k1.mp4", &node_a.path().join("x.mp4"))
        .await
        .unwrap());
}

#[test]
fn an_s3_store_without_a_usable_endpoint_or_bucket_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = S3Options {
        endpoint: "ftp://127.0.0.1:1".into(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        prefix: String::new(),
        cache_bytes: 0,
        min_free: 0,
    };
    let e = S3Store::open(dir.path(), &options).err().unwrap();
    assert!(e.to_string().contains("s3_endpoint"), "{e}");
    options.endpoint = "http://127.0.0.1:1".into();
    options.bucket.clear();
    let e = S3Store::open(dir.path(), &options).err().unwrap();
    assert!(e.to_string().contains("s3_bucket"), "{e}");
}
