//! CONTRACT sections 4–6: a token's video is rendered on the first GET,
//! streamed while it renders, and served from the cache afterwards. The
//! checks read the result with ffprobe/ffmpeg: codecs, size, duration,
//! fragments, pixels at chosen times, and sound.

use std::io::Read;

use clipstream_tests::media::{
    at, close, duration, ffmpeg, ffprobe, fixture, fixture_with, frame, pixel, rms, token, upload,
};
use clipstream_tests::{assert_error, json};
use reqwest::Method;
use serde_json::{json, Value};

/// A blue background; a red picture at the top right from 0 to 4 s; a
/// yellow title at the bottom left throughout; a 440 Hz soundtrack.
fn movie(length: f64, mute: bool) -> Value {
    json!({
        "timeline": {
            "background": "#0000ff",
            "soundtrack": { "src": "tone.wav", "volume": 0.8 },
            "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "Hi {{NAME}}", "color": "#ffff00", "size": "large",
                                          "position": "bottomLeft" },
                               "start": 0, "length": length } ] },
                { "clips": [ { "asset": { "type": "image", "src": "red.png" }, "start": 0, "length": 4,
                               "fit": "none", "scale": 1, "position": "topRight" } ] }
            ]
        },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25, "mute": mute }
    })
}

/// The four-character types of the top-level boxes of an MP4 file.
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        boxes.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size;
    }
    boxes
}

#[test]
fn a_token_renders_to_fragmented_mp4_with_the_right_content() {
    let f = fixture();
    let token = token(&f, &movie(6.0, false), json!({ "NAME": "Jane" }));
    let api = f.env.client().anonymous();
    let r = api.get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let bytes = r.bytes().unwrap();
    let file = f.dir.path().join("out.mp4");
    std::fs::write(&file, &bytes).unwrap();

    let boxes = top_level_boxes(&bytes);
    assert_eq!(&boxes[..2], ["ftyp", "moov"], "{boxes:?}");
    let moofs = boxes.iter().filter(|b| *b == "moof").count();
    assert_eq!(
        moofs, 4,
        "one fragment per 2 s segment, the first cut short: {boxes:?}"
    );

    let probe = ffprobe(&file);
    let streams = probe["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio");
    assert_eq!(
        (
            video["codec_name"].as_str(),
            video["width"].as_u64(),
            video["height"].as_u64()
        ),
        (Some("h264"), Some(640), Some(360))
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(video["nb_read_frames"], "150");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 6.0).abs() <= 0.05, "duration {duration}");

    let (red, blue, yellow) = ([255, 0, 0], [0, 0, 255], [255, 255, 0]);
    assert!(
        close(pixel(&file, 2.0, 600, 40, 640), red),
        "the picture at the top right at 2 s"
    );
    assert!(
        close(pixel(&file, 2.0, 320, 180, 640), blue),
        "the background in the middle"
    );
    assert!(
        close(pixel(&file, 5.0, 600, 40, 640), blue),
        "the picture is gone at 5 s"
    );
    let third = frame(&file, 3.0);
    let title_pixels = (300..360)
        .flat_map(|y| (0..250).map(move |x| (x, y)))
        .filter(|&(x, y)| close(at(&third, x, y, 640), yellow))
        .count();
    let elsewhere = (0..60)
        .flat_map(|y| (0..250).map(move |x| (x, y)))
        .filter(|&(x, y)| close(at(&third, x, y, 640), yellow))
        .count();
    assert_eq!(elsewhere, 0, "no title at the top left");
    assert!(
        title_pixels > 50,
        "yellow title text at the bottom left: {title_pixels} pixels"
    );
    // lavfi's sine has an amplitude of 1/8: RMS 0.088, × 0.8 volume.
    let level = rms(&file, 1.0, 5.0);
    assert!(
        (0.05..0.09).contains(&level),
        "the soundtrack is audible at its volume: {level}"
    );
}

