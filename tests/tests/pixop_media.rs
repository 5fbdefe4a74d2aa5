//! The Pixop Media service (CONTRACT section 9, issue 20): a multipart
//! upload streams to the store in bounded memory, ingestion reads the
//! video's facts with libavformat (and `idet` for the field order) and
//! reports its progress, and downloads honour Range, ETag, If-None-Match
//! and HEAD.

use std::io::Read;

use clipstream_tests::media::ffmpeg;
use clipstream_tests::pixop::{assert_exception, create_user, file_part, Pixop};
use clipstream_tests::{json, Env, Noise};
use reqwest::Method;
use serde_json::json;

/// A 2-second 320×240 interlaced (top field first) H.264 video with
/// motion, so that `idet` can tell its fields apart.
fn interlaced_mp4() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("i.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=50:duration=2",
            "-vf",
            "interlace=scan=tff",
            "-c:v",
            "libx264",
            "-flags",
            "+ildct+ilme",
            "-x264-params",
            "tff=1",
            "-pix_fmt",
            "yuv420p",
        ],
        &path,
    );
    std::fs::read(path).expect("read")
}

fn setup() -> (Env, Pixop, String) {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let token = px.token(&user);
    (env, px, token)
}

#[test]
fn an_upload_is_ingested_with_its_facts_and_progress() {
    let (_env, px, token) = setup();
    let (_, made) = px.json(
        Method::PUT,
        "/videos/v1/video",
        &token,
        Some(json!({ "name": "i" })),
    );
    let id = made["videoId"].as_str().expect("videoId").to_owned();
    let bytes = interlaced_mp4();
    let len = bytes.len() as u64;
    let (status, v) = px.upload(
        &token,
        &id,
        false,
        file_part(
            std::io::Cursor::new(bytes),
            len,
            "interlaced.mp4",
            "video/mp4",
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["videoId"], id.as_str());
    assert_eq!(
        v["checkIngestProgressUrl"],
        px.url(&format!("/videos/v1/check-ingest-video-progress/{id}"))
            .as_str()
    );
    assert_eq!(
        v["processVideoUrl"],
        px.url(&format!("/videos/v1/process-video/{id}")).as_str()
    );

    // Progress rises to 100 with the metadata.
    let mut last = -1.0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, p) = px.json(
            Method::GET,
            &format!("/videos/v1/check-ingest-video-progress/{id}"),
            &token,
            None,
        );
        assert_eq!(status, 200, "{p}");
        let state = &p["ingestionState"];
        let percent = state["processingProgressPercent"]
            .as_f64()
            .expect("percent");
        assert!(
            percent >= last,
            "progress went back from {last} to {percent}"
        );
        last = percent;
        if state["ingestionStatus"] == "INGESTED" {
            assert_eq!(state["videoMetadataAvailable"], true);
            assert_eq!(percent, 100.0);
            break;
        }
        assert_ne!(state["ingestionStatus"], "FAILED", "{p}");
        assert!(
            std::time::Instant::now() < deadline,
            "ingestion took too long"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, v) = px.json(Method::GET, &format!("/videos/v1/video/{id}"), &token, None);
    let video = &v["video"];
    assert_eq!(video["upload"]["fileName"], "interlaced.mp4");
    assert_eq!(video["upload"]["fileSize"], len);
    assert_eq!(video["upload"]["hasFinishedUploading"], true);
    let m = &video["ingestion"]["metadata"];
    assert_eq!(m["codecName"], "h264", "{m}");
    assert!(
        m["containerName"]
            .as_str()
            .is_some_and(|c| c.contains("mp4")),
        "{m}"
    );
    assert_eq!(
        (m["frameWidth"].as_u64(), m["frameHeight"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(m["pixelFormat"]["name"], "yuv420p");
    assert_eq!(
        m["pixelFormat"]["chromaSubsampling"],
        json!({ "yuv": "4:2:0", "bits": 8 })
    );
    assert_eq!(m["averageFramerate"], 25.0);
    assert_eq!(m["totalFrames"], 50);
    assert!(
        (1900..=2100).contains(&m["durationInMillis"].as_u64().unwrap_or(0)),
        "{m}"
    );
    assert_eq!(m["size"], len);
    assert!(m["videoStreamSize"]
        .as_u64()
        .is_some_and(|s| s > 0 && s < len));
    assert_eq!(
        m["scanning"]["metadata"],
        json!({ "scanningType": "interlaced", "interlacedFieldOrder": "top_field" })
    );
    assert_eq!(
        m["scanning"]["heuristics"],
        json!({ "scanningType": "interlaced", "interlacedFieldOrder": "top_field" })
    );

    // A second upload to the same video is refused; so is a non-multipart
    // body, a form without a file and media for another's video.
    let (status, v) = px.upload(
        &token,
        &id,
        false,
        file_part(
            std::io::Cursor::new(vec![1u8; 10]),
            10,
            "x.mp4",
            "video/mp4",
        ),
    );
    assert_eq!(
        (status, v["exception"].as_str()),
        (409, Some("ConflictException")),
        "{v}"
    );
    let (_, made) = px.json(Method::PUT, "/videos/v1/video", &token, Some(json!({})));
    let empty = made["videoId"].as_str().expect("videoId");
    let raw = px
        .http
        .post(px.url(&format!("/media/v1/upload/{empty}")))
        .bearer_auth(&token)
        .body("raw")
        .send()
        .expect("POST");
    assert_exception(json(raw), 400, "BadRequestException");
    let form = reqwest::blocking::multipart::Form::new().text("note", "no file");
    assert_exception(
        px.upload(&token, empty, false, form),
        400,
        "BadRequestException",
    );
}

#[test]
fn light_ingestion_skips_the_deep_scanning_analysis_and_bad_media_fails() {
    let (_env, px, token) = setup();
    let (_, made) = px.json(Method::PUT, "/videos/v1/video", &token, Some(json!({})));
    let id = made["videoId"].as_str().expect("videoId").to_owned();
    let bytes = interlaced_mp4();
    let len = bytes.len() as u64;
    let (status, v) = px.upload(
        &token,
        &id,
        true,
        file_part(std::io::Cursor::new(bytes), len, "i.mp4", "video/mp4"),
    );
    assert_eq!(status, 200, "{v}");
    let video = px.wait_ingested(&token, &id, 60);
    let m = &video["ingestion"]["metadata"];
    assert_eq!(
        m["scanning"]["metadata"]["scanningType"], "interlaced",
        "{m}"
    );
    assert!(m["scanning"]["heuristics"].is_null(), "{m}");

    let (_, made) = px.json(Method::PUT, "/videos/v1/video", &token, Some(json!({})));
    let bad = made["videoId"].as_str().expect("videoId").to_owned();
    let (status, _) = px.upload(
        &token,
        &bad,
        false,
        file_part(
            std::io::Cursor::new(vec![7u8; 4096]),
            4096,
            "junk.mp4",
            "video/mp4",
        ),
    );
    assert_eq!(status, 200);
    let video = px.wait_ingested(&token, &bad, 60);
    let ingestion = &video["ingestion"];
    assert_eq!(
        ingestion["ingestionState"]["ingestionStatus"], "FAILED",
        "{ingestion}"
    );
    assert!(
        ingestion["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ingestion}"
    );
    assert_exception(
        px.json(
            Method::POST,
            &format!("/videos/v1/process-video/{bad}"),
            &token,
            Some(json!({})),
        ),
        409,
        "ConflictException",
    );
}

/// 50 MiB in and out as a stream: the server's memory grows by far less
/// than the file.
#[test]
fn a_50_mb_upload_streams_in_and_out_in_bounded_memory() {
    const LEN: u64 = 50 * 1024 * 1024;
    let (env, px, token) = setup();
    let (_, made) = px.json(Method::PUT, "/videos/v1/video", &token, Some(json!({})));
    let id = made["videoId"].as_str().expect("videoId").to_owned();
    let (rss_before, _) = env.server().memory_kib();
    let (status, v) = px.upload(
        &token,
        &id,
        true,
        file_part(Noise::new(9, LEN), LEN, "big.mov", "video/quicktime"),
    );
    assert_eq!(status, 200, "{v}");
    let mut r = px
        .http
        .get(px.url(&format!("/media/v1/download/original/{id}")))
        .bearer_auth(&token)
        .send()
        .expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], LEN.to_string().as_str());
    assert_eq!(r.headers()["content-type"], "video/quicktime");
    let mut expected = Noise::new(9, LEN);
    let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let n = r.read(&mut got).expect("read");
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).expect("noise");
        assert!(got[..n] == want[..n], "bytes differ near offset {total}");
        total += n as u64;
    }
    assert_eq!(total, LEN);
    let (_, peak) = env.server().memory_kib();
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 30,
        "the server's peak RSS grew by {growth_mib} MiB for a 50 MiB upload"
    );

    // Over the configured limit: 413, and nothing is kept.
    let small = Env::with_settings(&[("CLIPSTREAM_PIXOP_MAX_UPLOAD_BYTES", "1000")]);
    let px2 = Pixop::new(&small.server().url);
    let user = create_user(&small.data_dir(), "ada@example.org", "t", "correct horse");
    let token2 = px2.token(&user);
    let (_, made) = px2.json(Method::PUT, "/videos/v1/video", &token2, Some(json!({})));
    let id2 = made["videoId"].as_str().expect("videoId");
    assert_exception(
        px2.upload(
            &token2,
            id2,
            false,
            file_part(Noise::new(1, 5000), 5000, "x.mp4", "video/mp4"),
        ),
        413,
        "PayloadTooLargeException",
    );
    let (_, v) = px2.json(
        Method::GET,
        &format!("/videos/v1/video/{id2}"),
        &token2,
        None,
    );
    assert!(v["video"]["upload"].is_null(), "{v}");
}

