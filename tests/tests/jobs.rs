//! Issue 15, CONTRACT sections 4 and 5: outputs keyed by their content,
//! render jobs that run without a viewer and survive a crash, a bounded
//! queue, Safari's first request, and a token's outputs deleted by their
//! owner.

use std::time::{Duration, Instant};

use clipstream_tests::media::{at, ffmpeg, fixture, fixture_with, frame, token_named};
use clipstream_tests::{assert_error, create_key, files_under, json, Api};
use reqwest::Method;
use serde_json::{json, Value};

/// A title over a background, `length` seconds, no sources but `src`
/// (an image asset) when given.
fn movie(text: &str, background: &str, length: f64, src: Option<&str>) -> Value {
    let mut tracks = vec![
        json!({ "clips": [ { "asset": { "type": "title", "text": text },
                                               "start": 0, "length": length } ] }),
    ];
    if let Some(src) = src {
        tracks.push(
            json!({ "clips": [ { "asset": { "type": "image", "src": src },
                                         "start": 0, "length": length, "fit": "none",
                                         "position": "topRight" } ] }),
        );
    }
    json!({
        "timeline": { "background": background, "tracks": tracks },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

fn viewer_renders(api: &Api) -> u64 {
    api.metric("clipstream_renders_started_total{reason=\"viewer\"}")
}

fn get_video(api: &Api, token: &str) -> (Vec<u8>, String) {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.bytes().unwrap().to_vec(), etag)
}

fn wait_cached(api: &Api, token: &str) {
    api.wait_done(token, "mp4", 60);
}

fn request(api: &Api, uid: &str, body: Value) -> reqwest::blocking::Response {
    api.request(Method::POST, &format!("/v2/render/{uid}"))
        .json(&body)
        .send()
        .unwrap()
}

#[test]
fn a_changed_movie_or_asset_shows_on_the_next_get_of_an_existing_token() {
    let f = fixture();
    let api = f.env.client();
    let a = token_named(
        &f,
        "a",
        &movie("One", "#0000ff", 1.0, Some("red.png")),
        json!({}),
    );
    let b = token_named(&f, "b", &movie("Other", "#00ff00", 1.0, None), json!({}));
    get_video(&api, &a);
    get_video(&api, &b);
    wait_cached(&api, &a);
    wait_cached(&api, &b);
    let (first, etag) = get_video(&api, &a);
    let r = api.anonymous().get(&format!("/render/{a}.mp4"));
    let cache_control = r.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        cache_control.contains("max-age=60") && !cache_control.contains("immutable"),
        "{cache_control}"
    );
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let renders = viewer_renders(&api);

    // The movie is fixed: a blue background becomes red.
    assert_eq!(
        api.put(
            &format!("/v1/sdl/{}/a", f.uid),
            movie("One", "#ff0000", 1.0, Some("red.png")).to_string()
        )
        .status(),
        201
    );
    let revalidated = api
        .anonymous()
        .request(Method::GET, &format!("/render/{a}.mp4"))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(revalidated.status(), 200, "the old ETag no longer matches");
    let fixed = revalidated.bytes().unwrap().to_vec();
    assert_ne!(fixed, first);
    let file = f.dir.path().join("fixed.mp4");
    std::fs::write(&file, &fixed).unwrap();
    let px = at(&frame(&file, 0.5), 10, 140, 512);
    assert!(px[0] > 200 && px[2] < 60, "the new background: {px:?}");
    let (again, _) = get_video(&api, &b);
    assert!(!again.is_empty());
    assert_eq!(
        viewer_renders(&api),
        renders + 1,
        "the other movie's token came from the cache"
    );

    // An asset is replaced: the token that shows it renders anew.
    wait_cached(&api, &a);
    let (before, before_etag) = get_video(&api, &a);
    let green = f.dir.path().join("green.png");
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
    let r = api.put(
        &format!("/v1/data/{}/red.png", f.uid),
        std::fs::read(&green).unwrap(),
    );
    assert_eq!(r.status(), 201);
    get_video(&api, &a);
    wait_cached(&api, &a);
    let (after, after_etag) = get_video(&api, &a);
    assert_ne!(after, before);
    assert_ne!(after_etag, before_etag);
    assert_eq!(viewer_renders(&api), renders + 2);
}

#[test]
fn two_tokens_that_resolve_alike_share_one_render_and_one_cache_entry() {
    let f = fixture();
    let api = f.env.client();
    let body = movie("Same {{NAME}}", "#0000ff", 1.0, None);
    let one = token_named(&f, "one", &body, json!({ "NAME": "Jo" }));
    let two = token_named(&f, "two", &body, json!({ "NAME": "Jo" }));
    assert_ne!(one, two, "two requests, two tokens");
    get_video(&api, &one);
    wait_cached(&api, &one);
    let (a, etag_a) = get_video(&api, &one);
    let (b, etag_b) = get_video(&api, &two);
    assert_eq!(a, b);
    assert_eq!(etag_a, etag_b, "one content, one ETag");
    assert_eq!(viewer_renders(&api), 1, "one render");
    assert_eq!(files_under(&f.env.data_dir().join("renders")).len(), 1);
}

#[test]
fn a_prerender_runs_without_a_viewer_and_the_first_get_is_a_cache_hit() {
    let f = fixture();
    let api = f.env.client();
    let body = movie("Warm {{NAME}}", "#0000ff", 2.0, Some("red.png"));
    assert_eq!(
        api.put(&format!("/v1/sdl/{}/m", f.uid), body.to_string())
            .status(),
        201
    );
    let (status, answer) = json(request(
        &api,
        &f.uid,
        json!({ "movie": "m", "params": { "NAME": "Kim" }, "prerender": true }),
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["uploads"], json!([]));
    let token = answer["token"].as_str().unwrap().to_owned();
    let seen = api.wait_done(&token, "mp4", 60);
    assert_eq!(seen.last().map(String::as_str), Some("done"));
    for state in &seen {
        assert!(
            ["queued", "fetching", "rendering", "saving", "done"].contains(&state.as_str()),
            "{seen:?}"
        );
    }
    assert_eq!(
        api.metric("clipstream_renders_started_total{reason=\"prerender\"}"),
        1
    );
    let hits = api.metric("clipstream_cache_hits_total");
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-length"));
    assert_eq!(api.metric("clipstream_cache_hits_total"), hits + 1);
    assert_eq!(api.metric("clipstream_cache_misses_total"), 0);
    assert_eq!(viewer_renders(&api), 0);
}

#[test]
fn background_jobs_run_again_after_a_kill_and_nothing_partial_is_served() {
    let mut f = fixture_with(&[("CLIPSTREAM_RENDER_WORKERS", "1")]);
    let api = f.env.client();
    let mut tokens = Vec::new();
    for i in 0..4 {
        let name = format!("m{i}");
        let body = movie(&format!("Job {i}"), "#0000ff", 6.0, Some("red.png"));
        assert_eq!(
            api.put(&format!("/v1/sdl/{}/{name}", f.uid), body.to_string())
                .status(),
            201
        );
        let (status, answer) = json(request(
            &api,
            &f.uid,
            json!({ "movie": name, "prerender": true }),
        ));
        assert_eq!(status, 200, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_owned());
    }
    // One renders, three wait for the one worker.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<String> = tokens
            .iter()
            .map(|t| {
                json(api.anonymous().get(&format!("/v2/render/{t}/status"))).1["state"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if states[0] == "rendering" {
            assert_eq!(&states[1..], ["queued", "queued", "queued"], "{states:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{states:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    f.env.restart();
    let api = f.env.client();
    for token in &tokens {
        api.wait_done(token, "mp4", 120);
    }
    assert_eq!(
        api.metric("clipstream_renders_started_total{reason=\"resumed\"}"),
        4
    );
    for (i, token) in tokens.iter().enumerate() {
        let (bytes, _) = get_video(&api, token);
        let file = f.dir.path().join(format!("job{i}.mp4"));
        std::fs::write(&file, &bytes).unwrap();
        let d = clipstream_tests::media::duration(&file);
        assert!((d - 6.0).abs() < 0.2, "job {i}: a whole video, {d} s");
    }
    assert_eq!(files_under(&f.env.data_dir().join("renders")).len(), 4);
    assert!(files_under(&f.env.data_dir().join("tmp")).is_empty());
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let f = fixture_with(&[
        ("CLIPSTREAM_RENDER_WORKERS", "1"),
        ("CLIPSTREAM_RENDER_MAX_QUEUED", "1"),
        ("CLIPSTREAM_RENDER_BUSY_RETRY_SECS", "7"),
    ]);
    let api = f.env.client();
    let mut answers = Vec::new();
    for i in 0..3 {
        let name = format!("m{i}");
        let body = movie(&format!("Busy {i}"), "#0000ff", 8.0, None);
        assert_eq!(
            api.put(&format!("/v1/sdl/{}/{name}", f.uid), body.to_string())
                .status(),
            201
        );
        answers.push(request(
            &api,
            &f.uid,
            json!({ "movie": name, "prerender": true }),
        ));
    }
    let third = answers.pop().unwrap();
    assert_eq!(third.headers()["retry-after"], "7");
    assert_error(third, 503, "busy");
    for r in answers {
        assert_eq!(r.status(), 200);
    }
}

#[test]
fn safaris_first_range_gets_the_true_total_then_its_next_ranges() {
    let f = fixture();
    let api = f.env.client().anonymous();
    let token = token_named(
        &f,
        "m",
        &movie("Safari", "#0000ff", 4.0, Some("red.png")),
        json!({}),
    );
    let probe = api
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("range", "bytes=0-1")
        .send()
        .unwrap();
    assert_eq!(probe.status(), 206);
    let range = probe.headers()["content-range"]
        .to_str()
        .unwrap()
        .to_owned();
    let total: u64 = range
        .strip_prefix("bytes 0-1/")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a numeric total: {range}"));
    assert_eq!(probe.bytes().unwrap().len(), 2);
    let rest = api
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("range", "bytes=0-")
        .send()
        .unwrap();
    assert_eq!(rest.status(), 206);
    assert_eq!(
        rest.headers()["content-range"],
        format!("bytes 0-{}/{total}", total - 1).as_str()
    );
    let body = rest.bytes().unwrap();
    assert_eq!(body.len() as u64, total);
    let tail = api
        .request(Method::GET, &format!("/render/{token}.mp4"))
        .header("range", format!("bytes={}-", total - 100))
        .send()
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().unwrap(), body.slice(body.len() - 100..));
}

#[test]
fn the_owner_deletes_a_tokens_outputs_and_the_next_get_renders_again() {
    let f = fixture();
    // Another account's key, made beside the running server.
    let stranger = create_key(&f.env.data_dir(), None);
    let api = f.env.client();
    let token = token_named(&f, "m", &movie("Gone", "#0000ff", 1.0, None), json!({}));
    get_video(&api, &token);
    wait_cached(&api, &token);
    assert_eq!(files_under(&f.env.data_dir().join("renders")).len(), 1);

    let other = Api::new(&f.env.server().url, Some(&stranger));
    assert_error(
        other.delete(&format!("/v2/render/{token}")),
        403,
        "forbidden",
    );
    assert_error(
        api.anonymous().delete(&format!("/v2/render/{token}")),
        401,
        "unauthorized",
    );
    assert_error(
        api.delete("/v2/render/AAAAAAAAAAAAAAAAAAAAAA"),
        404,
        "token_not_found",
    );

    let (status, body) = json(api.delete(&format!("/v2/render/{token}")));
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(1)), "{body}");
    assert!(files_under(&f.env.data_dir().join("renders")).is_empty());
    let (_, status) = json(api.anonymous().get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["state"], "queued", "as if never rendered: {status}");
    get_video(&api, &token);
    assert_eq!(viewer_renders(&api), 2, "rendered again");
}

#[test]
fn a_render_whose_viewers_left_is_cancelled_after_the_grace() {
    let f = fixture_with(&[("CLIPSTREAM_RENDER_ABANDON_GRACE_SECS", "1")]);
    let api = f.env.client();
    // Ten minutes at 1080p: far from half done when its viewer leaves.
    let mut long = movie("Long", "#0000ff", 600.0, Some("red.png"));
    long["output"]["resolution"] = json!("1080");
    let token = token_named(&f, "m", &long, json!({}));
    {
        let mut r = api.anonymous().get(&format!("/render/{token}.mp4"));
        let mut buf = [0u8; 1024];
        assert!(std::io::Read::read(&mut r, &mut buf).unwrap() > 0);
        // The viewer leaves.
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.metric("clipstream_renders_finished_total{outcome=\"cancelled\"}") == 0 {
        assert!(Instant::now() < deadline, "the render was not cancelled");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(files_under(&f.env.data_dir().join("renders")).is_empty());
    assert!(files_under(&f.env.data_dir().join("tmp")).is_empty());
    let (_, status) = json(api.anonymous().get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["state"], "queued", "as if never asked: {status}");
}
