//! Pixop processing (CONTRACT section 9, issue 20): `process-video` runs a
//! job per filter family whose result, downloaded and probed with
//! ffprobe/ffmpeg, is what it promised: deinterlaced (field order and
//! `idet`), scaled, at the frame rate and frame count asked, in the codec,
//! profile, pixel format and container asked, interlaced with the field
//! order asked, denoised (a noise measure falls), clipped to the range.
//! Progress rises to 100; every field is checked (400 naming it).

use std::path::Path;
use std::process::Command;

use clipstream_tests::media::ffmpeg;
use clipstream_tests::pixop::{assert_exception, create_user, Pixop};
use clipstream_tests::Env;
use reqwest::Method;
use serde_json::{json, Value};

struct Fixture {
    _env: Env,
    px: Pixop,
    token: String,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let env = Env::new();
    let px = Pixop::new(&env.server().url);
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let token = px.token(&user);
    Fixture {
        _env: env,
        px,
        token,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

impl Fixture {
    /// Makes a video with the ffmpeg CLI from `args` and uploads it.
    fn source(&self, name: &str, args: &[&str]) -> String {
        let path = self.dir.path().join(name);
        ffmpeg(args, &path);
        let (id, video) =
            self.px
                .ingested_video(&self.token, std::fs::read(&path).expect("read"), name);
        assert_eq!(
            video["ingestion"]["ingestionState"]["ingestionStatus"], "INGESTED",
            "{video}"
        );
        id
    }

    /// Processes `source` with `body`; returns the answer and the path of
    /// the downloaded result.
    fn process(&self, source: &str, body: Value) -> (Value, std::path::PathBuf) {
        let (status, v) = self.px.json(
            Method::POST,
            &format!("/videos/v1/process-video/{source}"),
            &self.token,
            Some(body.clone()),
        );
        assert_eq!(status, 200, "{body} → {v}");
        let id = v["processedVideoId"]
            .as_str()
            .expect("processedVideoId")
            .to_owned();
        let (seen, state) = self.px.wait_processed(&self.token, &id, 120);
        if state["processingStatus"] != "DONE" {
            let (_, v) = self.px.json(
                Method::GET,
                &format!("/videos/v1/video/{id}"),
                &self.token,
                None,
            );
            panic!("{body}: {state}: {}", v["video"]["processing"]["error"]);
        }
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "progress went back: {seen:?}"
        );
        assert_eq!(seen.last().copied(), Some(100.0));
        let href = v["downloadMediaUrl"].as_str().expect("downloadMediaUrl");
        let response = self
            .px
            .http
            .get(href)
            .bearer_auth(&self.token)
            .send()
            .expect("GET");
        assert_eq!(response.status(), 200);
        let path = self.dir.path().join(format!("{id}.out"));
        std::fs::write(&path, response.bytes().expect("body")).expect("write");
        (v, path)
    }
}

/// ffprobe's view of the first video stream and the format.
fn probe(path: &Path) -> (Value, Value) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    (v["streams"][0].clone(), v["format"].clone())
}

/// A filter's printed metadata `key` over every frame, as numbers.
fn frame_values(path: &Path, filters: &str, key: &str) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args([
            "-vf",
            &format!("{filters},metadata=print:key={key}"),
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once(&format!("{key}="))?.1.trim().parse().ok())
        .collect()
}

/// `idet`'s final multi-frame counts: (tff, bff, progressive).
fn idet(path: &Path) -> (f64, f64, f64) {
    let last = |k: &str| {
        frame_values(path, "idet", &format!("lavfi.idet.multiple.{k}"))
            .last()
            .copied()
            .unwrap_or(0.0)
    };
    (last("tff"), last("bff"), last("progressive"))
}

const INTERLACED: &[&str] = &[
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
];
const PROGRESSIVE: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x240:rate=25:duration=2",
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
];

