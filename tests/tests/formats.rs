//! CONTRACT sections 5–6: every output format of the composition language
//! over `GET /render/<token>.<ext>`, and every output option. Results are
//! read back with ffprobe/ffmpeg: codecs, sizes, frame counts, durations,
//! loops, pixels at chosen times, and sound.

use std::path::{Path, PathBuf};

use clipstream_tests::media::{
    close, ffmpeg, ffprobe, fixture, pixel, rms, token_named, upload, Fixture,
};
use clipstream_tests::{assert_error, files_under, json, Api};
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// A blue background; `red.png` filling the frame from 0 to 2 s, then
/// `green.png` from 2 to 4 s; a 440 Hz soundtrack throughout.
fn timeline() -> Value {
    json!({
        "background": "#0000ff",
        "soundtrack": { "src": "tone.wav" },
        "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": "red.png" }, "start": 0, "length": 2 },
            { "asset": { "type": "image", "src": "green.png" }, "start": 2, "length": 2 }
        ] } ]
    })
}

fn movie(output: Value) -> Value {
    json!({ "timeline": timeline(), "output": output })
}

/// A token for `movie_json`, stored under a name of its own (a token
/// names a movie, not its content).
fn token(f: &Fixture, movie_json: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    movie_json.to_string().hash(&mut h);
    token_named(f, &format!("m{:x}", h.finish()), movie_json, json!({}))
}

/// The fixture's project, with `green.png` too.
fn setup() -> Fixture {
    let f = fixture();
    let green = f.dir.path().join("green.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=#00ff00:s=160x90",
            "-frames:v",
            "1",
        ],
        &green,
    );
    upload(&f.env.client(), &f.uid, "green.png", &green);
    f
}

/// GETs `/render/<file>` (anonymously: the token is the key) as a first
/// viewer does, then until the cache answers; checks the status and
/// Content-Type of both and saves the cached body, the file as it stays.
fn fetch(f: &Fixture, file: &str, content_type: &str) -> PathBuf {
    let first = f.env.client().anonymous().get(&format!("/render/{file}"));
    assert_eq!(
        first.status(),
        200,
        "{file}: {}",
        first.text().unwrap_or_default()
    );
    assert_eq!(first.headers()["content-type"], content_type, "{file}");
    let streamed = first.bytes().unwrap();
    // A client of its own: the streamed response's connection may be
    // closing as it ends.
    let r = cached(&f.env.client().anonymous(), &format!("/render/{file}"));
    assert_eq!(r.headers()["content-type"], content_type, "{file}");
    let body = r.bytes().unwrap();
    assert_eq!(
        streamed.len(),
        body.len(),
        "{file}: the same length streamed and cached"
    );
    let path = f.dir.path().join(file);
    std::fs::write(&path, body).unwrap();
    path
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

fn size(probe: &Value) -> (u64, u64) {
    let v = stream(probe, "video").expect("a video stream");
    (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
}

fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .expect("a duration")
        .parse()
        .unwrap()
}

fn assert_colour(path: &Path, t: f64, (x, y): (u32, u32), width: u32, want: [u8; 3]) {
    let got = pixel(path, t, x, y, width);
    assert!(
        close(got, want),
        "{}: {got:?} at {t} s, want {want:?}",
        path.display()
    );
}

#[test]
fn webm_is_vp9_and_opus_streamed_while_it_renders() {
    let f = setup();
    let t = token(
        &f,
        &movie(json!({ "format": "mp4", "resolution": "mobile" })),
    );
    let first = f.env.client().anonymous().get(&format!("/render/{t}.webm"));
    assert!(
        !first.headers().contains_key("content-length"),
        "a cold render streams"
    );
    drop(first);
    let path = fetch(&f, &format!("{t}.webm"), "video/webm");
    let p = ffprobe(&path);
    let (v, a) = (stream(&p, "video").unwrap(), stream(&p, "audio").unwrap());
    assert_eq!(
        (v["codec_name"].as_str(), a["codec_name"].as_str()),
        (Some("vp9"), Some("opus"))
    );
    assert_eq!(size(&p), (640, 360));
    assert_eq!(v["nb_read_frames"], "100");
    assert!((duration(&p) - 4.0).abs() < 0.1, "{}", duration(&p));
    assert_colour(&path, 1.0, (320, 180), 640, RED);
    assert_colour(&path, 3.0, (320, 180), 640, GREEN);
    assert!(rms(&path, 0.5, 3.5) > 0.05, "the soundtrack plays");
}

#[test]
fn gif_loops_forever_or_plays_once() {
    let f = setup();
    for (repeat, fps, frames) in [(true, 12, "48"), (false, 15, "60")] {
        let t = token(
            &f,
            &movie(
                json!({ "format": "gif", "resolution": "preview", "fps": fps, "repeat": repeat }),
            ),
        );
        let path = fetch(&f, &format!("{t}.gif"), "image/gif");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes.windows(11).any(|w| w == b"NETSCAPE2.0"),
            repeat,
            "the loop extension, repeat = {repeat}"
        );
        let p = ffprobe(&path);
        assert_eq!(stream(&p, "video").unwrap()["codec_name"], "gif");
        assert_eq!(stream(&p, "video").unwrap()["nb_read_frames"], frames);
        assert_eq!(size(&p), (512, 288));
        assert_colour(&path, 0.5, (256, 144), 512, RED);
        assert_colour(&path, 3.5, (256, 144), 512, GREEN);
    }
}

