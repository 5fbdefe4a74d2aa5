//! Abuse (issue 5, item 5): guessing credentials is throttled with 429,
//! and no route lets a second account read, change or even learn about the
//! first account's data.

use std::time::{Duration, Instant};

use clipstream_tests::{assert_error, create_key, json, Env, Key};
use reqwest::Method;
use serde_json::{json, Value};

#[test]
fn wrong_credentials_are_throttled_with_429_until_the_window_ends() {
    let env = Env::with_settings(&[
        ("CLIPSTREAM_LIMITS_AUTH_FAILURES", "5"),
        ("CLIPSTREAM_LIMITS_AUTH_FAILURE_WINDOW_SECS", "3"),
    ]);
    let api = env.client();
    let guesser = api.with_auth(&env.key.key, "guess");
    for _ in 0..5 {
        assert_error(guesser.get("/v1/list/project"), 401, "unauthorized");
    }
    let blocked_at = Instant::now();
    let r = guesser.get("/v1/list/project");
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    assert_error(r, 429, "too_many_failures");
    // While blocked, even the right secret is refused: a lucky guess
    // teaches nothing.
    assert_error(api.get("/v1/list/project"), 429, "too_many_failures");
    // Requests that need no credentials are not affected.
    assert_eq!(api.anonymous().get("/healthz").status(), 200);
    // Missing credentials are not guesses and are not counted.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(blocked_at.elapsed()));
    for _ in 0..10 {
        assert_error(api.anonymous().get("/v1/list/project"), 401, "unauthorized");
    }
    let (status, _) = json(api.get("/v1/list/project"));
    assert_eq!(status, 200, "served again once the window has passed");
}

/// What account A owns, for B to try every route on.
struct Owned {
    uid: String,
    upload: String,
    token: String,
}

const SECRET_BYTES: &[u8] = b"account A's private bytes 7f3a";
const SECRET_TEXT: &str = "account A's private title 9c1e";

