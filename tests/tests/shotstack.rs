//! The Shotstack-compatible API (CONTRACT section 7, issue 17), what all of
//! it shares: `x-api-key` authentication, Shotstack's envelope, the `v1`
//! and `stage` stages; and `GET edit/{stage}/probe/{url}`. Shotstack's own
//! SDKs (PyPI and npm `shotstack-sdk`, installed by scripts/peers.sh) are
//! pointed at the test server unchanged; what they cannot reach is checked
//! over plain HTTP. Renders and templates, Serve and Ingest have suites of
//! their own (`shotstack_edit`, `shotstack_serve`, `shotstack_ingest`).

use std::sync::atomic::Ordering;

use clipstream_tests::sdk;
use clipstream_tests::{ffmpeg, json, serve_files, Env};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// A 2-second 320×240 H.264 video with AAC sound, served by the test at
/// `<base>/small.mp4`.
fn small_mp4() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (base, hits) = serve_files(vec![(
        "/small.mp4".into(),
        clipstream_tests::media::small_mp4(),
    )]);
    (format!("{base}/small.mp4"), hits)
}

/// A server whose fetches may reach the test's loopback file server.
fn env() -> Env {
    Env::with_settings(&[("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true")])
}

fn api_key(env: &Env) -> String {
    format!("{}:{}", env.key.key, env.key.secret)
}

fn python_probe(host: &str, key: &str, url: &str) -> Value {
    sdk::python("probe.py", &[host, key, url])
}

fn node_probe(host: &str, key: &str, url: &str) -> Value {
    sdk::node("probe.js", &[host, key, url])
}