#[test]
fn mp3_is_the_mix_alone_and_silent_when_muted() {
    let f = setup();
    for (mute, quality, bit_rate) in [(false, "high", "192000"), (true, "low", "96000")] {
        let t = token(
            &f,
            &movie(json!({ "format": "mp3", "mute": mute, "quality": quality })),
        );
        let path = fetch(&f, &format!("{t}.mp3"), "audio/mpeg");
        let p = ffprobe(&path);
        assert!(stream(&p, "video").is_none(), "audio only");
        let a = stream(&p, "audio").unwrap();
        assert_eq!(
            (a["codec_name"].as_str(), a["bit_rate"].as_str()),
            (Some("mp3"), Some(bit_rate))
        );
        assert!((duration(&p) - 4.0).abs() < 0.1, "{}", duration(&p));
        let level = rms(&path, 0.5, 3.5);
        if mute {
            assert!(level < 0.001, "muted: {level}");
        } else {
            assert!(level > 0.05, "the soundtrack: {level}");
        }
    }
}

#[test]
fn stills_are_one_frame_at_range_start_or_the_poster_time() {
    let f = setup();
    let cases = [
        // (output, the frame's colour)
        (json!({ "format": "jpg", "resolution": "sd" }), RED),
        (
            json!({ "format": "png", "resolution": "sd", "range": { "start": 2.5 } }),
            GREEN,
        ),
        (
            json!({ "format": "bmp", "resolution": "sd", "poster": { "capture": 3 } }),
            GREEN,
        ),
    ];
    for (output, colour) in cases {
        let t = token(&f, &movie(output.clone()));
        for (ext, content_type, codec) in [
            ("jpg", "image/jpeg", "mjpeg"),
            ("png", "image/png", "png"),
            ("bmp", "image/bmp", "bmp"),
        ] {
            let path = fetch(&f, &format!("{t}.{ext}"), content_type);
            let p = ffprobe(&path);
            assert_eq!(
                stream(&p, "video").unwrap()["codec_name"],
                codec,
                "{output}"
            );
            assert_eq!(size(&p), (1024, 576), "{output}");
            assert_colour(&path, 0.0, (512, 288), 1024, colour);
        }
    }
}