#[test]
fn each_deinterlacer_makes_progressive_frames() {
    let f = fixture();
    let source = f.source("interlaced.mp4", INTERLACED);
    let (tff, _, _) = {
        let path = f.dir.path().join("interlaced.mp4");
        idet(&path)
    };
    assert!(tff > 30.0, "the source is interlaced ({tff} tff frames)");
    for (deinterlacer, filter) in [
        ("yadif", "yadif"),
        ("bwdif", "bwdif"),
        ("weston3f", "w3fdif"),
        ("deint", "bwdif"),
    ] {
        let (answer, path) = f.process(&source, json!({ "deinterlacer": deinterlacer }));
        assert!(
            answer["filterGraph"]
                .as_str()
                .is_some_and(|g| g.starts_with(filter)),
            "{answer}"
        );
        if deinterlacer == "deint" {
            assert!(
                answer["openEquivalents"]["deinterlacer"]
                    .as_str()
                    .is_some_and(|e| e.contains("bwdif")),
                "{answer}"
            );
        }
        let (stream, _) = probe(&path);
        assert_eq!(
            stream["field_order"], "progressive",
            "{deinterlacer}: {stream}"
        );
        let (tff, bff, progressive) = idet(&path);
        assert!(
            progressive > tff + bff,
            "{deinterlacer}: idet saw tff {tff}, bff {bff}, progressive {progressive}"
        );
    }
}

#[test]
fn scaling_frame_rates_and_ranges_do_what_they_say() {
    let f = fixture();
    let source = f.source("p.mp4", PROGRESSIVE);
    let (_, path) = f.process(
        &source,
        json!({ "scaler": "scale", "resolution": { "width": 160, "aspectRatioTag": "4:3" } }),
    );
    let (s, _) = probe(&path);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(160), Some(120)),
        "{s}"
    );
    let (_, path) = f.process(&source, json!({ "resolution": { "tag": "2x" } }));
    let (s, _) = probe(&path);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(480)),
        "{s}"
    );
    // The result is ingested too: its own facts, when it is DONE.
    let (answer, _) = f.process(
        &source,
        json!({ "resolution": { "tag": "2x" }, "range": { "endPositionMilliseconds": 200 } }),
    );
    let id = answer["processedVideoId"]
        .as_str()
        .expect("processedVideoId");
    let (_, v) = f.px.json(
        Method::GET,
        &format!("/videos/v1/video/{id}"),
        &f.token,
        None,
    );
    let ingestion = &v["video"]["ingestion"];
    assert_eq!(
        ingestion["ingestionState"]["ingestionStatus"], "INGESTED",
        "{v}"
    );
    assert!(
        ingestion["metadata"].to_string().contains("640"),
        "{ingestion}"
    );

    for (converter, tag, rate, frames) in [
        ("fps", "film", "24/1", 48),
        ("fblend", "video_pal_fast", "50/1", 100),
        ("mcinterpolate", "video_pal_fast", "50/1", 100),
    ] {
        let (answer, path) = f.process(
            &source,
            json!({ "frameRateConverter": converter, "frameRate": { "tag": tag } }),
        );
        let (s, _) = probe(&path);
        assert_eq!(s["r_frame_rate"], rate, "{converter}: {s}");
        let counted: i64 = s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // Motion interpolation needs frames after the last: a few fewer.
        assert!(
            (counted - frames).abs() <= 4,
            "{converter}: {counted} frames, not about {frames}: {answer}"
        );
    }
    let (_, path) = f.process(&source, json!({ "frameRate": { "fps": 10.0 }, "range": { "startPositionMilliseconds": 500, "endPositionMilliseconds": 1500 } }));
    let (s, _) = probe(&path);
    assert_eq!(s["r_frame_rate"], "10/1", "{s}");
    let counted: i64 = s["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        (9..=11).contains(&counted),
        "a 1 s range at 10 fps gave {counted} frames"
    );
}