#[test]
fn mute_silences_the_mix() {
    let f = fixture();
    let token = token(&f, &movie(3.0, true), json!({ "NAME": "Jo" }));
    let bytes = f
        .env
        .client()
        .anonymous()
        .get(&format!("/render/{token}.mp4"))
        .bytes()
        .unwrap();
    let file = f.dir.path().join("mute.mp4");
    std::fs::write(&file, &bytes).unwrap();
    assert!(rms(&file, 0.5, 2.5) < 0.001);
}

#[test]
fn a_cached_render_has_full_http_semantics() {
    let f = fixture();
    let token = token(&f, &movie(3.0, false), json!({ "NAME": "Ann" }));
    let api = f.env.client().anonymous();
    let first = api.get(&format!("/render/{token}.mp4")).bytes().unwrap();
    // The cache records the render just after its last byte.
    let mut r = api.get(&format!("/render/{token}.mp4"));
    for _ in 0..50 {
        if r.headers().contains_key("content-length") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        r = api.get(&format!("/render/{token}.mp4"));
    }
    assert_eq!(
        r.headers()["content-length"],
        first.len().to_string().as_str()
    );
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(r.bytes().unwrap(), first, "the same bytes from the cache");
    let probe = api
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("range", "bytes=0-1")
        .send()
        .unwrap();
    assert_eq!(probe.status(), 206);
    assert_eq!(
        probe.headers()["content-range"],
        format!("bytes 0-1/{}", first.len()).as_str()
    );
    let r = api
        .request(Method::GET, &format!("/v2/render/{token}.mp4"))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let head = api
        .request(Method::HEAD, &format!("/render/{token}.mp4"))
        .send()
        .unwrap();
    assert_eq!(
        head.headers()["content-length"],
        first.len().to_string().as_str()
    );
    api.wait_done(&token, "mp4", 10);
    let (status, body) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(
        (status, body["state"].as_str(), body["progress"].as_u64()),
        (200, Some("done"), Some(100))
    );
    // The viewers' routes take GET and HEAD only, and any other shape of
    // path under /render is an unknown route.
    let posted = api.post(&format!("/render/{token}.mp4"));
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
    assert_error(posted, 405, "method_not_allowed");
    let deleted = api.delete(&format!("/render/{token}/init.mp4"));
    assert_error(deleted, 405, "method_not_allowed");
    for path in [
        "/render".to_owned(),
        "/render/".to_owned(),
        format!("/render/{token}/"),
        format!("/render/{token}/0.m4s/more"),
        format!("/renders/{token}.mp4"),
    ] {
        assert_error(api.get(&path), 404, "not_found");
    }
}

#[test]
fn concurrent_viewers_share_one_render_and_get_identical_bytes() {
    let f = fixture();
    let token = token(&f, &movie(4.0, false), json!({ "NAME": "Many" }));
    let url = f
        .env
        .client()
        .anonymous()
        .url(&format!("/render/{token}.mp4"));
    let viewers: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut body = Vec::new();
                reqwest::blocking::get(&url)
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                body
            })
        })
        .collect();
    let bodies: Vec<Vec<u8>> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0] && !b.is_empty()));
    f.env.client().anonymous().wait_done(&token, "mp4", 10);
    let renders = std::fs::read_dir(f.env.data_dir().join("renders"))
        .unwrap()
        .count();
    assert_eq!(renders, 1, "one render, one cached file");
    let metrics = f.env.client().anonymous().get("/metrics").text().unwrap();
    assert!(
        metrics.contains("clipstream_cache_misses_total 1\n"),
        "exactly one render started:\n{metrics}"
    );
    assert!(
        metrics.contains("clipstream_renders_finished_total{outcome=\"done\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("clipstream_time_to_first_byte_seconds_count "),
        "{metrics}"
    );
}

