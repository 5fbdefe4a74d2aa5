//! Issue 16, CONTRACT section 8: what every upload destination shares.
//! A render request's `upload` is checked field by field when it arrives;
//! each task is reported in the answer and in the token's status; a
//! destination on a private address is refused before any connection;
//! credentials never appear in an answer; an upload's failure leaves the
//! render served. (Each destination type has its own suite beside this
//! one, against a real server of its protocol.)

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::time::{Duration, Instant};

use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::{json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

/// Loopback destinations are private addresses: allowed here, and
/// retries come quickly.
const LOOPBACK: &[(&str, &str)] = &[
    ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
    ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
];

/// A title movie of `length` seconds saying `greeting` and the NAME.
fn movie(greeting: &str, length: f64) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": format!("{greeting} {{{{NAME}}}}") },
                           "start": 0, "length": length } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

fn put_movie(api: &Api, uid: &str, name: &str, movie: &Value) {
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/{name}"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
}

/// A one-second title movie named `name` in a new project; returns the
/// project's uid.
fn project_with_movie(api: &Api, name: &str) -> String {
    let uid = api.create_project("uploads");
    put_movie(api, &uid, name, &movie("Hi", 1.0));
    uid
}

/// An upload of the `.mp4` to an HTTP endpoint, as `filename`.
fn to_http(url: &str, filename: &str) -> Value {
    json!({ "extension": "mp4",
            "destination": { "type": "http", "url": url, "filename": filename } })
}

fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    r.bytes().unwrap().to_vec()
}

fn post_render(api: &Api, uid: &str, body: Value) -> (u16, Value) {
    json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&body)
            .send()
            .expect("POST render"),
    )
}

/// A listener that counts connections and never answers: a canary.
fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            if stream.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, hits)
}

#[test]
fn a_mistake_in_an_upload_is_refused_naming_the_field() {
    let env = Env::new();
    let api = env.client();
    let uid = project_with_movie(&api, "welcome");
    let s3 = |extra: Value| {
        let mut d = json!({ "type": "s3", "bucket": "my-videos", "filename": "w.mp4",
                            "aws_access_key_id": "AK", "aws_secret_access_key": "SK" });
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    };
    for (upload, param) in [
        (
            json!({ "destination": s3(json!({ "acl": "everyone" })) }),
            "upload.destination.acl",
        ),
        (
            json!([{ "destination": s3(json!({})) },
                   { "destination": { "type": "ftp", "host": "ftp.example.com" } }]),
            "upload[1].destination",
        ),
        (
            json!({ "destination": { "type": "carrier-pigeon" } }),
            "upload.destination.type",
        ),
        (
            json!({ "extension": "m3u8", "destination": s3(json!({})) }),
            "upload.extension",
        ),
        (
            json!({ "destination": { "type": "http", "url": "http://example.com/in",
                                     "filename": "w.mp4", "method": "GET" } }),
            "upload.destination.method",
        ),
        (
            json!({ "destination": { "type": "youtube", "title": "t", "description": "d",
                                     "category": "22", "auth_secret": "a guess" } }),
            "upload.destination.auth_secret",
        ),
        (
            json!({ "destination": s3(json!({ "aws_use_policy": true })) }),
            "upload.destination.aws_use_policy",
        ),
        (
            json!({ "destination": { "type": "facebook", "title": "t", "description": "d",
                                     "auth_secret": "a guess" } }),
            "upload.destination.auth_secret",
        ),
        (
            json!({ "extension": "gif", "destination": { "type": "youtube", "title": "t",
                    "description": "d", "category": "22", "oauth_access_token": "tok" } }),
            "upload.extension",
        ),
        (
            json!((0..11)
                .map(|_| json!({ "destination": s3(json!({})) }))
                .collect::<Vec<_>>()),
            "upload",
        ),
    ] {
        let (status, body) = post_render(
            &api,
            &uid,
            json!({ "movie": "welcome", "params": { "NAME": "Jo" }, "upload": upload }),
        );
        assert_eq!(status, 400, "{upload}: {body}");
        assert_eq!(body["code"], "invalid_parameter", "{body}");
        assert!(
            body["param"].as_str().unwrap_or("").starts_with(param),
            "{param} expected: {body}"
        );
    }
    // A multi-movie request names the movie of each upload's extension.
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": { "webm": "welcome" }, "params": { "NAME": "Jo" },
                "upload": { "extension": "mp4", "destination": s3(json!({})) } }),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["param"], "upload[0].extension", "{body}");
}