fn set_up_account_a(env: &Env) -> Owned {
    let api = env.client();
    let uid = api.create_project("a-private-project");
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/secret.bin"), SECRET_BYTES.to_vec())
            .status(),
        201
    );
    let movie = json!({
        "timeline": { "tracks": [ { "clips": [ {
            "asset": { "type": "title", "text": format!("{SECRET_TEXT} {{{{NAME}}}}") },
            "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "sd" }
    });
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/m"), movie.to_string())
            .status(),
        201
    );
    let (status, body) = json(api.post(&format!(
        "/chunked/videos/{uid}?name=big.bin&chunk_count=2&chunk_size=4"
    )));
    assert_eq!(status, 201, "{body}");
    let upload = body["upload-id"].as_str().unwrap().to_owned();
    let (status, body) = json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&json!({ "movie": "m", "params": { "NAME": "x" } }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    Owned { uid, upload, token }
}

#[test]
fn a_second_accounts_key_reaches_nothing_of_the_first_on_any_route() {
    let mut env = Env::new();
    let b: Key = env.while_stopped(|dir| create_key(dir, None));
    let a = set_up_account_a(&env);
    let api_b = env.client().with_auth(&b.key, &b.secret);
    let b_uid = api_b.create_project("b-project");
    let (uid, upload) = (&a.uid, &a.upload);
    let json_body = || json!({ "movie": "m", "params": { "NAME": "y" } }).to_string();
    // Every authenticated route of the API, aimed at A's project.
    let routes: Vec<(Method, String, Option<String>)> = vec![
        (Method::GET, format!("/v1/list/data/{uid}"), None),
        (Method::GET, format!("/v1/data/{uid}/secret.bin"), None),
        (Method::HEAD, format!("/v1/data/{uid}/secret.bin"), None),
        (
            Method::PUT,
            format!("/v1/data/{uid}/secret.bin"),
            Some("overwritten".into()),
        ),
        (
            Method::PUT,
            format!("/v1/data/{uid}/new.bin"),
            Some("x".into()),
        ),
        (Method::DELETE, format!("/v1/data/{uid}/secret.bin"), None),
        (Method::GET, format!("/v1/list/sdl/{uid}"), None),
        (Method::GET, format!("/v1/sdl/{uid}/m"), None),
        (Method::PUT, format!("/v1/sdl/{uid}/m"), Some("{}".into())),
        (Method::DELETE, format!("/v1/sdl/{uid}/m"), None),
        (
            Method::POST,
            format!("/chunked/videos/{uid}?name=x&chunk_count=1&chunk_size=4"),
            None,
        ),
        (
            Method::POST,
            format!("/chunked/videos/{uid}/{upload}/chunks?chunk_id=0"),
            Some("abcd".into()),
        ),
        (
            Method::POST,
            format!("/chunked/videos/{uid}/{upload}/finished"),
            None,
        ),
        (Method::POST, format!("/v1/publish/{uid}/local"), None),
        (Method::POST, format!("/v2/render/{uid}"), Some(json_body())),
        (Method::DELETE, format!("/v1/project/{uid}"), None),
    ];
    for (method, path, body) in &routes {
        let mut req = api_b.request(method.clone(), path);
        if let Some(body) = body {
            req = req.body(body.clone());
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert!(
            status == 403 || status == 404,
            "{method} {path} answered {status}: {text}"
        );
        for leak in [
            std::str::from_utf8(SECRET_BYTES).unwrap(),
            SECRET_TEXT,
            "a-private-project",
            "secret.bin",
        ] {
            assert!(!text.contains(leak), "{method} {path} leaked {leak:?}");
        }
    }
    // A's ids inside B's own project lead nowhere either.
    for (method, path) in [
        (Method::GET, format!("/v1/data/{b_uid}/secret.bin")),
        (Method::GET, format!("/v1/sdl/{b_uid}/m")),
        (
            Method::POST,
            format!("/chunked/videos/{b_uid}/{upload}/chunks?chunk_id=0"),
        ),
        (
            Method::POST,
            format!("/chunked/videos/{b_uid}/{upload}/finished"),
        ),
    ] {
        let r = api_b
            .request(method.clone(), &path)
            .body("abcd")
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
    }
    // B's listing shows only B's project.
    let (_, list) = json(api_b.get("/v1/list/project"));
    let names: Vec<&str> = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["b-project"]);
    // Nothing of A changed: the asset, the movie, the upload and the token.
    let api_a = env.client();
    let bytes = api_a
        .get(&format!("/v1/data/{uid}/secret.bin"))
        .bytes()
        .unwrap();
    assert_eq!(&bytes[..], SECRET_BYTES);
    assert_eq!(api_a.get(&format!("/v1/sdl/{uid}/m")).status(), 200);
    assert_eq!(api_a.get(&format!("/v1/data/{uid}/new.bin")).status(), 404);
    let r = api_a
        .request(
            Method::POST,
            &format!("/chunked/videos/{uid}/{upload}/chunks?chunk_id=0"),
        )
        .body("wxyz")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "A's upload still takes chunks");
    let (_, status) = json(
        api_a
            .anonymous()
            .get(&format!("/v2/render/{}/status", a.token)),
    );
    assert_eq!(status["token"], a.token.as_str());
}

#[test]
fn tokens_cannot_be_guessed_or_enumerated() {
    let env = Env::new();
    let a = set_up_account_a(&env);
    let api = env.client().anonymous();
    // 128 bits in URL-safe base64; neighbours of a real token and other
    // shapes are all simply unknown.
    assert_eq!(a.token.len(), 22);
    let mut neighbours = Vec::new();
    for i in 0..a.token.len() {
        let mut t: Vec<u8> = a.token.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        neighbours.push(String::from_utf8(t).unwrap());
    }
    neighbours.push(a.token[..21].to_owned());
    neighbours.push(format!("{}A", a.token));
    neighbours.push("../../etc/passwd".into());
    for t in &neighbours {
        let r = api.get(&format!("/v2/render/{t}/status"));
        assert_eq!(r.status(), 404, "{t}");
        let r = api.get(&format!("/render/{t}.mp4"));
        assert!(matches!(r.status().as_u16(), 404 | 400), "{t}");
    }
}

/// A movie of `tracks` tracks, each with `clips` title clips of `length`
/// seconds, reading `sources` distinct pictures, at `output`.
fn sized_movie(tracks: usize, clips: usize, length: f64, sources: usize, output: Value) -> Value {
    let mut all_tracks: Vec<Value> = (0..tracks)
        .map(|_| {
            let clips: Vec<Value> = (0..clips)
                .map(|_| json!({ "asset": { "type": "title", "text": "t" }, "start": 0, "length": length }))
                .collect();
            json!({ "clips": clips })
        })
        .collect();
    let pictures: Vec<Value> = (0..sources)
        .map(|i| json!({ "asset": { "type": "image", "src": format!("p{i}.png") }, "start": 0, "length": 1 }))
        .collect();
    all_tracks.push(json!({ "clips": pictures }));
    json!({ "timeline": { "tracks": all_tracks }, "output": output })
}

#[test]
fn every_composition_and_body_limit_is_enforced_with_its_path() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("limits");
    let sd = json!({ "format": "mp4", "resolution": "sd" });
    let put = |movie: &Value| api.put(&format!("/v1/sdl/{uid}/m"), movie.to_string());
    assert_eq!(
        put(&sized_movie(99, 1, 1.0, 1, sd.clone())).status(),
        201,
        "within every limit"
    );
    for (what, movie, path, words) in [
        (
            "tracks",
            sized_movie(101, 1, 1.0, 1, sd.clone()),
            "timeline.tracks",
            "max_tracks",
        ),
        (
            "clips",
            sized_movie(2, 600, 1.0, 1, sd.clone()),
            "timeline.tracks[1].clips[400]",
            "max_clips",
        ),
        (
            "duration",
            sized_movie(1, 1, 601.0, 1, sd.clone()),
            "timeline.tracks[0].clips[0]",
            "max_duration_secs",
        ),
        (
            "resolution",
            sized_movie(
                1,
                1,
                1.0,
                1,
                json!({ "format": "mp4", "size": { "width": 3840, "height": 2160 } }),
            ),
            "output.size.width",
            "max_video_width",
        ),
        (
            "sources",
            sized_movie(1, 1, 1.0, 51, sd.clone()),
            "timeline.tracks[1].clips[50].asset.src",
            "max_sources",
        ),
    ] {
        let body = assert_error(put(&movie), 400, "limit_exceeded");
        assert!(
            body["path"].as_str().unwrap().starts_with(path),
            "{what}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{what}: {body}"
        );
    }
    // Bodies: JSON over max_json_bytes, declared or streamed, and a render
    // request likewise.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1 << 20));
    assert_error(
        put(&serde_json::from_str(&big).unwrap()),
        413,
        "body_too_large",
    );
    let r = api
        .request(Method::POST, &format!("/v2/render/{uid}"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_error(r, 413, "body_too_large");
}