/// The facts every probe of `small_mp4` must give, in FFprobe's shape under
/// `response.metadata`, as Shotstack's SDK examples read them.
fn assert_small_mp4(answer: &Value, url: &str) {
    let response = &answer["ok"];
    assert_eq!(response["success"], true, "{answer}");
    let metadata = &response["response"]["metadata"];
    let streams = metadata["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["width"], 320);
    assert_eq!(video["height"], 240);
    assert_eq!(video["r_frame_rate"], "25/1");
    assert!(video.get("tags").is_none(), "upright: no rotate tag");
    let duration: f64 = video["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream");
    assert_eq!(audio["codec_name"], "aac");
    assert!(audio.get("width").is_none(), "no nulls, no sizes for sound");
    let format = &metadata["format"];
    assert_eq!(format["filename"], url);
    assert_eq!(format["nb_streams"], 2);
    assert!(format["format_name"].as_str().unwrap().contains("mp4"));
    let duration: f64 = format["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
}

#[test]
fn the_python_sdk_probes_a_video_on_both_stages() {
    let (url, _) = small_mp4();
    let env = env();
    let key = api_key(&env);
    for stage in ["v1", "stage"] {
        let host = format!("{}/edit/{stage}", env.server().url);
        assert_small_mp4(&python_probe(&host, &key, &url), &url);
    }
}

#[test]
fn the_node_sdk_probes_a_video() {
    let (url, _) = small_mp4();
    let env = env();
    let host = format!("{}/edit/v1", env.server().url);
    assert_small_mp4(&node_probe(&host, &api_key(&env), &url), &url);
}

#[test]
fn a_wrong_key_surfaces_as_the_sdks_own_exception() {
    let (url, hits) = small_mp4();
    let env = env();
    let host = format!("{}/edit/v1", env.server().url);
    let wrong_secret = format!("{}:not-the-secret", env.key.key);
    let answer = python_probe(&host, &wrong_secret, &url);
    assert_eq!(answer["exception"], "ForbiddenException", "{answer}");
    assert_eq!(answer["status"], 403);
    // The key id alone is not a secret: it never authenticates.
    let answer = python_probe(&host, &env.key.key, &url);
    assert_eq!(answer["exception"], "UnauthorizedException", "{answer}");
    assert_eq!(answer["status"], 401);
    let answer = node_probe(&host, &wrong_secret, &url);
    assert_eq!(answer["status"], 403, "{answer}");
    let answer = node_probe(&host, &env.key.key, &url);
    assert_eq!(answer["status"], 401, "{answer}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was fetched");
}

/// `encodeURIComponent`, as the SDKs encode the probe's `{url}`.
fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn shotstack(env: &Env, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let client = clipstream_tests::http_client(Duration::from_secs(60));
    let mut req = client.request(method, format!("{}{path}", env.server().url));
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    json(req.send().unwrap())
}

/// Shotstack's error envelope, with the stable code in `response.error`.
fn assert_failure(answer: &(u16, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(body["response"]["error"]["code"], code, "{body}");
}

#[test]
fn over_plain_http_stages_keys_and_errors_are_shotstacks() {
    let (url, _) = small_mp4();
    let env = env();
    let key = api_key(&env);
    let probe = format!("/edit/stage/probe/{}", encode_component(&url));

    let (status, body) = shotstack(&env, Method::GET, &probe, Some(&key));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["response"]["metadata"]["streams"][0]["width"], 320);

    // Any other stage is a 404 in the envelope.
    let other = probe.replace("/edit/stage/", "/edit/v2/");
    assert_failure(
        &shotstack(&env, Method::GET, &other, Some(&key)),
        404,
        "not_found",
    );
    assert_failure(
        &shotstack(&env, Method::GET, "/serve/beta/assets/x", Some(&key)),
        404,
        "not_found",
    );

    // No key, the key id alone, a wrong secret; HTTP Basic is not this
    // API's way in either.
    assert_failure(
        &shotstack(&env, Method::GET, &probe, None),
        401,
        "unauthorized",
    );
    assert_failure(
        &shotstack(&env, Method::GET, &probe, Some(&env.key.key)),
        401,
        "unauthorized",
    );
    assert_failure(
        &shotstack(
            &env,
            Method::GET,
            &probe,
            Some(&format!("{}:x", env.key.key)),
        ),
        403,
        "unauthorized",
    );
    let basic = env.client().get(&probe);
    assert_eq!(basic.status(), 401);

    // A URL that is not one encoded segment, not a URL, or not http(s).
    for bad in [
        format!("/edit/v1/probe/{url}"),
        "/edit/v1/probe/not%20a%20url".to_owned(),
        format!("/edit/v1/probe/{}", encode_component("file:///etc/passwd")),
    ] {
        assert_failure(
            &shotstack(&env, Method::GET, &bad, Some(&key)),
            400,
            "invalid_url",
        );
    }

    // A source that is not media, and one that is not there.
    let (base, _) = serve_files(vec![("/text.mp4".into(), b"just some text".to_vec())]);
    let text = format!(
        "/edit/v1/probe/{}",
        encode_component(&format!("{base}/text.mp4"))
    );
    let answer = shotstack(&env, Method::GET, &text, Some(&key));
    assert_failure(&answer, 400, "not_media");
    let missing = format!(
        "/edit/v1/probe/{}",
        encode_component(&format!("{base}/gone.mp4"))
    );
    let answer = shotstack(&env, Method::GET, &missing, Some(&key));
    assert_failure(&answer, 400, "source_unavailable");
    assert!(
        answer.1["message"].as_str().unwrap().contains("404"),
        "{}",
        answer.1
    );
}

#[test]
fn a_private_address_is_refused_without_a_connection() {
    let (url, canary) = small_mp4();
    let env = Env::new();
    let probe = format!("/edit/v1/probe/{}", encode_component(&url));
    let answer = shotstack(&env, Method::GET, &probe, Some(&api_key(&env)));
    assert_failure(&answer, 400, "invalid_url");
    assert!(
        answer.1["message"].as_str().unwrap().contains("private"),
        "{}",
        answer.1
    );
    assert_eq!(canary.load(Ordering::SeqCst), 0, "the canary got nothing");
}

#[test]
fn what_the_seed_does_not_have_is_a_404_in_the_envelope() {
    let env = env();
    let key = api_key(&env);
    assert_failure(
        &shotstack(&env, Method::GET, "/edit/v1/nothing", Some(&key)),
        404,
        "not_found",
    );
}

#[test]
fn the_x_api_key_shares_the_failed_auth_throttle_with_http_basic() {
    let env = Env::with_settings(&[
        ("CLIPSTREAM_LIMITS_AUTH_FAILURES", "3"),
        ("CLIPSTREAM_LIMITS_AUTH_FAILURE_WINDOW_SECS", "60"),
    ]);
    let wrong = format!("{}:wrong", env.key.key);
    let probe = format!(
        "/edit/v1/probe/{}",
        encode_component("http://example.com/a.mp4")
    );
    for _ in 0..3 {
        assert_failure(
            &shotstack(&env, Method::GET, &probe, Some(&wrong)),
            403,
            "unauthorized",
        );
    }
    let answer = shotstack(&env, Method::GET, &probe, Some(&api_key(&env)));
    assert_failure(&answer, 429, "too_many_failures");
    // The same address is throttled on the ImpossibleFX API too.
    assert_eq!(env.client().get("/v1/list/project").status(), 429);
}

#[test]
fn a_rotated_video_carries_ffprobes_rotate_tag() {
    let dir = tempfile::tempdir().unwrap();
    let upright = dir.path().join("upright.mp4");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1"],
        &upright,
    );
    // As a phone records portrait video: upright pixels, a display matrix.
    let rotated = dir.path().join("rotated.mp4");
    let input = upright.to_str().unwrap();
    ffmpeg(
        &["-i", input, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &rotated,
    );
    // The tag is the display matrix's angle as FFprobe prints it today,
    // negated into 0..360: what FFprobe's `tags.rotate` always said.
    let local = clipstream_tests::media::ffprobe(&rotated);
    let angle = local["streams"][0]["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()))
        .expect("ffprobe sees a rotation");
    let expected = (-angle).rem_euclid(360);
    assert_ne!(expected, 0);

    let (base, _) = serve_files(vec![(
        "/rotated.mp4".into(),
        std::fs::read(&rotated).unwrap(),
    )]);
    let env = env();
    let probe = format!(
        "/edit/v1/probe/{}",
        encode_component(&format!("{base}/rotated.mp4"))
    );
    let (status, body) = shotstack(&env, Method::GET, &probe, Some(&api_key(&env)));
    assert_eq!(status, 200, "{body}");
    let video = &body["response"]["metadata"]["streams"][0];
    assert_eq!(video["tags"]["rotate"], expected.to_string(), "{body}");
    // Stored sizes, as FFprobe gives them: the picture is not turned.
    assert_eq!(
        (video["width"].clone(), video["height"].clone()),
        (64.into(), 48.into())
    );
}