#[test]
fn the_stream_starts_long_before_the_render_ends() {
    let f = fixture();
    let token = token(&f, &movie(20.0, false), json!({ "NAME": "Slow" }));
    let api = f.env.client().anonymous();
    let mut r = api.get(&format!("/render/{token}.mp4"));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Read until one whole fragment (moof + mdat) has arrived.
    while !top_level_boxes(&got).contains(&"mdat".to_owned()) || top_level_boxes(&got).len() < 4 {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let (_, status) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["state"], "rendering", "{status}");
    assert!(status["progress"].as_u64().unwrap() < 100);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.len() > got.len());
}

#[test]
fn a_range_probe_during_the_render_is_answered() {
    let f = fixture();
    let token = token(&f, &movie(10.0, false), json!({ "NAME": "Safari" }));
    let api = f.env.client().anonymous();
    let r = api
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("range", "bytes=0-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().len(), 2);
}

#[test]
fn broken_or_missing_sources_fail_cleanly_and_nothing_is_cached() {
    let f = fixture();
    let api = f.env.client();
    assert_eq!(
        api.put(
            &format!("/v1/data/{}/broken.png", f.uid),
            b"this is not a picture".to_vec()
        )
        .status(),
        201
    );
    let mut m = movie(2.0, false);
    m["timeline"]["tracks"][1]["clips"][0]["asset"]["src"] = json!("broken.png");
    let bad = token(&f, &m, json!({ "NAME": "x" }));
    assert_error(
        api.anonymous().get(&format!("/render/{bad}.mp4")),
        422,
        "bad_source",
    );
    m["timeline"]["tracks"][1]["clips"][0]["asset"]["src"] = json!("missing.png");
    let missing = token(&f, &m, json!({ "NAME": "x" }));
    assert_error(
        api.anonymous().get(&format!("/render/{missing}.mp4")),
        502,
        "source_unavailable",
    );
    let (_, status) = json(api.anonymous().get(&format!("/v2/render/{bad}/status")));
    assert_eq!(status["state"], "failed");
    assert_eq!(
        std::fs::read_dir(f.env.data_dir().join("renders"))
            .unwrap()
            .count(),
        0
    );
    // The server goes on rendering.
    let good = token(&f, &movie(1.0, false), json!({ "NAME": "ok" }));
    assert_eq!(
        api.anonymous().get(&format!("/render/{good}.mp4")).status(),
        200
    );
    assert_error(
        api.anonymous().get("/render/AAAAAAAAAAAAAAAAAAAAAA.mp4"),
        404,
        "token_not_found",
    );
}

/// A one-file HTTP server on loopback: `/red.png` is the picture, anything
/// else 404. Counts the connections it gets.
fn source_server(png: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    clipstream_tests::serve_files(vec![("/red.png".into(), png)])
}

fn with_image_src(src: &str) -> Value {
    let mut m = movie(2.0, false);
    m["timeline"]["tracks"][1]["clips"][0]["asset"]["src"] = json!(src);
    m
}

#[test]
fn private_addresses_are_refused_without_sending_them_anything() {
    let f = fixture();
    let (url, hits) = source_server(std::fs::read(f.dir.path().join("red.png")).unwrap());
    let api = f.env.client().anonymous();
    for src in [
        format!("{url}/red.png"),
        url.replace("127.0.0.1", "[::ffff:127.0.0.1]") + "/red.png",
    ] {
        let t = token(&f, &with_image_src(&src), json!({ "NAME": src.clone() }));
        let body = assert_error(
            api.get(&format!("/render/{t}.mp4")),
            502,
            "source_unavailable",
        );
        assert!(
            body["message"].as_str().unwrap().contains("refused"),
            "{body}"
        );
    }
    // A name that resolves to loopback is refused after resolution.
    let by_name = url.replace("127.0.0.1", "localhost") + "/red.png";
    let t = token(&f, &with_image_src(&by_name), json!({ "NAME": "name" }));
    assert_error(
        api.get(&format!("/render/{t}.mp4")),
        502,
        "source_unavailable",
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the canary got no connection"
    );
}

#[test]
fn url_sources_are_fetched_when_allowed_and_a_404_is_a_502() {
    let f = fixture_with(&[("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true")]);
    let (url, hits) = source_server(std::fs::read(f.dir.path().join("red.png")).unwrap());
    let api = f.env.client().anonymous();
    let t = token(
        &f,
        &with_image_src(&format!("{url}/red.png")),
        json!({ "NAME": "url" }),
    );
    let bytes = api.get(&format!("/render/{t}.mp4")).bytes().unwrap();
    let file = f.dir.path().join("url.mp4");
    std::fs::write(&file, &bytes).unwrap();
    assert!(
        close(pixel(&file, 1.0, 600, 40, 640), [255, 0, 0]),
        "the fetched picture is drawn"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "fetched once"
    );
    let t = token(
        &f,
        &with_image_src(&format!("{url}/missing.png")),
        json!({ "NAME": "404" }),
    );
    let body = assert_error(
        api.get(&format!("/render/{t}.mp4")),
        502,
        "source_unavailable",
    );
    assert!(body["message"].as_str().unwrap().contains("404"), "{body}");
}

#[test]
fn a_video_clip_is_trimmed_and_fades_in() {
    let f = fixture();
    let clip = f.dir.path().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=white:s=320x180:r=25:d=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:duration=6",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &clip,
    );
    upload(&f.env.client(), &f.uid, "clip.mp4", &clip);
    let m = json!({
        "timeline": { "background": "#000000", "tracks": [ { "clips": [
            { "asset": { "type": "video", "src": "clip.mp4", "trim": 2, "volume": 1 }, "start": 0, "length": 3,
              "fit": "crop", "transition": { "in": "fade" } } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    });
    let t = token(&f, &m, json!({}));
    let bytes = f
        .env
        .client()
        .anonymous()
        .get(&format!("/render/{t}.mp4"))
        .bytes()
        .unwrap();
    let file = f.dir.path().join("video.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let grey = |t: f64| i32::from(pixel(&file, t, 320, 180, 640)[0]);
    let (start, middle, full) = (grey(0.0), grey(0.5), grey(2.0));
    assert!(start < 40, "black at the start of the fade: {start}");
    assert!(
        (90..170).contains(&middle),
        "half way through the fade: {middle}"
    );
    assert!(full > 230, "white once faded in: {full}");
    assert!(
        close(pixel(&file, 2.0, 5, 5, 640), [255, 255, 255]),
        "fit crop fills the frame"
    );
    assert!(rms(&file, 1.2, 2.8) > 0.02, "the clip's own sound plays");
}

#[test]
fn hls_lists_every_segment_at_once_and_ffmpeg_reads_it_while_it_renders() {
    let f = fixture();
    let token = token(&f, &movie(30.0, false), json!({ "NAME": "iPhone" }));
    let api = f.env.client().anonymous();
    let r = api.get(&format!("/render/{token}.m3u8"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let first = r.text().unwrap();
    assert!(first.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{first}");
    assert!(first.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{first}");
    assert!(
        first.contains(&format!("#EXT-X-MAP:URI=\"{token}/init.mp4\"")),
        "{first}"
    );
    // Every 2 s segment, with its exact length, before it is rendered.
    assert!(
        first.ends_with("#EXT-X-ENDLIST\n"),
        "from the start: {first}"
    );
    assert_eq!(first.matches(".m4s").count(), 15, "{first}");
    assert_eq!(first.matches("#EXTINF:2.00000,").count(), 15, "{first}");
    assert!(
        first.contains("#EXT-X-START:TIME-OFFSET=0,PRECISE=YES"),
        "players start at the beginning: {first}"
    );

    // ffmpeg reads the playlist over HTTP while the render runs; each
    // segment is answered once the render has it.
    let out = f.dir.path().join("hls.mp4");
    let url = api.url(&format!("/render/{token}.m3u8"));
    ffmpeg(&["-i", &url, "-c", "copy"], &out);
    let probe = ffprobe(&out);
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .cloned()
        .unwrap();
    assert_eq!(video["nb_read_frames"], "750", "all 30 s at 25 fps");

    let done = api.get(&format!("/render/{token}.m3u8")).text().unwrap();
    assert_eq!(done, first, "the playlist never changes");
    let mp4 = api.get(&format!("/render/{token}.mp4")).bytes().unwrap();
    // The segments are the very bytes of the MP4's fragments, in order.
    let init = api
        .get(&format!("/render/{token}/init.mp4"))
        .bytes()
        .unwrap();
    let mut joined = init.to_vec();
    for n in 0..15 {
        let r = api.get(&format!("/render/{token}/{n}.m4s"));
        assert_eq!(r.status(), 200);
        joined.extend_from_slice(&r.bytes().unwrap());
    }
    assert!(joined == mp4.as_ref(), "init and segments make the MP4");
    assert_eq!(api.get(&format!("/render/{token}/15.m4s")).status(), 404);
    assert_eq!(api.get(&format!("/render/{token}/9999.m4s")).status(), 404);
}

/// The audio stream of `file`, packet for packet, as ffmpeg copies it.
fn audio_packets(file: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a", "-c", "copy", "-f", "data", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn get_to_file(
    f: &clipstream_tests::media::Fixture,
    token: &str,
    name: &str,
) -> std::path::PathBuf {
    let r = f
        .env
        .client()
        .anonymous()
        .get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let file = f.dir.path().join(name);
    std::fs::write(&file, r.bytes().unwrap()).unwrap();
    file
}

fn sound_cache(f: &clipstream_tests::media::Fixture) -> (u64, u64) {
    let text = f.env.client().anonymous().get("/metrics").text().unwrap();
    let count = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("clipstream_sound_cache_{name}_total ")))
            .unwrap_or_else(|| panic!("no sound cache {name} in\n{text}"))
            .parse()
            .unwrap()
    };
    (count("hits"), count("misses"))
}

#[test]
fn another_viewer_of_a_template_gets_its_sound_encoded_once() {
    let f = fixture();
    let jane = get_to_file(
        &f,
        &token(&f, &movie(3.0, false), json!({ "NAME": "Jane" })),
        "jane.mp4",
    );
    assert_eq!(
        sound_cache(&f),
        (0, 1),
        "the first render mixes and encodes"
    );
    let john = get_to_file(
        &f,
        &token(&f, &movie(3.0, false), json!({ "NAME": "John" })),
        "john.mp4",
    );
    assert_eq!(
        sound_cache(&f),
        (1, 1),
        "the second takes the encoded sound"
    );
    assert_eq!(
        audio_packets(&john),
        audio_packets(&jane),
        "the same sound, packet for packet"
    );
    assert_ne!(
        frame(&john, 1.0),
        frame(&jane, 1.0),
        "each with its own title"
    );
    let level = rms(&john, 0.5, 2.5);
    assert!(
        (0.05..0.09).contains(&level),
        "the soundtrack at its volume: {level}"
    );
    assert_eq!(duration(&john), duration(&jane));

    // A new soundtrack under the same asset name is another sound.
    let low = f.dir.path().join("low.wav");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=30:sample_rate=48000",
        ],
        &low,
    );
    upload(&f.env.client(), &f.uid, "tone.wav", &low);
    let ann = get_to_file(
        &f,
        &token(&f, &movie(3.0, false), json!({ "NAME": "Ann" })),
        "ann.mp4",
    );
    assert_eq!(sound_cache(&f), (1, 2), "a replaced asset is mixed again");
    assert_ne!(audio_packets(&ann), audio_packets(&jane));
}