#[test]
fn aspect_ratio_size_and_scale_to_set_the_dimensions() {
    let f = setup();
    let cases = [
        (
            json!({ "resolution": "hd", "aspectRatio": "9:16" }),
            (720, 1280),
        ),
        (
            json!({ "resolution": "hd", "aspectRatio": "1:1" }),
            (720, 720),
        ),
        (
            json!({ "resolution": "mobile", "aspectRatio": "4:5" }),
            (360, 450),
        ),
        (
            json!({ "resolution": "sd", "aspectRatio": "4:3" }),
            (768, 576),
        ),
        // The seed's own example: size wins over resolution and aspectRatio.
        (
            json!({ "resolution": "sd", "aspectRatio": "16:9", "size": { "width": 320, "height": 240 } }),
            (320, 240),
        ),
        // Composed at hd, delivered at preview's size.
        (
            json!({ "resolution": "hd", "scaleTo": "preview" }),
            (512, 288),
        ),
        (
            json!({ "resolution": "hd", "aspectRatio": "9:16", "scaleTo": "mobile" }),
            (360, 640),
        ),
    ];
    for (mut output, (w, h)) in cases {
        output["format"] = json!("mp4");
        output["range"] = json!({ "start": 0, "length": 0.4 });
        let t = token(&f, &movie(output.clone()));
        let video = fetch(&f, &format!("{t}.mp4"), "video/mp4");
        assert_eq!(size(&ffprobe(&video)), (w, h), "{output}");
        let still = fetch(&f, &format!("{t}.png"), "image/png");
        assert_eq!(size(&ffprobe(&still)), (w, h), "{output}");
        assert_colour(&still, 0.0, (w as u32 / 2, h as u32 / 2), w as u32, RED);
    }
}

#[test]
fn range_renders_only_its_part_of_the_timeline() {
    let f = setup();
    let t = token(
        &f,
        &movie(
            json!({ "format": "mp4", "resolution": "mobile", "range": { "start": 1.5, "length": 1.5 } }),
        ),
    );
    for (ext, content_type) in [("mp4", "video/mp4"), ("webm", "video/webm")] {
        let path = fetch(&f, &format!("{t}.{ext}"), content_type);
        let p = ffprobe(&path);
        assert!((duration(&p) - 1.5).abs() < 0.1, "{ext}: {}", duration(&p));
        // Output time 0 is the timeline's 1.5 s (red), 1 s is its 2.5 s.
        assert_colour(&path, 0.0, (320, 180), 640, RED);
        assert_colour(&path, 1.0, (320, 180), 640, GREEN);
        assert!(
            rms(&path, 0.1, 1.4) > 0.05,
            "{ext}: the soundtrack from 1.5 s"
        );
    }
    let mp3 = fetch(&f, &format!("{t}.mp3"), "audio/mpeg");
    assert!((duration(&ffprobe(&mp3)) - 1.5).abs() < 0.1);
    // A range past the end of the timeline names itself.
    let late = token(
        &f,
        &movie(json!({ "format": "mp4", "range": { "start": 9 } })),
    );
    let body = assert_error(
        f.env
            .client()
            .anonymous()
            .get(&format!("/render/{late}.mp4")),
        422,
        "beyond_timeline",
    );
    assert_eq!(body["path"], "output.range.start");
}

#[test]
fn poster_and_thumbnail_have_routes_of_their_own() {
    let f = setup();
    let t = token(
        &f,
        &movie(
            json!({ "format": "mp4", "resolution": "mobile", "scaleTo": "preview",
                       "poster": { "capture": 2.5 }, "thumbnail": { "capture": 0.5, "scale": 0.5 } }),
        ),
    );
    let poster = fetch(&f, &format!("{t}-poster.jpg"), "image/jpeg");
    assert_eq!(size(&ffprobe(&poster)), (512, 288), "the output's size");
    assert_colour(&poster, 0.0, (256, 144), 512, GREEN);
    let thumb = fetch(&f, &format!("{t}-thumb.jpg"), "image/jpeg");
    assert_eq!(size(&ffprobe(&thumb)), (256, 144), "scaled by 0.5");
    assert_colour(&thumb, 0.0, (128, 72), 256, RED);
    // Cached like any render.
    let again = f
        .env
        .client()
        .anonymous()
        .get(&format!("/v2/render/{t}-poster.jpg"));
    assert_eq!(
        again.headers()["content-length"],
        std::fs::metadata(&poster)
            .unwrap()
            .len()
            .to_string()
            .as_str()
    );
    let (status, body) = json(
        f.env
            .client()
            .anonymous()
            .get(&format!("/v2/render/{t}/status?ext=poster")),
    );
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("done")),
        "{body}"
    );
    // A movie without them.
    let plain = token(&f, &movie(json!({ "format": "mp4" })));
    let api = f.env.client().anonymous();
    for file in [format!("{plain}-poster.jpg"), format!("{plain}-thumb.jpg")] {
        assert_error(api.get(&format!("/render/{file}")), 404, "not_found");
    }
    // Deleting the project takes every cached render of its tokens along.
    let renders = f.env.data_dir().join("renders");
    assert!(!files_under(&renders).is_empty());
    assert_eq!(
        f.env
            .client()
            .delete(&format!("/v1/project/{}", f.uid))
            .status(),
        200
    );
    assert_eq!(
        files_under(&renders),
        Vec::<PathBuf>::new(),
        "poster and thumbnail too"
    );
}