#[test]
fn codecs_profiles_pixel_formats_and_containers_are_the_ones_asked() {
    let f = fixture();
    let source = f.source("p.mp4", PROGRESSIVE);
    let cases = [
        (
            json!({ "mediaContainerCodec": { "container": "mov", "codec": "prores" }, "appleProresProfile": "hq" }),
            "prores",
            Some("HQ"),
            "yuv422p10le",
            "mov",
        ),
        // Coded from 10-bit 4:4:4; FFmpeg's decoder gives 4444 as 12 bits.
        (
            json!({ "mediaContainerCodec": { "container": "mov", "codec": "prores" }, "appleProresProfile": "4444" }),
            "prores",
            Some("4444"),
            "yuv444p12le",
            "mov",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "mxf", "codec": "dnxhd" }, "dnxhdHrProfile": "dnxhr_hq" }),
            "dnxhd",
            Some("DNXHR HQ"),
            "yuv422p",
            "mxf",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "mp4", "codec": "hevc" }, "bitrate": { "mbps": 0.5 } }),
            "hevc",
            Some("Main"),
            "yuv420p",
            "mp4",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "mts", "codec": "mpeg2" } }),
            "mpeg2video",
            None,
            "yuv420p",
            "mpegts",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "mov", "codec": "ffv1" }, "chromaSubsampling": { "yuv": "4:4:4", "bits": 10 } }),
            "ffv1",
            None,
            "yuv444p10le",
            "mov",
        ),
        (
            json!({ "mediaContainerCodec": { "codec": "h264" }, "chromaSubsampling": { "yuv": "4:2:2", "bits": 10 } }),
            "h264",
            Some("High 4:2:2"),
            "yuv422p10le",
            "mp4",
        ),
    ];
    for (body, codec, profile, pix_fmt, format) in cases {
        let (_, path) = f.process(&source, body.clone());
        let (s, fmt) = probe(&path);
        assert_eq!(s["codec_name"], codec, "{body}: {s}");
        if let Some(profile) = profile {
            assert_eq!(s["profile"], profile, "{body}: {s}");
        }
        assert_eq!(s["pix_fmt"], pix_fmt, "{body}: {s}");
        assert!(
            fmt["format_name"]
                .as_str()
                .is_some_and(|n| n.split(',').any(|x| x == format)),
            "{body}: {fmt}"
        );
    }
    // Bitrate asked is about the bitrate made.
    let (_, path) = f.process(&source, json!({ "bitrate": { "mbps": 2.0 } }));
    let (s, _) = probe(&path);
    let made: f64 = s["bit_rate"]
        .as_str()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0.0);
    assert!(
        (1_000_000.0..3_000_000.0).contains(&made),
        "asked 2 Mbps, made {made}"
    );
}

#[test]
fn interlaced_output_has_the_field_order_asked() {
    let f = fixture();
    let source = f.source(
        "p50.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=50:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    for (body, order, first) in [
        (
            json!({ "scanning": { "tag": "interlaced_tff" }, "frameRate": { "tag": "video_pal" } }),
            "tt",
            "tff",
        ),
        (
            json!({ "scanning": { "scanningType": "interlaced", "interlacedFieldOrder": "bottom_field" }, "frameRate": { "tag": "video_pal" },
                 "mediaContainerCodec": { "container": "mov", "codec": "prores" } }),
            "bb",
            "bff",
        ),
    ] {
        let (_, path) = f.process(&source, body.clone());
        let (s, _) = probe(&path);
        assert_eq!(s["field_order"], order, "{body}: {s}");
        assert_eq!(s["r_frame_rate"], "25/1", "{body}: {s}");
        let (tff, bff, progressive) = idet(&path);
        let seen = if first == "tff" { tff } else { bff };
        assert!(
            seen > progressive,
            "{body}: idet saw tff {tff}, bff {bff}, progressive {progressive}"
        );
    }
}