#[test]
fn downloads_honour_range_etag_and_head() {
    let (_env, px, token) = setup();
    let bytes = interlaced_mp4();
    let (id, _) = px.ingested_video(&token, bytes.clone(), "clip.mp4");
    let path = format!("/media/v1/download/original/{id}");
    let get = |headers: &[(&str, &str)]| {
        let mut req = px.http.get(px.url(&path)).bearer_auth(&token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().expect("GET")
    };
    let full = get(&[]);
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(full.headers()["content-disposition"]
        .to_str()
        .expect("cd")
        .contains("clip.mp4"));
    assert_eq!(full.bytes().expect("body").as_ref(), bytes.as_slice());

    let part = get(&[("range", "bytes=10-19")]);
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().expect("range"),
        format!("bytes 10-19/{}", bytes.len())
    );
    assert_eq!(part.bytes().expect("body").as_ref(), &bytes[10..20]);
    assert_eq!(get(&[("if-none-match", &etag)]).status(), 304);
    assert_eq!(get(&[("if-none-match", "\"other\"")]).status(), 200);
    assert_eq!(
        get(&[("range", &format!("bytes={}-", bytes.len() + 5))]).status(),
        416
    );

    let head = px
        .http
        .head(px.url(&path))
        .bearer_auth(&token)
        .send()
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(head.headers()["etag"].to_str().expect("etag"), etag);
    assert!(head.bytes().expect("body").is_empty());

    // No processed media for an original; no download without a token.
    assert_exception(
        json(px.call(
            Method::GET,
            &format!("/media/v1/download/processed/{id}"),
            &token,
            None,
        )),
        400,
        "BadRequestException",
    );
    let anonymous = px.http.get(px.url(&path)).send().expect("GET");
    assert_exception(json(anonymous), 401, "NoJWTTokenFoundException");
}

/// The 38 bytes fuzzing found (fuzz/regressions/media/) make a demuxer
/// answer "invalid data" for ever: ingestion gives up on them and fails
/// instead of spinning a core.
#[test]
fn a_demuxer_that_never_moves_on_fails_ingestion() {
    let (_env, px, token) = setup();
    let (_, made) = px.json(Method::PUT, "/videos/v1/video", &token, Some(json!({})));
    let id = made["videoId"].as_str().expect("videoId").to_owned();
    let bytes = include_bytes!("../../fuzz/regressions/media/spinning-demuxer-38-bytes").to_vec();
    let len = bytes.len() as u64;
    let (status, v) = px.upload(
        &token,
        &id,
        false,
        file_part(std::io::Cursor::new(bytes), len, "spin.mp4", "video/mp4"),
    );
    assert_eq!(status, 200, "{v}");
    let video = px.wait_ingested(&token, &id, 60);
    let ingestion = &video["ingestion"];
    assert_eq!(
        ingestion["ingestionState"]["ingestionStatus"], "FAILED",
        "{ingestion}"
    );
}