#[test]
fn a_destination_on_a_private_address_is_refused_before_any_connection() {
    // upload.allow_private is false by default.
    let env = Env::new();
    let api = env.client();
    let uid = project_with_movie(&api, "welcome");
    let (port, hits) = canary();
    let secret = "wJalrXUtnFEMI-K7MDENG-SECRET";
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "welcome", "params": { "NAME": "Jo" },
                "upload": { "extension": "mp4", "destination": {
                    "type": "s3", "bucket": "my-videos", "filename": "renders/jo.mp4",
                    "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": secret,
                    "s3host": format!("http://127.0.0.1:{port}") } } }),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        body["uploads"],
        json!([format!("http://127.0.0.1:{port}/my-videos/renders/jo.mp4")]),
        "the object's URL is known at once"
    );
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0]["type"], "s3");
    assert_eq!(uploads[0]["state"], "failed", "{uploads:?}");
    let error = uploads[0]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("private") && error.contains("refused"),
        "{error}"
    );
    assert_eq!(uploads[0]["attempts"], 1, "a refusal is not tried again");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the canary got a connection"
    );
    // The render is unaffected, and no answer shows the credentials.
    let video = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(video.status(), 200);
    let status_text = api
        .get(&format!("/v2/render/{token}/status"))
        .text()
        .unwrap();
    for text in [body.to_string(), status_text] {
        assert!(
            !text.contains(secret) && !text.contains("AKIAEXAMPLE"),
            "{text}"
        );
    }
}

#[test]
fn a_dynamic_movie_with_edit_destinations_is_refused_pointing_at_upload() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("destinations");
    let with = |destinations: Value| {
        json!({
            "timeline": { "tracks": [ { "clips": [ { "asset": { "type": "title", "text": "Hi" },
                                                      "start": 0, "length": 1 } ] } ] },
            "output": { "format": "mp4", "resolution": "preview", "destinations": destinations }
        })
    };
    let (status, body) = json(
        api.put(
            &format!("/v1/sdl/{uid}/to-s3"),
            with(json!([{ "provider": "shotstack" },
                    { "provider": "s3", "options": { "region": "eu-west-1", "bucket": "b" } }]))
            .to_string(),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["path"], "output.destinations[1]", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("upload"),
        "{body}"
    );
    // Shotstack's own hosting is what a token URL is: accepted.
    let (status, body) = json(api.put(
        &format!("/v1/sdl/{uid}/hosted"),
        with(json!([{ "provider": "shotstack", "exclude": false }])).to_string(),
    ));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn the_same_upload_asked_again_is_sent_once_and_another_video_anew() {
    let env = Env::with_settings(LOOPBACK);
    let api = env.client();
    let uid = project_with_movie(&api, "welcome");
    let receiver = Receiver::start(&[200]);
    let upload = to_http(&format!("{}/in", receiver.url), "jo.mp4");
    let first = api.render_with_upload(&uid, "welcome", json!({ "NAME": "Jo" }), upload.clone());
    let token = first["token"].as_str().unwrap().to_owned();
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    assert_eq!(uploads[0]["status"], 200);

    let again = api.render_with_upload(&uid, "welcome", json!({ "NAME": "Jo" }), upload.clone());
    assert_eq!(again["token"], first["token"]);
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads[0]["state"], "done");
    assert_eq!(uploads[0]["attempts"], 1);
    assert_eq!(
        receiver.requests().len(),
        1,
        "the same upload was sent twice"
    );

    // The movie changes: the token's video is another one, and the same
    // upload sends it.
    put_movie(&api, &uid, "welcome", &movie("Hello", 1.0));
    api.render_with_upload(&uid, "welcome", json!({ "NAME": "Jo" }), upload);
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    let received = receiver.requests();
    assert_eq!(received.len(), 2);
    let sent = |i: usize| received[i].parts()[0].body.clone();
    assert_ne!(sent(0), sent(1));
    assert_eq!(sent(1), video(&api, &token), "the new video, byte for byte");
}

