//! Hostile media (issue 5, item 2): truncated, corrupt, enormous-dimension,
//! endless-duration and decompression-bomb sources are answered 422 with a
//! message naming the problem, quickly and in bounded memory, and the
//! server goes on serving other renders.

use std::path::Path;
use std::time::{Duration, Instant};

use clipstream_tests::{assert_error, ffmpeg, files_under, Api, Env};
use serde_json::{json, Value};

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `png` with the size in its IHDR chunk replaced (and the CRC fixed), so
/// the header claims `width`×`height` over the original small picture.
fn claim_size(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    // Signature (8), length (4), "IHDR" (4), then width and height.
    assert_eq!(&out[12..16], b"IHDR");
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A WAV file whose RIFF and data sizes say "unknown" (0xFFFFFFFF), the
/// streaming convention: a reader that trusted it would wait forever.
fn endless_wav(wav: &[u8]) -> Vec<u8> {
    let mut out = wav.to_vec();
    out[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let data = out
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    out[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    out
}

/// Found by fuzzing (fuzz/regressions/media/): 38 bytes on which FFmpeg's
/// demuxer answers "invalid data" for ever without moving on, which spun
/// a render at 100% CPU until the packet reader bounded it.
const SPINNING_DEMUXER: [u8; 38] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x79, 0x69, 0x32, 0xed, 0x73, 0x32, 0x35, 0x36, 0x63, 0x6f, 0x6c, 0x6f, 0x72, 0xb1, 0x6f, 0x20,
    0x41, 0x01, 0x0d, 0x00, 0x5d, 0x00,
];

fn image_movie(src: &str) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": src }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

fn video_movie(src: &str) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "video", "src": src }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

fn upload(api: &Api, uid: &str, name: &str, body: Vec<u8>) {
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/{name}"), body).status(),
        201
    );
}

fn make(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    ffmpeg(args, &path);
    std::fs::read(path).unwrap()
}