#[test]
fn denoising_lowers_the_noise_and_pixop_algorithms_say_what_runs() {
    let f = fixture();
    let source = f.source(
        "noisy.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=320x240:rate=25:duration=2",
            "-vf",
            "noise=alls=10:allf=t",
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let noise = |path: &Path| {
        let v = frame_values(path, "signalstats", "lavfi.signalstats.YDIF");
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let before = noise(&f.dir.path().join("noisy.mp4"));
    for (denoiser, equivalent) in [("hqdn3d", None), ("denoise", Some("nlmeans"))] {
        let (answer, path) = f.process(
            &source,
            json!({ "denoiser": denoiser, "bitrate": { "mbps": 20.0 } }),
        );
        if let Some(e) = equivalent {
            assert!(
                answer["openEquivalents"]["denoiser"]
                    .as_str()
                    .is_some_and(|s| s.contains(e)),
                "{answer}"
            );
        }
        let after = noise(&path);
        assert!(
            after < before * 0.8,
            "{denoiser}: frame-to-frame difference {before:.2} → {after:.2}"
        );
    }
    let (answer, _) = f.process(
        &source,
        json!({ "stabilizer": "dejit", "postProcessor": "filmgrain" }),
    );
    assert!(
        answer["openEquivalents"]["stabilizer"]
            .as_str()
            .is_some_and(|s| s.contains("deshake")),
        "{answer}"
    );
    assert!(
        answer["openEquivalents"]["postProcessor"]
            .as_str()
            .is_some_and(|s| s.contains("noise")),
        "{answer}"
    );
}

#[test]
fn every_field_is_checked_and_the_result_is_a_child_video() {
    let f = fixture();
    let source = f.source("p.mp4", PROGRESSIVE);
    let bad = [
        (
            json!({ "mediaContainerCodec": { "codec": "vp9" } }),
            "mediaContainerCodec.codec",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "avi" } }),
            "mediaContainerCodec.container",
        ),
        (
            json!({ "mediaContainerCodec": { "container": "mp4", "codec": "prores" } }),
            "mediaContainerCodec",
        ),
        (json!({ "appleProresProfile": "hq" }), "appleProresProfile"),
        (
            json!({ "mediaContainerCodec": { "codec": "prores" }, "appleProresProfile": "ultra" }),
            "appleProresProfile",
        ),
        (
            json!({ "mediaContainerCodec": { "codec": "dnxhd" }, "dnxhdHrProfile": "dnxhd_hq" }),
            "dnxhdHrProfile",
        ),
        (json!({ "scanning": { "tag": "sideways" } }), "scanning.tag"),
        (
            json!({ "scanning": { "tag": "auto", "scanningType": "progressive" } }),
            "scanning",
        ),
        (
            json!({ "scanning": { "scanningType": "progressive", "interlacedFieldOrder": "top_field" } }),
            "scanning.interlacedFieldOrder",
        ),
        (
            json!({ "mediaContainerCodec": { "codec": "hevc" }, "scanning": { "tag": "interlaced_tff" } }),
            "scanning",
        ),
        (
            json!({ "chromaSubsampling": { "yuv": "4:3:3" } }),
            "chromaSubsampling.yuv",
        ),
        (
            json!({ "chromaSubsampling": { "bits": 9 } }),
            "chromaSubsampling.bits",
        ),
        (
            json!({ "mediaContainerCodec": { "codec": "mpeg2" }, "chromaSubsampling": { "yuv": "4:4:4" } }),
            "chromaSubsampling",
        ),
        (json!({ "bitrate": { "mbps": 0.0 } }), "bitrate.mbps"),
        (
            json!({ "mediaContainerCodec": { "codec": "ffv1" }, "bitrate": { "mbps": 5.0 } }),
            "bitrate",
        ),
        (json!({ "deinterlacer": "magic" }), "deinterlacer"),
        (json!({ "denoiser": "x" }), "denoiser"),
        (json!({ "stabilizer": "x" }), "stabilizer"),
        (
            json!({ "scaler": "pabsr1", "resolution": { "tag": "2x" } }),
            "scaler",
        ),
        (
            json!({ "scaler": "dvres", "resolution": { "tag": "2x" } }),
            "scaler",
        ),
        (json!({ "scaler": "scale" }), "scaler"),
        (json!({ "clarityBoost": "high" }), "clarityBoost"),
        (json!({ "clarityBoost": "enormous" }), "clarityBoost"),
        (
            json!({ "resolution": { "tag": "hd_1080p", "width": 100 } }),
            "resolution",
        ),
        (
            json!({ "resolution": { "width": 100, "height": 100, "aspectRatioTag": "4:3" } }),
            "resolution",
        ),
        (json!({ "resolution": { "width": 8 } }), "resolution.width"),
        // The computed side is range-checked too: 16 wide at 16:9 is 9
        // high, 7680 wide at 4:3 is 5760 high.
        (
            json!({ "resolution": { "width": 16, "aspectRatioTag": "16:9" } }),
            "resolution",
        ),
        (
            json!({ "resolution": { "width": 7680, "aspectRatioTag": "4:3" } }),
            "resolution",
        ),
        (
            json!({ "resolution": { "height": 5000 } }),
            "resolution.height",
        ),
        (
            json!({ "resolution": { "width": 161, "height": 120 } }),
            "resolution",
        ),
        (
            json!({ "resolution": { "width": 160, "aspectRatioTag": "21:9" } }),
            "resolution.aspectRatioTag",
        ),
        (json!({ "frameRateConverter": "fps" }), "frameRateConverter"),
        (
            json!({ "frameRateConverter": "warp", "frameRate": { "fps": 25.0 } }),
            "frameRateConverter",
        ),
        (json!({ "frameRate": { "fps": 1000.0 } }), "frameRate.fps"),
        (
            json!({ "frameRate": { "tag": "film", "fps": 24.0 } }),
            "frameRate",
        ),
        (json!({ "frameRate": { "tag": "cinema" } }), "frameRate.tag"),
        (json!({ "postProcessor": "sepia" }), "postProcessor"),
        (
            json!({ "range": { "startPositionMilliseconds": 1500, "endPositionMilliseconds": 1000 } }),
            "range.endPositionMilliseconds",
        ),
        (
            json!({ "range": { "endPositionMilliseconds": 999999 } }),
            "range.endPositionMilliseconds",
        ),
        (
            json!({ "mediaContainerCodec": { "codec": "xdcam" } }),
            "resolution",
        ),
        (json!({ "colour": "red" }), "colour"),
    ];
    for (body, field) in bad {
        let got = f.px.json(
            Method::POST,
            &format!("/videos/v1/process-video/{source}"),
            &f.token,
            Some(body.clone()),
        );
        let v = assert_exception(got, 400, "BadRequestException");
        assert_eq!(
            v["field"], field,
            "{body}: expected a complaint about {field}, got {v}"
        );
    }

    // The processed video is a new video of the project, child of the
    // source, listed by parent; deleting the source deletes it too.
    let (answer, _) = f.process(&source, json!({}));
    let child = answer["processedVideoId"].as_str().expect("id").to_owned();
    assert_eq!(answer["sourceVideoId"], source.as_str());
    let (_, v) = f.px.json(
        Method::GET,
        &format!("/videos/v1/video/{child}"),
        &f.token,
        None,
    );
    assert_eq!(v["video"]["parentId"], source.as_str());
    assert_eq!(v["video"]["projectId"], answer["projectId"]);
    assert_eq!(
        v["video"]["processing"]["processingParameters"]["targetVideo"]["codec"]["name"],
        "h264"
    );
    let (_, listed) = f.px.json(
        Method::GET,
        &format!("/videos/v1/videos?parent-id={source}"),
        &f.token,
        None,
    );
    assert_eq!(
        listed["_embedded"]["videos"][0]["id"],
        child.as_str(),
        "{listed}"
    );
    assert_exception(
        f.px.json(
            Method::POST,
            &format!("/videos/v1/process-video/{child}"),
            &f.token,
            Some(json!({})),
        ),
        400,
        "BadRequestException",
    );
    let (status, gone) = f.px.json(
        Method::DELETE,
        &format!("/videos/v1/video/{source}"),
        &f.token,
        None,
    );
    assert_eq!(status, 200);
    let ids: Vec<&str> = gone["deletedVideos"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v["videoId"].as_str())
        .collect();
    assert_eq!(ids, vec![source.as_str(), child.as_str()]);
}

