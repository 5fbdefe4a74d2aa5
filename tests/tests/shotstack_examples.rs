//! CONTRACT section 6: a template written for Shotstack renders in
//! Clipstream. The seed's example Edit — the request body of its render,
//! template and template-update examples alike, kept verbatim in
//! `tests/fixtures/shotstack-example-edit.json` — is stored as a dynamic
//! movie and rendered in every shape it asks for (the video, its poster and
//! its thumbnail).
//!
//! Two things differ from the seed's text, both because the seed cannot be
//! taken literally here: its sources live on S3, so the same paths are
//! served from loopback; and its `"background": "string"` is the OpenAPI
//! generator's name for the type, not a colour, so it becomes `#000000`.

use std::path::Path;

use clipstream_tests::media::{ffmpeg, ffprobe};
use clipstream_tests::{json, serve_files, Env};
use reqwest::Method;
use serde_json::{json, Value};

const S3: &str = "https://s3-ap-northeast-1.amazonaws.com";

#[test]
fn the_seeds_example_edit_renders_with_its_poster_and_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("video.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=640x360:r=25:d=10",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=10",
            "-pix_fmt",
            "yuv420p",
            "-shortest",
        ],
        &video,
    );
    let music = dir.path().join("music.mp3");
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=10"],
        &music,
    );
    let font = Path::new(env!("CARGO_MANIFEST_DIR")).join("../actors/fonts/DejaVuSans.ttf");
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (base, hits) = serve_files(vec![
        ("/my-bucket/video.mp4".into(), read(&video)),
        ("/my-bucket/music.mp3".into(), read(&music)),
        ("/my-bucket/open-sans.ttf".into(), read(&font)),
    ]);

    let seed = include_str!("../fixtures/shotstack-example-edit.json");
    let mut edit: Value = serde_json::from_str(&seed.replace(S3, &base)).unwrap();
    assert_eq!(
        edit["timeline"]["background"], "string",
        "the fixture is the seed's text"
    );
    edit["timeline"]["background"] = json!("#000000");

    let env = Env::with_settings(&[("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true")]);
    let api = env.client();
    let uid = api.create_project("shotstack");
    let r = api.put(&format!("/v1/sdl/{uid}/example"), edit.to_string());
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    let r = api
        .request(Method::POST, &format!("/v2/render/{uid}"))
        .json(&json!({ "movie": "example" }))
        .send()
        .unwrap();
    let (status, body) = json(r);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();

    let viewer = api.anonymous();
    for (file, content_type) in [
        (format!("{token}.mp4"), "video/mp4"),
        (format!("{token}-poster.jpg"), "image/jpeg"),
        (format!("{token}-thumb.jpg"), "image/jpeg"),
    ] {
        let r = viewer.get(&format!("/render/{file}"));
        assert_eq!(r.status(), 200, "{file}: {}", r.text().unwrap_or_default());
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            content_type,
            "{file}"
        );
        let path = dir.path().join(&file);
        std::fs::write(&path, r.bytes().unwrap()).unwrap();
        let probe = ffprobe(&path);
        let streams = probe["streams"].as_array().unwrap();
        let video = streams.iter().find(|s| s["codec_type"] == "video");
        assert!(video.is_some(), "{file} has a picture: {probe}");
        if file.ends_with(".mp4") {
            assert!(
                streams.iter().any(|s| s["codec_type"] == "audio"),
                "the video has its sound: {probe}"
            );
            let duration: f64 = probe["format"]["duration"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0);
            assert!(duration > 1.0, "{file}: {duration} s");
        }
    }
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "every source was fetched from loopback"
    );
}