#[test]
fn hostile_sources_are_422_naming_the_problem_within_bounded_time_and_memory() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("hostile");
    let dir = tempfile::tempdir().unwrap();
    let png = make(
        dir.path(),
        "small.png",
        &["-f", "lavfi", "-i", "color=c=red:s=64x36", "-frames:v", "1"],
    );
    let mp4 = make(
        dir.path(),
        "small.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=160x90:r=25:d=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let wav = make(
        dir.path(),
        "tone.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=48000",
        ],
    );
    // A real picture far over the 4096×4096 limit that compresses to a few
    // hundred kB: 6000×6000 of one colour, 108 MB once decoded.
    let bomb = make(
        dir.path(),
        "bomb.png",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=6000x6000",
            "-frames:v",
            "1",
            "-pix_fmt",
            "rgb24",
        ],
    );
    assert!(
        bomb.len() < 1 << 20,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    let mut corrupt = mp4.clone();
    // The box that indexes the samples, made unreadable.
    let moov = corrupt
        .windows(4)
        .position(|w| w == b"moov")
        .expect("a moov box");
    for b in &mut corrupt[moov + 4..(moov + 400).min(mp4.len())] {
        *b ^= 0x5a;
    }
    upload(&api, &uid, "truncated.png", png[..png.len() / 2].to_vec());
    upload(&api, &uid, "truncated.mp4", mp4[..mp4.len() / 3].to_vec());
    upload(&api, &uid, "corrupt.mp4", corrupt);
    upload(
        &api,
        &uid,
        "garbage.png",
        clipstream_tests::noise(5, 50_000),
    );
    upload(&api, &uid, "huge.png", claim_size(&png, 100_000, 100_000));
    upload(&api, &uid, "bomb.png", bomb);
    upload(&api, &uid, "endless.wav", endless_wav(&wav));
    upload(&api, &uid, "spinning.bin", SPINNING_DEMUXER.to_vec());

    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "truncated png",
            image_movie("truncated.png"),
            &["truncated.png"],
        ),
        (
            "truncated mp4",
            video_movie("truncated.mp4"),
            &["truncated.mp4"],
        ),
        ("corrupt mp4", video_movie("corrupt.mp4"), &["corrupt.mp4"]),
        ("garbage", image_movie("garbage.png"), &["garbage.png"]),
        (
            "enormous dimensions",
            image_movie("huge.png"),
            &["huge.png", "100000×100000", "4096×4096"],
        ),
        (
            "decompression bomb",
            image_movie("bomb.png"),
            &["bomb.png", "6000×6000", "limit"],
        ),
        // The same bomb read as video frames: no header check on that path,
        // the decoders' pixel limit holds.
        (
            "bomb as video",
            video_movie("bomb.png"),
            &["bomb.png", "6000×6000", "limit"],
        ),
        (
            "spinning demuxer",
            image_movie("spinning.bin"),
            &["spinning.bin", "corrupt packets"],
        ),
        // Audio that claims to go on forever is no video stream at all.
        (
            "endless as video",
            video_movie("endless.wav"),
            &["endless.wav", "video"],
        ),
    ];
    let anonymous = api.anonymous();
    // A good render first, so that what rendering itself costs is in the
    // baseline of peak memory.
    upload(&api, &uid, "ok.png", png.clone());
    let token = api.render_token(&uid, "fine", &image_movie("ok.png"), json!({}));
    assert_eq!(anonymous.get(&format!("/render/{token}.mp4")).status(), 200);
    let (_, baseline_kib) = env.server().memory_kib();
    for (i, (what, movie, words)) in cases.iter().enumerate() {
        let token = api.render_token(&uid, &format!("m{i}"), movie, json!({}));
        let started = Instant::now();
        let body = assert_error(
            anonymous.get(&format!("/render/{token}.mp4")),
            422,
            "bad_source",
        );
        let elapsed = started.elapsed();
        let message = body["message"].as_str().unwrap();
        eprintln!(
            "hostile media: {what}: 422 in {} ms: {message}",
            elapsed.as_millis()
        );
        for word in *words {
            assert!(message.contains(word), "{what}: {message:?} lacks {word:?}");
        }
        assert!(
            elapsed < Duration::from_secs(15),
            "{what}: answered in {elapsed:?}"
        );
    }
    // Decoded, the bomb alone would be 108 MB (and more converted): none
    // of it was ever allocated.
    let (_, peak_kib) = env.server().memory_kib();
    let growth_mib = peak_kib.saturating_sub(baseline_kib) / 1024;
    eprintln!(
        "hostile media: peak RSS {} MiB, {growth_mib} MiB over the baseline",
        peak_kib / 1024
    );
    assert!(growth_mib < 40, "peak RSS grew by {growth_mib} MiB");
    // An endless soundtrack is read for as long as the movie lasts, and no
    // longer: the render finishes at its own length.
    let endless = json!({
        "timeline": { "background": "#203040", "soundtrack": { "src": "endless.wav" },
            "tracks": [ { "clips": [ { "asset": { "type": "title", "text": "sound" },
                                       "start": 0, "length": 2 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    });
    let token = api.render_token(&uid, "endless", &endless, json!({}));
    let started = Instant::now();
    let r = anonymous.get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    assert!(!r.bytes().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));
    // Its last byte is out a moment before it is in the cache.
    let deadline = Instant::now() + Duration::from_secs(10);
    while clipstream_tests::json(anonymous.get(&format!("/v2/render/{token}/status"))).1["state"]
        != "done"
    {
        assert!(
            Instant::now() < deadline,
            "the render never reached the cache"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Nothing was cached from the failures, and the server still renders.
    let cached = files_under(&env.data_dir().join("renders"));
    assert_eq!(
        cached.len(),
        2,
        "the good and the endless-soundtrack renders: {cached:?}"
    );
    let token = api.render_token(&uid, "after", &image_movie("ok.png"), json!({ "x": 1 }));
    assert_eq!(anonymous.get(&format!("/render/{token}.mp4")).status(), 200);
}

#[test]
fn a_render_past_max_render_secs_is_stopped_and_its_worker_freed() {
    let env = Env::with_settings(&[
        ("CLIPSTREAM_RENDER_MAX_RENDER_SECS", "1"),
        ("CLIPSTREAM_RENDER_WORKERS", "1"),
    ]);
    let api = env.client();
    let uid = api.create_project("slow");
    let slow = json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "a long one" }, "start": 0, "length": 300 } ] } ] },
        "output": { "format": "mp4", "resolution": "hd", "fps": 25 }
    });
    let token = api.render_token(&uid, "slow", &slow, json!({}));
    let started = Instant::now();
    // The stream starts at once; it is cut off when the limit stops it.
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let _ = r.bytes();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "stopped after {elapsed:?}"
    );
    let (_, status) =
        clipstream_tests::json(api.anonymous().get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "bad_source", "{status}");
    assert!(
        status["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_render_secs"),
        "{status}"
    );
    assert!(files_under(&env.data_dir().join("renders")).is_empty());
    // The one worker is free again: the next render gets to its fetch
    // (which fails at once, so that the 1 s limit cannot interfere).
    let quick = api.render_token(&uid, "quick", &image_movie("none.png"), json!({}));
    let r = api.anonymous().get(&format!("/render/{quick}.mp4"));
    assert_error(r, 502, "source_unavailable");
}
