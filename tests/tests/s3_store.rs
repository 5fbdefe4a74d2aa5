//! Issue 21, items 1 and 2: nodes that share a PostgreSQL repository and
//! an S3 bucket (storage.blobs = "s3") serve each other's assets and
//! finished renders, though each keeps its own data directory; and
//! `clipstream migrate` moves a one-machine installation there, after
//! which a node with an empty data directory serves the same tokens.

use std::path::Path;
use std::process::Command;

use clipstream_tests::media::{ffprobe, red_png, upload};
use clipstream_tests::peers::postgres::Postgres;
use clipstream_tests::peers::seaweedfs::{SeaweedFs, ACCESS_KEY, SECRET_KEY};
use clipstream_tests::{binary, created_key, json, Api, Env, Key, Server};
use reqwest::Method;
use serde_json::{json, Value};

const BUCKET: &str = "clips";

/// The settings of a node on `pg_url` and the bucket.
fn shared_settings(pg_url: &str, weed: &SeaweedFs) -> Vec<(String, String)> {
    [
        ("CLIPSTREAM_STORAGE_REPOSITORY", "postgres".to_owned()),
        ("CLIPSTREAM_STORAGE_POSTGRES_URL", pg_url.to_owned()),
        ("CLIPSTREAM_STORAGE_BLOBS", "s3".to_owned()),
        ("CLIPSTREAM_STORAGE_S3_ENDPOINT", weed.endpoint()),
        ("CLIPSTREAM_STORAGE_S3_BUCKET", BUCKET.to_owned()),
        ("CLIPSTREAM_STORAGE_S3_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        (
            "CLIPSTREAM_STORAGE_S3_SECRET_ACCESS_KEY",
            SECRET_KEY.to_owned(),
        ),
        ("CLIPSTREAM_STORAGE_S3_PREFIX", "install1/".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn as_env(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `clipstream ARGS --data-dir DIR` with `settings`, to completion.
fn cli(data_dir: &Path, settings: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(as_env(settings))
        .output()
        .expect("run clipstream")
}

fn key_on(data_dir: &Path, settings: &[(String, String)]) -> Key {
    created_key(&cli(data_dir, settings, &["keys", "create", "--json"]))
}

/// A red square over a title, 2 s, preview size: tiny to render.
fn movie() -> Value {
    json!({
        "timeline": { "background": "#0000ff", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Shared" },
                           "start": 0, "length": 2 } ] },
            { "clips": [ { "asset": { "type": "image", "src": "red.png" },
                           "start": 0, "length": 2, "fit": "none", "position": "topRight" } ] }
        ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

/// Through `api`: a project with `red.png`, movie `m`, and a token of it.
fn project_with_token(api: &Api, scratch: &Path) -> (String, String) {
    let uid = api.create_project("shared");
    let red = scratch.join("red.png");
    red_png(&red);
    upload(api, &uid, "red.png", &red);
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/m"), movie().to_string())
            .status(),
        201
    );
    let (status, body) = json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&json!({ "movie": "m", "params": {} }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    (uid, body["token"].as_str().unwrap().to_owned())
}

fn get_render(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    r.bytes().unwrap().to_vec()
}

fn assert_decodes(bytes: &[u8], scratch: &Path) {
    let path = scratch.join("got.mp4");
    std::fs::write(&path, bytes).unwrap();
    let probe = ffprobe(&path);
    let seconds: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration: {probe}"));
    assert!((seconds - 2.0).abs() < 0.3, "{seconds} s");
}

#[test]
fn a_render_made_on_one_node_is_served_with_ranges_by_another_that_never_had_the_file() {
    let pg = Postgres::start();
    let url = pg.create_database("two_nodes");
    let weed = SeaweedFs::start();
    weed.create_bucket(BUCKET);
    let settings = shared_settings(&url, &weed);
    let dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let key = key_on(&dir_a, &settings);
    let a = Server::start_with(&dir_a, &as_env(&settings));
    let b = Server::start_with(&dir_b, &as_env(&settings));
    let api_a = Api::new(&a.url, Some(&key));
    let api_b = Api::new(&b.url, Some(&key));

    // Made through A: the key, the project, its asset and movie are
    // records and objects B reads as well.
    let (_uid, token) = project_with_token(&api_a, dir.path());
    let keys = weed.keys(BUCKET);
    assert!(
        keys.iter().any(|k| k.starts_with("install1/blobs/")),
        "the asset went to the bucket: {keys:?}"
    );

    // Rendered through B, which fetches the asset from the bucket.
    let full = get_render(&api_b, &token);
    assert_decodes(&full, dir.path());
    api_b.wait_done(&token, "mp4", 60);
    let keys = weed.keys(BUCKET);
    assert!(
        keys.iter().any(|k| k.starts_with("install1/renders/")),
        "the finished render went to the bucket: {keys:?}"
    );
    assert!(
        std::fs::read_dir(dir_a.join("renders"))
            .unwrap()
            .next()
            .is_none(),
        "A has no render file of its own yet"
    );

    // A serves the cached render, a range of it too, without rendering.
    let started = |api: &Api| api.metric("clipstream_renders_started_total{reason=\"viewer\"}");
    let before = started(&api_a);
    let r = api_a
        .anonymous()
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("Range", "bytes=100-1099")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-1099/{}", full.len())
    );
    assert_eq!(r.bytes().unwrap().to_vec(), full[100..1100].to_vec());
    assert_eq!(get_render(&api_a, &token), full);
    assert_eq!(
        started(&api_a),
        before,
        "A rendered nothing: it fetched B's render"
    );
    assert!(
        std::fs::read_dir(dir_a.join("renders")).unwrap().count() == 1,
        "A keeps the fetched render in its own cache"
    );
}

#[test]
fn a_migrated_installation_serves_the_same_token_and_bytes_from_an_empty_data_dir() {
    // One machine, today's backends (sled and files).
    let mut env = Env::new();
    let api = env.client();
    let scratch = tempfile::tempdir().unwrap();
    let (uid, token) = project_with_token(&api, scratch.path());
    let full = get_render(&api, &token);
    api.wait_done(&token, "mp4", 60);
    let data = env.data_dir();
    env.server.take().expect("running").terminate();

    let pg = Postgres::start();
    let url = pg.create_database("migrated");
    let weed = SeaweedFs::start();
    weed.create_bucket(BUCKET);
    let settings = shared_settings(&url, &weed);
    let migrate = [
        "migrate", "--from", "sled", "--to", "postgres", "--blobs", "s3",
    ];
    let summary = |out: &std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("migrate prints JSON")
    };

    let mut dry = migrate.to_vec();
    dry.push("--dry-run");
    let counted = summary(&cli(&data, &settings, &dry));
    assert_eq!(counted["dry_run"], true);
    assert_eq!(counted["verified"], false);
    assert_eq!(counted["bodies"]["renders"]["count"], 1, "{counted}");
    assert!(weed.keys(BUCKET).is_empty(), "a dry run moves nothing");

    let done = summary(&cli(&data, &settings, &migrate));
    assert_eq!(done["verified"], true, "{done}");
    assert_eq!(done["records"]["projects"], 1, "{done}");
    assert_eq!(done["bodies"]["renders"]["imported"], 1, "{done}");
    assert!(
        done["bodies"]["blobs"]["imported"].as_u64() >= Some(1),
        "{done}"
    );
    // Run again (as after an interruption): every body is there already.
    let again = summary(&cli(&data, &settings, &migrate));
    assert_eq!(again["bodies"]["blobs"]["imported"], 0, "{again}");
    assert_eq!(
        again["bodies"]["blobs"]["skipped"], done["bodies"]["blobs"]["count"],
        "{again}"
    );

    // A node on the shared backends with nothing on its disk.
    let empty = scratch.path().join("empty");
    let node = Server::start_with(&empty, &as_env(&settings));
    let node_api = Api::new(&node.url, Some(&env.key));
    assert_eq!(
        get_render(&node_api, &token),
        full,
        "same token, same bytes"
    );
    // The key, the project and its asset came along: the body read from
    // the bucket is the one uploaded.
    let r = node_api.get(&format!("/v1/data/{uid}/red.png"));
    assert_eq!(r.status(), 200, "the migrated key reads the asset");
    assert_eq!(
        r.bytes().unwrap().to_vec(),
        std::fs::read(scratch.path().join("red.png")).unwrap()
    );
}

#[test]
fn migrate_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        dir.path(),
        &[],
        &["migrate", "--from", "sled", "--to", "postgres"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no sled repository"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        dir.path(),
        &[],
        &["migrate", "--from", "mysql", "--to", "postgres"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sled"));
}