#[test]
fn a_job_cut_off_by_a_restart_is_failed_saying_so() {
    let mut env = Env::new();
    let user = create_user(&env.data_dir(), "ada@example.org", "t", "correct horse");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("long.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=20",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &path,
    );
    let px = Pixop::new(&env.server().url);
    let token = px.token(&user);
    let (source, _) = px.ingested_video(&token, std::fs::read(&path).expect("read"), "long.mp4");
    // Motion interpolation of 20 s runs long enough to be cut off.
    let (status, v) = px.json(
        Method::POST,
        &format!("/videos/v1/process-video/{source}"),
        &token,
        Some(json!({ "frameRateConverter": "mcinterpolate", "frameRate": { "tag": "video_hd_fast" } })),
    );
    assert_eq!(status, 200, "{v}");
    let id = v["processedVideoId"].as_str().expect("id").to_owned();
    let progress = format!("/videos/v1/check-process-video-progress/{id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, p) = px.json(Method::GET, &progress, &token, None);
        let state = &p["processingState"];
        if state["processingStatus"] == "PROCESSING"
            && state["processingProgressPercent"].as_f64() > Some(0.0)
        {
            break;
        }
        assert_ne!(
            state["processingStatus"], "DONE",
            "the job ended before it could be cut off"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started: {p}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.restart();
    let px = Pixop::new(&env.server().url);
    let token = px.token(&user);
    let (status, p) = px.json(Method::GET, &progress, &token, None);
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["processingState"]["processingStatus"], "FAILED", "{p}");
    // Failed where it was cut off, not at 100%.
    let percent = p["processingState"]["processingProgressPercent"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!((0.0..100.0).contains(&percent), "{p}");
    let (_, v) = px.json(Method::GET, &format!("/videos/v1/video/{id}"), &token, None);
    assert!(
        v["video"]["processing"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("restarted")),
        "{v}"
    );
    // Asked again, it runs.
    let (status, _) = px.json(
        Method::POST,
        &format!("/videos/v1/process-video/{source}"),
        &token,
        Some(json!({ "frameRate": { "tag": "film" } })),
    );
    assert_eq!(status, 200);
}

#[test]
fn the_sound_is_copied_where_the_container_takes_it() {
    let f = fixture();
    let source = f.source(
        "sound.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let streams = |path: &Path| {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,codec_name,duration",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
            .expect("ffprobe");
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["streams"].as_array().cloned().unwrap_or_default()
    };
    let (_, path) = f.process(
        &source,
        json!({ "range": { "startPositionMilliseconds": 500, "endPositionMilliseconds": 1500 } }),
    );
    let s = streams(&path);
    let audio: Vec<&Value> = s.iter().filter(|s| s["codec_type"] == "audio").collect();
    assert_eq!(audio.len(), 1, "{s:?}");
    assert_eq!(audio[0]["codec_name"], "aac");
    let seconds: f64 = audio[0]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    assert!(
        (0.8..1.3).contains(&seconds),
        "the sound of a 1 s range lasts {seconds} s"
    );
    // MXF takes no AAC: the pictures alone.
    let (_, path) = f.process(
        &source,
        json!({ "mediaContainerCodec": { "container": "mxf", "codec": "dnxhd" } }),
    );
    assert!(streams(&path).iter().all(|s| s["codec_type"] == "video"));
}

#[test]
fn broadcast_formats_xdcam_and_dnxhd_are_made_at_their_fixed_sizes() {
    let f = fixture();
    let source = f.source(
        "one.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let (_, path) = f.process(
        &source,
        json!({ "mediaContainerCodec": { "codec": "xdcam" }, "resolution": { "tag": "hd_1080p" } }),
    );
    let (s, fmt) = probe(&path);
    assert_eq!(
        (s["codec_name"].as_str(), s["pix_fmt"].as_str()),
        (Some("mpeg2video"), Some("yuv422p")),
        "{s}"
    );
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(s["profile"], "4:2:2", "{s}");
    assert_eq!(fmt["format_name"], "mxf", "{fmt}");
    let (_, path) = f.process(&source, json!({
        "mediaContainerCodec": { "container": "mxf", "codec": "dnxhd" }, "dnxhdHrProfile": "dnxhd_sq",
        "resolution": { "tag": "hd_1080p" },
    }));
    let (s, fmt) = probe(&path);
    assert_eq!(
        (s["codec_name"].as_str(), s["pix_fmt"].as_str()),
        (Some("dnxhd"), Some("yuv422p")),
        "{s}"
    );
    // The rate from what was written: bytes over the frames' duration.
    let number = |v: &Value| v.as_str().and_then(|b| b.parse::<f64>().ok());
    let frames = number(&s["nb_read_frames"]).expect("frame count");
    let size = number(&fmt["size"]).expect("size");
    let rate = size * 8.0 / (frames / 25.0);
    assert!(
        (100e6..150e6).contains(&rate),
        "DNxHD SQ at 25 fps is 120 Mb/s, not {rate}"
    );
    // 23.976 is 24000/1001 exactly: DNxHD has a bitrate for that rate
    // (a rate rounded to 2997/125 had none and was refused).
    let (_, path) = f.process(&source, json!({
        "mediaContainerCodec": { "container": "mxf", "codec": "dnxhd" }, "dnxhdHrProfile": "dnxhd_sq",
        "resolution": { "tag": "hd_1080p" }, "frameRate": { "fps": 23.976 },
        "range": { "endPositionMilliseconds": 200 },
    }));
    let (s, _) = probe(&path);
    assert_eq!(s["r_frame_rate"], "24000/1001", "{s}");
}

/// An anamorphic PAL source (720×576 shown 16:9, sample aspect 64:45)
/// scaled to square-pixel sizes is not stretched: the result's sample
/// aspect ratio is the filter graph's, and a size given through an
/// aspectRatioTag has square pixels.
#[test]
fn an_anamorphic_source_keeps_its_shape_when_scaled() {
    let f = fixture();
    let source = f.source(
        "anamorphic.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x576:rate=25:duration=0.2,setsar=64/45",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let square = |s: &Value| {
        s["sample_aspect_ratio"].is_null()
            || s["sample_aspect_ratio"] == "1:1"
            || s["sample_aspect_ratio"] == "0:1"
    };
    let (_, path) = f.process(&source, json!({ "resolution": { "tag": "hd_1080p" } }));
    let (s, _) = probe(&path);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert!(square(&s), "stretched: {s}");
    let (_, path) = f.process(
        &source,
        json!({ "resolution": { "width": 320, "aspectRatioTag": "4:3" } }),
    );
    let (s, _) = probe(&path);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert!(square(&s), "not square pixels: {s}");
}

/// MPEG-TS starts its clock at about 1.4 s: a range counts from the
/// video's own start, and the sound stays with the pictures.
#[test]
fn a_range_counts_from_the_input_s_own_start() {
    let f = fixture();
    let source = f.source(
        "late.ts",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            // A broadcast-like GOP: MPEG-TS seeks by timestamps, not to
            // key frames, so the decoder needs one soon after.
            "-g",
            "12",
            "-c:a",
            "libmp3lame",
            "-shortest",
        ],
    );
    let (_, path) = f.process(
        &source,
        json!({
            "mediaContainerCodec": { "container": "mp4", "codec": "h264" },
            "range": { "startPositionMilliseconds": 500, "endPositionMilliseconds": 1500 },
        }),
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,start_time,duration,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let of = |kind: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} stream: {v}"))
    };
    let number = |v: &Value| {
        v.as_str()
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    let (video, audio) = (of("video"), of("audio"));
    let frames = number(&video["nb_read_frames"]);
    assert!(
        (23.0..=27.0).contains(&frames),
        "a 1 s range at 25 fps: {video}"
    );
    let seconds = number(&audio["duration"]);
    assert!(
        (0.8..1.3).contains(&seconds),
        "the sound lasts {seconds} s: {audio}"
    );
    let apart = (number(&video["start_time"]) - number(&audio["start_time"])).abs();
    assert!(apart < 0.1, "sound and pictures {apart} s apart: {v}");
}

/// An upload's name near the file system's 255 bytes still processes: the
/// job's temporary file is not named after it.
#[test]
fn a_long_upload_name_processes() {
    let f = fixture();
    let name = format!("{}.mp4", "a".repeat(250));
    let source = f.source(&name, PROGRESSIVE);
    let (answer, path) = f.process(
        &source,
        json!({ "range": { "endPositionMilliseconds": 200 } }),
    );
    let (s, _) = probe(&path);
    assert_eq!(s["codec_type"], "video", "{answer}: {s}");
}

/// Deleting the source stops the job processing it: its temporary files
/// go at once, long before the job would have ended.
#[test]
fn deleting_the_source_stops_its_running_job() {
    let f = fixture();
    let source = f.source(
        "long.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    // Motion-compensated interpolation to 50 fps: tens of seconds of work.
    let (status, v) = f.px.json(
        Method::POST,
        &format!("/videos/v1/process-video/{source}"),
        &f.token,
        Some(json!({ "frameRateConverter": "mcinterpolate", "frameRate": { "tag": "video_pal_fast" } })),
    );
    assert_eq!(status, 200, "{v}");
    let id = v["processedVideoId"]
        .as_str()
        .expect("processedVideoId")
        .to_owned();
    let tmp = f._env.data_dir().join("tmp");
    let jobs = || {
        std::fs::read_dir(&tmp)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("pixop-"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = f.px.json(
            Method::GET,
            &format!("/videos/v1/check-process-video-progress/{id}"),
            &f.token,
            None,
        );
        let percent = v["processingState"]["processingProgressPercent"]
            .as_f64()
            .or_else(|| v["processing"]["processingState"]["processingProgressPercent"].as_f64())
            .unwrap_or(0.0);
        if percent > 0.0 && jobs() > 0 {
            assert!(percent < 50.0, "the job is too quick to test: {v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, v) = f.px.json(
        Method::DELETE,
        &format!("/videos/v1/video/{source}"),
        &f.token,
        None,
    );
    assert_eq!(status, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while jobs() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job ran on after its source was deleted"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
