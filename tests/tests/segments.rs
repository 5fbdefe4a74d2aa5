//! Issue 18, CONTRACT section 12: a render is a sequence of segments keyed
//! by what they show; a second token of a template renders only its
//! personalised seconds, and its file is byte for byte the one a fresh
//! server renders alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clipstream_tests::media::{at, ffmpeg, fixture, frame, token, upload, Fixture};
use clipstream_tests::{json, Api};
use reqwest::Method;
use serde_json::{json, Value};

/// Preview size: 512×288 at 15 fps; segments are 2 s (the default).
const W: u32 = 512;
const FPS: f64 = 15.0;
const SECONDS: f64 = 8.0;

/// Eight seconds: `Hello {{NAME}}` for the first two (segment 0), a video
/// over the whole length (crossing every splice), the red picture fading
/// in across the splice at 4 s and out again, and the tone as soundtrack.
fn movie() -> Value {
    movie_of(SECONDS)
}

/// [`movie`], `length` seconds long (the video holds its last frame).
fn movie_of(length: f64) -> Value {
    json!({
        "timeline": {
            "background": "#0000ff",
            "soundtrack": { "src": "tone.wav" },
            "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "chunk",
                                          "background": "#ffffff", "color": "#000000" },
                               "start": 0, "length": 2 } ] },
                { "clips": [ { "asset": { "type": "image", "src": "red.png" },
                               "start": 3.5, "length": 2, "fit": "none", "position": "topRight",
                               "transition": { "in": "fade", "out": "fade" } } ] },
                { "clips": [ { "asset": { "type": "video", "src": "moving.mp4" },
                               "start": 0, "length": length, "scale": 0.4,
                               "position": "bottomLeft" } ] }
            ]
        },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

/// A moving test pattern with a keyframe every 2 s, so that a segment's
/// video is read from a seek that lands before its start.
fn moving(dir: &Path) -> PathBuf {
    let path = dir.join("moving.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=8",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ],
        &path,
    );
    path
}

fn with_video(video: &Path) -> Fixture {
    let f = fixture();
    upload(&f.env.client(), &f.uid, "moving.mp4", video);
    f
}

fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().unwrap().to_vec();
    api.wait_done(token, "mp4", 60);
    bytes
}

fn status(api: &Api, token: &str) -> Value {
    let (code, body) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(code, 200, "{body}");
    body
}