#[test]
fn an_upload_cut_off_by_kill_9_is_sent_after_the_restart() {
    let mut env = Env::with_settings(LOOPBACK);
    let api = env.client();
    let uid = project_with_movie(&api, "welcome");
    // The first connection takes the file and never answers.
    let receiver = Receiver::start(&[0, 200]);
    let body = api.render_with_upload(
        &uid,
        "welcome",
        json!({ "NAME": "Ana" }),
        to_http(&format!("{}/in", receiver.url), "ana.mp4"),
    );
    let token = body["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = json(api.get(&format!("/v2/render/{token}/status")));
        if status["uploads"][0]["state"] == "uploading" && receiver.requests().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never uploading: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.restart();
    let api = env.client();
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    assert_eq!(uploads[0]["attempts"], 2, "the cut-off attempt counts");
    let received = receiver.requests();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].parts()[0].body, video(&api, &token));
}

#[test]
fn an_upload_takes_the_viewers_render_instead_of_rendering_again() {
    let env = Env::with_settings(LOOPBACK);
    let api = env.client();
    let uid = api.create_project("uploads");
    let token = api.render_token(&uid, "long", &movie("Hi", 6.0), json!({ "NAME": "Li" }));
    // A viewer starts the render and reads it to its end meanwhile.
    let viewer = {
        let api = env.client();
        let token = token.clone();
        std::thread::spawn(move || video(&api, &token))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.metric("clipstream_renders_started_total{reason=\"viewer\"}") == 0 {
        assert!(
            Instant::now() < deadline,
            "the viewer's render never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let receiver = Receiver::start(&[200]);
    api.render_with_upload(
        &uid,
        "long",
        json!({ "NAME": "Li" }),
        to_http(&format!("{}/in", receiver.url), "li.mp4"),
    );
    let uploads = api.wait_uploads(&token, 90);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    let watched = viewer.join().unwrap();
    assert_eq!(receiver.requests()[0].parts()[0].body, watched);
    assert_eq!(
        api.metric("clipstream_renders_started_total{reason=\"viewer\"}"),
        1
    );
    assert_eq!(
        api.metric("clipstream_renders_started_total{reason=\"prerender\"}"),
        0,
        "the upload rendered the video again"
    );
}

#[test]
fn a_failed_render_fails_its_upload_and_a_deleted_project_ends_its_uploads_quietly() {
    let mut env = Env::with_settings(&[
        ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_FETCH_MAX_ATTEMPTS", "1"),
    ]);
    let api = env.client();
    let uid = project_with_movie(&api, "welcome");
    // A movie whose image source is missing: its render fails.
    let (missing, _) = clipstream_tests::serve_files(Vec::new());
    let broken = json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": format!("{missing}/gone.png") },
              "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    put_movie(&api, &uid, "broken", &broken);
    let receiver = Receiver::start(&[200]);
    let failed = api.render_with_upload(
        &uid,
        "broken",
        json!({}),
        to_http(&format!("{}/in", receiver.url), "broken.mp4"),
    );
    let token = failed["token"].as_str().unwrap().to_owned();
    let uploads = api.wait_uploads(&token, 60);
    assert_eq!(uploads[0]["state"], "failed", "{uploads:?}");
    let error = uploads[0]["error"].as_str().unwrap();
    assert!(error.starts_with("the render failed"), "{error}");
    assert_eq!(uploads[0]["attempts"], 0, "nothing was sent");
    assert_eq!(receiver.connections(), 0);

    // An upload held by its destination when its project is deleted.
    let hanging = Receiver::start(&[0]);
    let held = api.render_with_upload(
        &uid,
        "welcome",
        json!({ "NAME": "Al" }),
        to_http(&format!("{}/in", hanging.url), "al.mp4"),
    );
    let held_token = held["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hanging.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upload never reached its destination"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = json(api.delete(&format!("/v1/project/{uid}")));
    assert_eq!(status, 200, "{body}");
    let (status, _) = json(api.get(&format!("/v2/render/{held_token}/status")));
    assert_eq!(status, 404, "the token went with its project");
    drop(hanging);
    // After a restart nothing of the deleted project's upload runs again.
    env.restart();
    let api = env.client();
    let other = project_with_movie(&api, "welcome");
    let receiver = Receiver::start(&[200]);
    let body = api.render_with_upload(
        &other,
        "welcome",
        json!({ "NAME": "Bo" }),
        to_http(&format!("{}/in", receiver.url), "bo.mp4"),
    );
    let uploads = api.wait_uploads(body["token"].as_str().unwrap(), 60);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    let log = env.server().log_text();
    assert!(
        !log.contains("could not be recorded") && !log.contains("panicked"),
        "{log}"
    );
}