#[test]
fn the_extension_picks_the_movie_and_decides_the_format() {
    let f = setup();
    let api = f.env.client();
    let red = json!({ "timeline": { "background": "#ff0000", "tracks": [ { "clips": [
        { "asset": { "type": "title", "text": "." }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "gif", "resolution": "preview" } });
    let blue = json!({ "timeline": { "background": "#0000ff", "tracks": [ { "clips": [
        { "asset": { "type": "title", "text": "." }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" } });
    for (name, body) in [("red", &red), ("blue", &blue)] {
        let r = api.put(&format!("/v1/sdl/{}/{name}", f.uid), body.to_string());
        assert_eq!(r.status(), 201);
    }
    let r = api
        .request(Method::POST, &format!("/v2/render/{}", f.uid))
        .json(&json!({ "movie": { "gif": "red", "png": "red", "*": "blue" } }))
        .send()
        .unwrap();
    let (_, body) = json(r);
    let t = body["token"].as_str().unwrap().to_owned();
    let gif = fetch(&f, &format!("{t}.gif"), "image/gif");
    assert_colour(&gif, 0.0, (10, 10), 512, RED);
    // The red movie says gif; asked as png it is a png.
    let png = fetch(&f, &format!("{t}.png"), "image/png");
    assert_eq!(
        stream(&ffprobe(&png), "video").unwrap()["codec_name"],
        "png"
    );
    assert_colour(&png, 0.0, (10, 10), 512, RED);
    // Everything else falls to the blue movie, in the extension's format.
    let webm = fetch(&f, &format!("{t}.webm"), "video/webm");
    assert_colour(&webm, 0.5, (10, 10), 512, BLUE);
    let jpg = fetch(&f, &format!("{t}.jpg"), "image/jpeg");
    assert_colour(&jpg, 0.0, (10, 10), 512, BLUE);
    assert_error(
        api.anonymous().get(&format!("/render/{t}.avi")),
        404,
        "not_found",
    );
}

/// GETs until the cache answers (a Content-Length), which it does just
/// after the render's last byte.
fn cached(api: &Api, path: &str) -> Response {
    for _ in 0..100 {
        let r = api.get(path);
        if r.headers().contains_key("content-length") {
            return r;
        }
        drop(r);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{path} never reached the cache");
}

#[test]
fn a_cached_webm_is_seekable_and_has_full_http_semantics() {
    let f = setup();
    let t = token(
        &f,
        &movie(json!({ "format": "webm", "resolution": "preview" })),
    );
    let api = f.env.client().anonymous();
    let path = format!("/render/{t}.webm");
    let streamed = f.env.client().anonymous().get(&path).bytes().unwrap();
    let r = cached(&api, &path);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "video/webm");
    let body = r.bytes().unwrap();
    assert_eq!(
        (body.len(), streamed.len()),
        (len, len),
        "patches keep the length"
    );
    // The cached file has its cues and duration written back.
    let file = f.dir.path().join("cached.webm");
    std::fs::write(&file, &body).unwrap();
    let p = ffprobe(&file);
    assert!((duration(&p) - 4.0).abs() < 0.1);
    let cues = [0x1c, 0x53, 0xbb, 0x6b];
    assert!(body.windows(4).any(|w| w == cues), "a Cues element");
    let probe = api
        .request(Method::GET, &path)
        .header("range", "bytes=0-3")
        .send()
        .unwrap();
    assert_eq!(probe.status(), 206);
    assert_eq!(
        probe.headers()["content-range"],
        format!("bytes 0-3/{len}").as_str()
    );
    assert_eq!(
        &probe.bytes().unwrap()[..],
        &[0x1a, 0x45, 0xdf, 0xa3],
        "the EBML magic"
    );
    let r = api
        .request(Method::GET, &format!("/v2{path}"))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let head = api.request(Method::HEAD, &path).send().unwrap();
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    let (status, body) = json(api.get(&format!("/v2/render/{t}/status?ext=webm")));
    assert_eq!(
        (status, body["state"].as_str(), body["progress"].as_u64()),
        (200, Some("done"), Some(100))
    );
    let (status, body) = json(api.get(&format!("/v2/render/{t}/status?ext=gif")));
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("queued")),
        "not asked yet"
    );
    assert_error(
        api.get(&format!("/v2/render/{t}/status?ext=avi")),
        400,
        "invalid_parameter",
    );
}

#[test]
fn webm_and_gif_stream_long_before_their_render_ends() {
    let f = setup();
    let long = json!({ "timeline": { "background": "#0000ff", "tracks": [ { "clips": [
        { "asset": { "type": "image", "src": "red.png" }, "start": 0, "length": 30 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile" } });
    let t = token(&f, &long);
    let api = f.env.client().anonymous();
    // (extension, what a first playable piece holds)
    let cluster: &[u8] = &[0x1f, 0x43, 0xb6, 0x75];
    let frame: &[u8] = &[0x21, 0xf9];
    for (ext, piece, count) in [("webm", cluster, 1), ("gif", frame, 2)] {
        let mut r = api.get(&format!("/render/{t}.{ext}"));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while got.windows(piece.len()).filter(|w| *w == piece).count() < count {
            let n = std::io::Read::read(&mut r, &mut buf).unwrap();
            assert!(n > 0, "{ext}: the stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
        let (_, status) = json(api.get(&format!("/v2/render/{t}/status?ext={ext}")));
        assert_eq!(status["state"], "rendering", "{ext}: {status}");
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
        assert!(rest.len() > got.len(), "{ext}");
    }
}

#[test]
fn a_range_starts_a_video_clip_where_the_timeline_is() {
    let f = setup();
    // Red for 2 s, then green for 2 s, with its own tone.
    let clip = f.dir.path().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=160x90:r=25:d=2",
            "-f",
            "lavfi",
            "-i",
            "color=c=#00ff00:s=160x90:r=25:d=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:duration=4",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
        ],
        &clip,
    );
    upload(&f.env.client(), &f.uid, "clip.mp4", &clip);
    // The clip starts at 1 s, trimmed by 0.5 s: the timeline's 3 s is the
    // clip's 2.5 s, green.
    let m = json!({ "timeline": { "background": "#0000ff", "tracks": [ { "clips": [
        { "asset": { "type": "video", "src": "clip.mp4", "trim": 0.5 }, "start": 1, "length": 3.5 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "range": { "start": 2, "length": 2 } } });
    let t = token(&f, &m);
    let video = fetch(&f, &format!("{t}.mp4"), "video/mp4");
    // Output 0 s = timeline 2 s = clip 1.5 s (red); output 1 s = clip 2.5 s (green).
    assert_colour(&video, 0.0, (320, 180), 640, RED);
    assert_colour(&video, 1.0, (320, 180), 640, GREEN);
    assert!(
        rms(&video, 0.1, 1.9) > 0.05,
        "the clip's own sound from where it is"
    );
    let still = fetch(&f, &format!("{t}.png"), "image/png");
    assert_colour(&still, 0.0, (320, 180), 640, RED);
}