fn segments(api: &Api, outcome: &str) -> u64 {
    api.metric(&format!(
        "clipstream_segments_total{{outcome=\"{outcome}\"}}"
    ))
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ffmpeg -xerror` decodes the whole file, pictures and sound, without
/// a word.
fn decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The presentation timestamps of a stream's packets, in its time base.
fn packet_times(path: &Path, stream: &str) -> Vec<i64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(["-show_entries", "packet=pts", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse::<i64>().expect(l))
        .collect()
}

/// Each packet starts one step after the one before: no gap, no
/// overlap, no jump at a splice.
fn continuous(times: &[i64], what: &str) {
    let step = times[1] - times[0];
    assert!(step > 0, "{what}: {times:?}");
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            step,
            "{what}: a gap or overlap at {}",
            pair[0]
        );
    }
}

/// The red channel of the picture's middle (top right, 80 px in).
fn red_of_picture(path: &Path, t: f64) -> u8 {
    at(&frame(path, t), W - 80, 45, W)[0]
}

/// Whether the middle row across the title shows its white box.
fn shows_title(path: &Path, t: f64) -> bool {
    let f = frame(path, t);
    (W / 2 - 40..W / 2 + 40).any(|x| at(&f, x, 144, W).iter().all(|c| *c > 200))
}

#[test]
fn a_second_token_renders_only_its_personalised_seconds_and_is_the_file_it_gives_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let moving = moving(scratch.path());
    let f = with_video(&moving);
    let api = f.env.client();
    let ann = token(&f, &movie(), json!({ "NAME": "Ann" }));
    let bob = token(&f, &movie(), json!({ "NAME": "Bob" }));

    video(&api, &ann);
    assert_eq!(segments(&api, "rendered"), 4, "8 s in 2 s segments");
    assert_eq!(segments(&api, "reused"), 0);
    let first = status(&api, &ann);
    assert_eq!(first["seconds_rendered"], 8.0, "{first}");
    assert_eq!(first["seconds_reused"], 0.0, "{first}");

    let reused = video(&api, &bob);
    assert_eq!(segments(&api, "rendered"), 5, "only the name's segment");
    assert_eq!(segments(&api, "reused"), 3);
    let second = status(&api, &bob);
    assert_eq!(second["seconds_rendered"], 2.0, "{second}");
    assert_eq!(second["seconds_reused"], 6.0, "{second}");
    assert_eq!(
        api.metric("clipstream_segment_seconds_total{outcome=\"reused\"}"),
        6
    );

    // The same token on a fresh server with an empty data directory.
    let alone = with_video(&moving);
    let alone_api = alone.env.client();
    let bob_alone = token(&alone, &movie(), json!({ "NAME": "Bob" }));
    let fresh = video(&alone_api, &bob_alone);
    assert_eq!(segments(&alone_api, "reused"), 0);
    assert!(
        reused == fresh,
        "reused segments give the same bytes ({} and {} bytes)",
        reused.len(),
        fresh.len()
    );

    // `parallel: 2`: segments rendered two at a time, the same bytes.
    let parallel = with_video(&moving);
    let parallel_api = parallel.env.client();
    assert_eq!(
        parallel_api
            .put(&format!("/v1/sdl/{}/m", parallel.uid), movie().to_string())
            .status(),
        201
    );
    let (code, body) = json(
        parallel_api
            .request(Method::POST, &format!("/v2/render/{}", parallel.uid))
            .json(&json!({ "movie": "m", "params": { "NAME": "Bob" }, "parallel": 2 }))
            .send()
            .unwrap(),
    );
    assert_eq!(code, 200, "{body}");
    let two_at_a_time = video(&parallel_api, body["token"].as_str().unwrap());
    assert_eq!(segments(&parallel_api, "rendered"), 4);
    assert!(
        two_at_a_time == fresh,
        "parallel 2 gives the bytes of parallel 1"
    );

    let path = save(scratch.path(), "bob.mp4", &reused);
    decodes_cleanly(&path);
    let frames = packet_times(&path, "v:0");
    assert_eq!(frames.len(), (SECONDS * FPS) as usize);
    continuous(&frames, "video");
    continuous(&packet_times(&path, "a:0"), "audio");

    // Both sides of the splice at 2 s: the name, then no title.
    assert!(shows_title(&path, 1.9));
    assert!(!shows_title(&path, 2.1));
    // The fade of the picture crosses the splice at 4 s: 3.5–4.5 s.
    let (before, after) = (red_of_picture(&path, 3.9), red_of_picture(&path, 4.1));
    assert!(
        (70..140).contains(&before) && (120..190).contains(&after) && after > before + 20,
        "the fade goes on across the splice: {before} then {after}"
    );
    assert!(red_of_picture(&path, 4.6) > 220, "fully in");
    assert!(red_of_picture(&path, 3.3) < 20, "not yet");
}

#[test]
fn a_changed_asset_renders_again_only_the_segments_that_show_it() {
    let scratch = tempfile::tempdir().unwrap();
    let f = with_video(&moving(scratch.path()));
    let api = f.env.client();
    let ann = token(&f, &movie(), json!({ "NAME": "Ann" }));
    video(&api, &ann);
    assert_eq!(segments(&api, "rendered"), 4);
    // The picture shows 3.5–5.5 s: segments 1 and 2.
    let green = scratch.path().join("green.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=green:s=160x90",
            "-frames:v",
            "1",
        ],
        &green,
    );
    upload(&api, &f.uid, "red.png", &green);
    let changed = video(&api, &ann);
    assert_eq!(segments(&api, "rendered"), 6, "the two showing the picture");
    assert_eq!(segments(&api, "reused"), 2, "the other two");
    let path = save(scratch.path(), "green.mp4", &changed);
    let middle = at(&frame(&path, 4.6), W - 80, 45, W);
    assert!(middle[1] > 90 && middle[0] < 40, "{middle:?}");
    decodes_cleanly(&path);
}

#[test]
fn segments_outlive_a_restart_and_the_next_token_reuses_them_to_the_byte() {
    let scratch = tempfile::tempdir().unwrap();
    let moving = moving(scratch.path());
    let mut f = with_video(&moving);
    let ann = token(&f, &movie(), json!({ "NAME": "Ann" }));
    let bob = token(&f, &movie(), json!({ "NAME": "Bob" }));
    let api = f.env.client();
    video(&api, &ann);
    assert_eq!(segments(&api, "rendered"), 4);
    // Written in the background: a segment is durable once counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.metric("clipstream_segments_stored_total") < 4 {
        assert!(Instant::now() < deadline, "4 segments not stored in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Killed, not stopped.
    f.env.restart();
    let api = f.env.client();
    assert_eq!(segments(&api, "rendered"), 0, "a new process");
    let reused = video(&api, &bob);
    assert_eq!(segments(&api, "rendered"), 1, "only the name's segment");
    assert_eq!(segments(&api, "reused"), 3, "from the data directory");
    let second = status(&api, &bob);
    assert_eq!(second["seconds_reused"], 6.0, "{second}");

    let alone = with_video(&moving);
    let bob_alone = token(&alone, &movie(), json!({ "NAME": "Bob" }));
    let fresh = video(&alone.env.client(), &bob_alone);
    assert!(
        reused == fresh,
        "segments read back from storage give the same bytes ({} and {} bytes)",
        reused.len(),
        fresh.len()
    );
    decodes_cleanly(&save(scratch.path(), "bob.mp4", &reused));
}

#[test]
fn an_hls_segment_far_ahead_of_a_cold_render_is_served_first_and_the_render_reuses_it() {
    let scratch = tempfile::tempdir().unwrap();
    let f = with_video(&moving(scratch.path()));
    let api = f.env.client();
    // 48 s: 24 segments; segment 20 is 40–42 s.
    let cold = token(&f, &movie_of(48.0), json!({ "NAME": "Seeker" }));
    let anonymous = api.anonymous();
    let playlist = anonymous
        .get(&format!("/render/{cold}.m3u8"))
        .text()
        .unwrap();
    assert_eq!(playlist.matches(".m4s").count(), 24, "{playlist}");
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");

    let r = anonymous.get(&format!("/render/{cold}/20.m4s"));
    assert_eq!(r.status(), 200);
    let early = r.bytes().unwrap().to_vec();
    let now = status(&api, &cold);
    assert!(
        now["state"] != "done" && now["progress"].as_u64().unwrap() < 80,
        "served before the render reached 40 s: {now}"
    );

    // ffmpeg reads the whole playlist without an error.
    let url = anonymous.url(&format!("/render/{cold}.m3u8"));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i", &url, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    api.wait_done(&cold, "mp4", 60);
    assert!(
        segments(&api, "reused") >= 1,
        "the render took segment 20 as it was"
    );
    // The segment served early is the finished file's segment 20.
    let r = anonymous.get(&format!("/render/{cold}/20.m4s"));
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().unwrap().to_vec() == early,
        "the same bytes, early or late"
    );
    let path = save(scratch.path(), "seeker.mp4", &video(&api, &cold));
    decodes_cleanly(&path);
    continuous(&packet_times(&path, "v:0"), "video");
    continuous(&packet_times(&path, "a:0"), "audio");
}

#[test]
fn players_asking_for_the_same_far_segment_at_once_share_one_render_of_it() {
    let scratch = tempfile::tempdir().unwrap();
    let f = with_video(&moving(scratch.path()));
    let api = f.env.client();
    let cold = token(&f, &movie_of(48.0), json!({ "NAME": "Crowd" }));
    let seeks = |outcome: &str| {
        api.metric(&format!(
            "clipstream_hls_seeks_total{{outcome=\"{outcome}\"}}"
        ))
    };
    let players = 4;
    let start = std::sync::Arc::new(std::sync::Barrier::new(players));
    let bodies: Vec<Vec<u8>> = (0..players)
        .map(|_| {
            let (anonymous, start) = (api.anonymous(), start.clone());
            let path = format!("/render/{cold}/20.m4s");
            std::thread::spawn(move || {
                start.wait();
                let r = anonymous.get(&path);
                assert_eq!(r.status(), 200);
                r.bytes().unwrap().to_vec()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("a player"))
        .collect();
    assert!(bodies.iter().all(|b| b == &bodies[0] && !b.is_empty()));
    assert_eq!(seeks("rendered"), 1, "one render of segment 20");
    assert_eq!(seeks("joined"), players as u64 - 1);
    api.wait_done(&cold, "mp4", 60);
}
