//! The Shotstack Ingest API (CONTRACT section 7, issue 17): sources fetched
//! from a URL with a rendition, or sent to a signed upload URL by a plain
//! PUT, listed, read and deleted; their files hosted by Clipstream and
//! usable in Edits. Driven by Shotstack's own SDKs (tests/sdk/ingest.*)
//! where they reach, plain HTTP for the rest: the `stage` stage, the
//! signed URL's expiry and single use, other accounts' ids, bad fields,
//! callbacks.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clipstream_tests::media::ffprobe;
use clipstream_tests::{create_key, ffmpeg, http_client, json, noise, sdk, serve_files, Env, Key};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

/// `small_mp4` served by the test at `<base>/small.mp4`; returns its URL
/// and bytes.
fn served_mp4() -> (String, Vec<u8>) {
    let bytes = clipstream_tests::media::small_mp4();
    let (base, _) = serve_files(vec![("/small.mp4".into(), bytes.clone())]);
    (format!("{base}/small.mp4"), bytes)
}

/// A server whose fetches (and callbacks) may reach the test's loopback.
fn env() -> Env {
    Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_SHOTSTACK_CALLBACK_BACKOFF_MS", "50"),
    ])
}

fn api_key(key: &Key) -> String {
    format!("{}:{}", key.key, key.secret)
}

fn client() -> Client {
    http_client(Duration::from_secs(60))
}

fn python(host: &str, key: &str, args: &[&str]) -> Value {
    sdk::python("ingest.py", &[&[host, key], args].concat())
}

fn node(host: &str, key: &str, args: &[&str]) -> Value {
    sdk::node("ingest.js", &[&[host, key], args].concat())
}

fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let r = client().get(url).send().unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

/// A plain-HTTP call of the Ingest API with `key`.
fn ingest(env: &Env, key: &Key, method: Method, path: &str) -> reqwest::blocking::RequestBuilder {
    client()
        .request(method, format!("{}/ingest/{path}", env.server().url))
        .header("x-api-key", api_key(key))
}

/// Polls `GET sources/{id}` until the source and its renditions have
/// settled (ready, failed or deleted), for at most `secs`.
fn wait_settled(env: &Env, key: &Key, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = json(
            ingest(env, key, Method::GET, &format!("v1/sources/{id}"))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{body}");
        let a = &body["data"]["attributes"];
        let done = |s: &Value| matches!(s.as_str(), Some("ready" | "failed" | "deleted"));
        let renditions = a["outputs"]["renditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&a["status"]) && renditions.iter().all(|r| done(&r["status"])) {
            return body;
        }
        assert!(Instant::now() < deadline, "not settled in {secs} s: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ingested `small_mp4`'s facts as the SDKs' models give them: a
/// source's height is a string in the seed's schema.
fn assert_small_source(a: &Value, bytes: &[u8]) {
    assert_eq!(a["status"], "ready", "{a}");
    assert_eq!(a["width"], 320, "{a}");
    assert_eq!(a["height"], "240", "{a}");
    assert_eq!(a["fps"].as_f64(), Some(25.0), "{a}");
    let duration = a["duration"].as_f64().unwrap();
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
    let url = a["source"].as_str().unwrap();
    assert!(url.ends_with("/source.mp4"), "{url}");
    let r = client().get(url).send().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "video/mp4", "typed once read");
    assert_eq!(r.bytes().unwrap(), bytes, "the source byte for byte");
    for date in ["created", "updated"] {
        let d = a[date].as_str().unwrap();
        assert!(d.ends_with('Z') && d.contains('T') && d.len() == 24, "{d}");
    }
}

/// The rendition of the drivers' `fetch`: mp4, 160 wide (120 high, the
/// source's shape), 12 fps, hosted as `small-160.mp4`.
fn assert_small_rendition(r: &Value, execution_time: &str) {
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(160), Some(120)),
        "{r}"
    );
    assert_eq!(r["fps"].as_f64(), Some(12.0), "{r}");
    assert!(r[execution_time].as_f64().is_some_and(|t| t > 0.0), "{r}");
    assert_eq!(r["transformation"]["filename"], "small-160");
    let url = r["url"].as_str().unwrap();
    assert!(url.ends_with("/small-160.mp4"), "{url}");
    let (status, bytes) = get_bytes(url);
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.mp4");
    std::fs::write(&path, bytes).unwrap();
    let probe = ffprobe(&path);
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .cloned()
        .expect("a picture");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(160), Some(120))
    );
    assert_eq!(video["r_frame_rate"], "12/1", "{video}");
}

/// The uid of the account's `shotstack` project, through the ImpossibleFX
/// API.
fn shotstack_project(env: &Env) -> String {
    let (status, body) = json(env.client().get("/v1/list/project"));
    assert_eq!(status, 200, "{body}");
    body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "shotstack")
        .and_then(|p| p["uid"].as_str())
        .expect("the shotstack project")
        .to_owned()
}

/// An Edit of the `shotstack` project playing `src` renders through the
/// ImpossibleFX API.
fn assert_usable_in_an_edit(env: &Env, src: &str) {
    let uid = shotstack_project(env);
    let movie = json!({
        "timeline": { "tracks": [{ "clips": [{
            "asset": { "type": "video", "src": src }, "start": 0, "length": 1
        }] }] },
        "output": { "format": "mp4", "size": { "width": 160, "height": 120 } }
    });
    let api = env.client();
    let token = api.render_token(&uid, "uses-ingested", &movie, json!({}));
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.mp4");
    std::fs::write(&path, r.bytes().unwrap()).unwrap();
    let probe = ffprobe(&path);
    assert!(
        probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["width"] == 160),
        "{probe}"
    );
}

#[test]
fn the_python_sdk_ingests_a_url_with_a_rendition_and_deletes_it() {
    let (url, bytes) = served_mp4();
    let env = env();
    let key = api_key(&env.key);
    let host = format!("{}/ingest/v1", env.server().url);

    let answer = python(&host, &key, &["fetch", &url]);
    let queued = &answer["ok"]["queued"]["data"];
    assert_eq!(queued["type"], "source", "{answer}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let source = &answer["ok"]["source"]["data"];
    assert_eq!(source["id"], id.as_str());
    let a = &source["attributes"];
    assert_eq!(a["id"], id.as_str());
    assert_eq!(a["owner"], env.key.account.as_str());
    assert_eq!(a["input"], url.as_str());
    assert_small_source(a, &bytes);
    let rendition = &a["outputs"]["renditions"][0];
    assert_small_rendition(rendition, "execution_time");

    let list = python(&host, &key, &["list"]);
    let ids: Vec<&str> = list["ok"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);

    assert_usable_in_an_edit(&env, a["source"].as_str().unwrap());

    // One core: the rendition is an Edit of the shotstack project, seen by
    // the ImpossibleFX API as a dynamic movie.
    let movie = format!(
        "/v1/sdl/{}/ingest-{}",
        shotstack_project(&env),
        rendition["id"].as_str().unwrap()
    );
    let (status, edit) = json(env.client().get(&movie));
    assert_eq!(status, 200, "{edit}");
    assert_eq!(
        edit["output"]["size"],
        json!({ "width": 160, "height": 120 })
    );
    assert_eq!(edit["output"]["quality"], "high", "70 is in the top third");

    assert_eq!(python(&host, &key, &["delete", &id]), json!({ "ok": {} }));
    assert_eq!(env.client().get(&movie).status(), 404, "its Edit goes too");
    let gone = python(&host, &key, &["get", &id]);
    let a = &gone["ok"]["data"]["attributes"];
    assert_eq!(a["status"], "deleted", "{gone}");
    assert_eq!(a["outputs"]["renditions"][0]["status"], "deleted");
    for url in [&a["source"], &a["outputs"]["renditions"][0]["url"]] {
        assert_eq!(
            get_bytes(url.as_str().unwrap()).0,
            404,
            "{url} is no longer served"
        );
    }

    let unknown = python(
        &host,
        &key,
        &["get", "0f8fad5b-d9cb-469f-a165-70867728950e"],
    );
    assert_eq!(
        unknown,
        json!({ "exception": "NotFoundException", "status": 404 })
    );
    let wrong = python(&host, &format!("{}:wrong", env.key.key), &["list"]);
    assert_eq!(
        wrong,
        json!({ "exception": "ForbiddenException", "status": 403 })
    );
}

#[test]
fn the_node_sdk_ingests_a_url_and_a_plain_put_to_its_signed_upload_url() {
    let (url, bytes) = served_mp4();
    let env = env();
    let key = api_key(&env.key);
    let host = format!("{}/ingest/v1", env.server().url);

    let answer = node(&host, &key, &["fetch", &url]);
    let a = &answer["ok"]["source"]["data"]["attributes"];
    assert_small_source(a, &bytes);
    assert_small_rendition(&a["outputs"]["renditions"][0], "executionTime");

    let upload = node(&host, &key, &["upload"]);
    let data = &upload["ok"]["data"];
    assert_eq!(data["type"], "upload", "{upload}");
    let id = data["id"].as_str().unwrap();
    assert_eq!(data["attributes"]["id"], id);
    assert!(data["attributes"]["expires"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let signed = data["attributes"]["url"].as_str().unwrap();
    assert_eq!(
        node(&host, &key, &["get", id]),
        json!({ "exception": "Error", "status": 404 }),
        "no source before its file is sent"
    );
    // Exactly as Shotstack's docs say: `curl -X PUT -T video.mp4 <url>`.
    let r = client().put(signed).body(bytes.clone()).send().unwrap();
    assert_eq!(r.status(), 200);
    let body = wait_settled(&env, &env.key, id, 30);
    let a = &body["data"]["attributes"];
    assert_small_source(a, &bytes);
    assert!(
        a.get("input").is_none(),
        "no input for a direct upload: {a}"
    );
}

/// A loopback receiver of callbacks: each POST's JSON body, answered 200.
fn callback_receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    let _ = tx.send(v);
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn the_stage_stage_ingests_with_callbacks_and_other_accounts_see_nothing() {
    let (url, _) = served_mp4();
    let (callback, calls) = callback_receiver();
    let env = env();
    let body = json!({
        "url": url,
        "outputs": { "renditions": [{ "format": "mp4", "resolution": "preview", "fit": "contain", "quality": 40.0 }] },
        "destinations": { "provider": "shotstack", "exclude": false },
        "callback": callback,
    });
    let (status, answer) = json(
        ingest(&env, &env.key, Method::POST, "stage/sources")
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["data"]["id"].as_str().unwrap().to_owned();
    let settled = wait_settled(&env, &env.key, &id, 60);
    let rendition = &settled["data"]["attributes"]["outputs"]["renditions"][0];
    assert_eq!(rendition["status"], "ready", "{settled}");
    assert_eq!(
        (rendition["width"].as_u64(), rendition["height"].as_u64()),
        (Some(512), Some(288))
    );
    assert_eq!(
        rendition["transformation"], body["outputs"]["renditions"][0],
        "echoed as sent"
    );

    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(
            calls
                .recv_timeout(Duration::from_secs(20))
                .expect("a callback"),
        );
    }
    seen.sort_by_key(|c| c["action"].as_str().unwrap_or_default().to_owned());
    let (fetch, rendition_call) = (&seen[0], &seen[1]);
    assert_eq!(fetch["type"], "ingest");
    assert_eq!(fetch["action"], "fetch");
    assert_eq!(fetch["id"], id.as_str());
    assert_eq!(fetch["owner"], env.key.account.as_str());
    assert_eq!(fetch["status"], "ready");
    assert_eq!(fetch["url"], settled["data"]["attributes"]["source"]);
    assert!(fetch.get("error").is_none(), "{fetch}");
    assert!(fetch["completed"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rendition_call["action"], "rendition");
    assert_eq!(rendition_call["id"], rendition["id"]);
    assert_eq!(rendition_call["status"], "ready");
    assert_eq!(rendition_call["url"], rendition["url"]);

    let other = create_key(&env.data_dir(), None);
    for method in [Method::GET, Method::DELETE] {
        let r = ingest(&env, &other, method.clone(), &format!("v1/sources/{id}"))
            .send()
            .unwrap();
        let (status, body) = json(r);
        assert_eq!(status, 404, "{method} {body}");
        assert_eq!(body["errors"][0]["status"], "404");
    }
    let (status, list) = json(
        ingest(&env, &other, Method::GET, "v1/sources")
            .send()
            .unwrap(),
    );
    assert_eq!((status, list), (200, json!({ "data": [] })));
    assert_eq!(
        wait_settled(&env, &env.key, &id, 1)["data"]["attributes"]["status"],
        "ready"
    );
}

#[test]
fn wrong_fields_are_refused_at_their_path() {
    let env = env();
    let post = |body: Value| {
        json(
            ingest(&env, &env.key, Method::POST, "v1/sources")
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let with = |rendition: Value| json!({ "url": "http://127.0.0.1:9/a.mp4", "outputs": { "renditions": [rendition] } });
    for (body, status, pointer) in [
        (json!({}), 400, "/url"),
        (json!({ "url": "file:///etc/passwd" }), 400, "/url"),
        (
            json!({ "url": "http://127.0.0.1:9/a.mp4", "colour": "red" }),
            400,
            "/colour",
        ),
        (
            with(json!({ "format": "webm" })),
            400,
            "/outputs/renditions/0/format",
        ),
        (
            with(json!({ "format": "jpg" })),
            400,
            "/outputs/renditions/0/format",
        ),
        (
            with(json!({ "fit": "fill" })),
            400,
            "/outputs/renditions/0/fit",
        ),
        (
            with(json!({ "resolution": "4k" })),
            400,
            "/outputs/renditions/0/resolution",
        ),
        (
            with(json!({ "quality": 101 })),
            400,
            "/outputs/renditions/0/quality",
        ),
        (with(json!({ "fps": 26 })), 400, "/outputs/renditions/0/fps"),
        (
            with(json!({ "size": { "width": 161 } })),
            400,
            "/outputs/renditions/0/size/width",
        ),
        (
            with(json!({ "filename": "a/b" })),
            400,
            "/outputs/renditions/0/filename",
        ),
        (
            with(json!({ "speed": { "speed": 2 } })),
            501,
            "/outputs/renditions/0/speed",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/a.mp4", "destinations": { "provider": "shotstack", "exclude": true } }),
            501,
            "/destinations/exclude",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/a.mp4", "destinations": { "provider": "mux" } }),
            501,
            "/destinations/provider",
        ),
    ] {
        let (got, answer) = post(body.clone());
        assert_eq!(got, status, "{body}: {answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["status"], status.to_string(), "{answer}");
        assert_eq!(error["source"]["pointer"], pointer, "{body}: {answer}");
        assert!(
            error["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{answer}"
        );
    }
    let (_, answer) = post(with(json!({ "fit": "fill" })));
    let detail = answer["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("crop, cover, contain"),
        "the allowed values: {detail}"
    );
    let (status, list) = json(
        ingest(&env, &env.key, Method::GET, "v1/sources")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, list),
        (200, json!({ "data": [] })),
        "nothing refused was kept"
    );

    // An empty body sent as JSON is not parsed: POST upload takes none.
    let r = ingest(&env, &env.key, Method::POST, "v1/upload")
        .header("content-type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_signed_upload_url_takes_one_whole_put_before_it_expires() {
    let bytes = clipstream_tests::media::small_mp4();
    // No private fetches allowed: the Edit below reads the uploaded source
    // from the store, not over HTTP.
    let env = Env::with_settings(&[
        // Short, so that the test sees one expire; what must happen before
        // it (a refused body, the PUT, the reuse) comes first.
        ("CLIPSTREAM_SHOTSTACK_UPLOAD_URL_SECS", "3"),
        ("CLIPSTREAM_LIMITS_MAX_ASSET_BYTES", "100000"),
    ]);
    let ask = || {
        let (status, body) = json(
            ingest(&env, &env.key, Method::POST, "v1/upload")
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        (
            id,
            body["data"]["attributes"]["url"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    let (id, url) = ask();
    let (_, late_url) = ask();
    let put = |url: &str, body: Vec<u8>| {
        let r = client().put(url).body(body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    let error_of = |status: u16, text: &str| {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{status}: {text}"));
        assert_eq!(v["errors"][0]["status"], status.to_string(), "{v}");
        v["errors"][0]["code"].as_str().unwrap().to_owned()
    };

    // Too large: refused whole, nothing kept, the URL still good.
    let (status, text) = put(&url, noise(7, 150_000));
    assert_eq!(status, 413, "{text}");
    let r = ingest(&env, &env.key, Method::GET, &format!("v1/sources/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "no source from a refused body");

    let (status, text) = put(&url, bytes.clone());
    assert_eq!(status, 200, "{text}");
    let (status, text) = put(&url, bytes.clone());
    assert_eq!(
        (status, error_of(status, &text).as_str()),
        (409, "upload_used")
    );

    // Altered URLs are refused whatever the time: the MAC covers id and
    // expiry, and nothing else may be added.
    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if url.ends_with('0') { '1' } else { '0' }
    );
    for bad in [
        tampered,
        format!("{url}&x=1"),
        url.replace("expires=", "expires=1"),
    ] {
        let (status, text) = put(&bad, bytes.clone());
        assert_eq!(
            (status, error_of(status, &text).as_str()),
            (403, "forbidden"),
            "{bad}"
        );
    }

    let body = wait_settled(&env, &env.key, &id, 30);
    let a = &body["data"]["attributes"];
    assert_small_source(a, &bytes);
    assert_usable_in_an_edit(&env, a["source"].as_str().unwrap());

    // Past its expiry (whole seconds, as the URL says) the other URL is refused.
    let expires: u64 = late_url
        .split("expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= expires
    {
        assert!(Instant::now() < deadline, "the clock passes {expires}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, text) = put(&late_url, bytes);
    assert_eq!(
        (status, error_of(status, &text).as_str()),
        (403, "forbidden")
    );
    assert!(text.contains("expired"), "{text}");
}

/// A source server whose first GET is read and never answered (the
/// server that fetches it is stopped meanwhile); later ones get `bytes`.
/// Returns its URL and how many requests it has read.
fn stalling_once(bytes: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow.mp4", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                    break;
                }
            }
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                held.push(stream);
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&bytes);
        }
    });
    (url, seen)
}

#[test]
fn an_ingest_cut_off_by_a_stop_is_finished_after_the_restart() {
    let bytes = clipstream_tests::media::small_mp4();
    let (url, seen) = stalling_once(bytes.clone());
    let mut env = env();
    let body = json!({ "url": url, "outputs": { "renditions": [{ "format": "mp4", "size": { "width": 160 } }] } });
    let (status, answer) = json(
        ingest(&env, &env.key, Method::POST, "v1/sources")
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["data"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the source is asked for");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, got) = json(
        ingest(&env, &env.key, Method::GET, &format!("v1/sources/{id}"))
            .send()
            .unwrap(),
    );
    assert_eq!(got["data"]["attributes"]["status"], "importing", "{got}");

    env.restart();
    let settled = wait_settled(&env, &env.key, &id, 60);
    let a = &settled["data"]["attributes"];
    assert_small_source(a, &bytes);
    assert_eq!(a["outputs"]["renditions"][0]["status"], "ready", "{a}");
    assert_eq!(a["outputs"]["renditions"][0]["width"], 160);
}

/// ffprobe's first stream of `bytes`.
fn first_stream(bytes: &[u8], name: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    ffprobe(&path)["streams"][0].clone()
}

#[test]
fn images_and_sound_keep_their_kind_and_a_missing_url_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (png, mp3) = (dir.path().join("pic.png"), dir.path().join("tone.mp3"));
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=400x300",
            "-frames:v",
            "1",
        ],
        &png,
    );
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1.5",
            "-c:a",
            "libmp3lame",
        ],
        &mp3,
    );
    let png = std::fs::read(&png).unwrap();
    let font =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../actors/fonts/DejaVuSans.ttf"))
            .unwrap();
    let (base, _) = serve_files(vec![
        ("/pic.png".into(), png.clone()),
        ("/picture".into(), png),
        ("/tone.mp3".into(), std::fs::read(&mp3).unwrap()),
        ("/font.ttf".into(), font.clone()),
    ]);
    let (callback, calls) = callback_receiver();
    let env = env();
    let post = |body: Value| {
        let (status, answer) = json(
            ingest(&env, &env.key, Method::POST, "v1/sources")
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 201, "{answer}");
        let id = answer["data"]["id"].as_str().unwrap().to_owned();
        wait_settled(&env, &env.key, &id, 60)["data"]["attributes"].clone()
    };

    let image = post(
        json!({ "url": format!("{base}/pic.png"), "outputs": { "renditions": [
        { "format": "jpg", "size": { "width": 200, "height": 200 }, "fit": "cover" },
        {}
    ] } }),
    );
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_str()),
        (Some(400), Some("300"))
    );
    assert!(image.get("duration").is_none(), "{image}");
    let renditions = image["outputs"]["renditions"].as_array().unwrap();
    for (r, (codec, w, h)) in renditions
        .iter()
        .zip([("mjpeg", 200, 200), ("png", 400, 300)])
    {
        assert_eq!(r["status"], "ready", "{r}");
        let (status, bytes) = get_bytes(r["url"].as_str().unwrap());
        assert_eq!(status, 200);
        let s = first_stream(&bytes, "r");
        assert_eq!(
            (
                s["codec_name"].as_str(),
                s["width"].as_u64(),
                s["height"].as_u64()
            ),
            (Some(codec), Some(w), Some(h)),
            "{r}"
        );
    }

    let sound = post(
        json!({ "url": format!("{base}/tone.mp3"), "outputs": { "renditions": [{ "format": "mp3", "quality": 20 }] } }),
    );
    assert!(sound.get("width").is_none(), "{sound}");
    assert!(
        (sound["duration"].as_f64().unwrap() - 1.5).abs() < 0.2,
        "{sound}"
    );
    let r = &sound["outputs"]["renditions"][0];
    assert_eq!(r["status"], "ready", "{r}");
    let s = first_stream(&get_bytes(r["url"].as_str().unwrap()).1, "r.mp3");
    assert_eq!(s["codec_name"], "mp3");

    // A font is no media: kept as it is, for the Edit's timeline.fonts.
    let typeface = post(json!({ "url": format!("{base}/font.ttf") }));
    assert_eq!(typeface["status"], "ready", "{typeface}");
    assert!(typeface.get("width").is_none(), "{typeface}");
    let url = typeface["source"].as_str().unwrap();
    assert!(url.ends_with("/source.ttf"), "{url}");
    assert_eq!(get_bytes(url), (200, font));

    // The kind shows only once it is read: the rendition fails, the source
    // stays.
    let unnamed = post(
        json!({ "url": format!("{base}/picture"), "outputs": { "renditions": [{ "format": "mp4" }] } }),
    );
    assert_eq!(unnamed["status"], "ready", "{unnamed}");
    let r = &unnamed["outputs"]["renditions"][0];
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("image source"), "{r}");

    let missing = post(json!({ "url": format!("{base}/missing.mp4"), "callback": callback }));
    assert_eq!(missing["status"], "failed", "{missing}");
    assert!(
        missing["error"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    assert!(missing.get("source").is_none(), "{missing}");
    let call = calls
        .recv_timeout(Duration::from_secs(20))
        .expect("a callback");
    assert_eq!(
        (call["action"].as_str(), call["status"].as_str()),
        (Some("fetch"), Some("failed")),
        "{call}"
    );
    assert!(call["error"].as_str().unwrap().contains("404"), "{call}");
    assert!(call.get("url").is_none(), "{call}");
}

/// Asks `POST upload` once: its status and body.
fn ask_upload(env: &Env) -> (u16, Value) {
    json(
        ingest(env, &env.key, Method::POST, "v1/upload")
            .send()
            .unwrap(),
    )
}

#[test]
fn upload_urls_are_capped_and_a_deleted_sources_url_stays_spent() {
    let bytes = clipstream_tests::media::small_mp4();
    let env = Env::with_settings(&[("CLIPSTREAM_SHOTSTACK_MAX_WAITING_UPLOADS", "2")]);
    let (status, first) = ask_upload(&env);
    assert_eq!(status, 200, "{first}");
    let (status, second) = ask_upload(&env);
    assert_eq!(status, 200, "{second}");
    // A third waiting URL is one too many, in the Ingest error shape.
    let (status, body) = ask_upload(&env);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["status"], "429", "{body}");
    assert_eq!(body["errors"][0]["code"], "too_many_uploads", "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("2 upload URLs"),
        "{body}"
    );

    // A PUT begins (the source appears), its owner deletes the source,
    // and the client goes away: the source stays deleted and its URL is
    // spent, not given back.
    let id = first["data"]["id"].as_str().unwrap().to_owned();
    let url = first["data"]["attributes"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let target = url.split_once("/ingest-upload/").unwrap().1;
    let server = env.server().url.trim_start_matches("http://").to_owned();
    let mut put = std::net::TcpStream::connect(&server).unwrap();
    write!(
        put,
        "PUT /ingest-upload/{target} HTTP/1.1\r\nHost: {server}\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    put.write_all(&bytes[..1000]).unwrap();
    put.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = json(
            ingest(&env, &env.key, Method::GET, &format!("v1/sources/{id}"))
                .send()
                .unwrap(),
        );
        if status == 200 {
            assert_eq!(body["data"]["attributes"]["status"], "importing", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the PUT never began: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = ingest(&env, &env.key, Method::DELETE, &format!("v1/sources/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    drop(put);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, text) = loop {
        let r = client().put(&url).body(bytes.clone()).send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        // 409 while the cut-off PUT is still being let go.
        if status != 409 {
            break (status, text);
        }
        assert!(Instant::now() < deadline, "the cut-off PUT is never let go");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("deleted"), "{text}");
    let body = wait_settled(&env, &env.key, &id, 10);
    assert_eq!(body["data"]["attributes"]["status"], "deleted", "{body}");

    // The other URL, used, no longer counts against the cap.
    let url = second["data"]["attributes"]["url"].as_str().unwrap();
    let r = client().put(url).body(bytes.clone()).send().unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = ask_upload(&env);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn deleting_a_source_stops_its_renditions() {
    let (url, _) = served_mp4();
    // One renderer, so one source is worked on at a time: the second
    // source below is taken up only once the first's work has ended.
    let env = Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_RENDER_WORKERS", "1"),
    ]);
    let post = |body: Value| {
        let (status, answer) = json(
            ingest(&env, &env.key, Method::POST, "v1/sources")
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 201, "{answer}");
        answer["data"]["id"].as_str().unwrap().to_owned()
    };
    let renditions: Vec<Value> = [64, 96, 128, 160]
        .iter()
        .map(|w| json!({ "format": "mp4", "size": { "width": w, "height": 48 } }))
        .collect();
    let id = post(json!({ "url": url, "outputs": { "renditions": renditions } }));
    let deadline = Instant::now() + Duration::from_secs(30);
    let rids: Vec<String> = loop {
        let (status, body) = json(
            ingest(&env, &env.key, Method::GET, &format!("v1/sources/{id}"))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{body}");
        let a = &body["data"]["attributes"];
        if a["status"] == "ready" {
            break a["outputs"]["renditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect();
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = ingest(&env, &env.key, Method::DELETE, &format!("v1/sources/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);

    let other = post(json!({ "url": url }));
    let body = wait_settled(&env, &env.key, &other, 60);
    assert_eq!(body["data"]["attributes"]["status"], "ready", "{body}");

    // The first source's work has ended: no rendition came back.
    let body = wait_settled(&env, &env.key, &id, 10);
    let a = &body["data"]["attributes"];
    assert_eq!(a["status"], "deleted", "{body}");
    let uid = shotstack_project(&env);
    for (r, rid) in a["outputs"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&rids)
    {
        assert_eq!(r["status"], "deleted", "{body}");
        let movie = format!("/v1/sdl/{uid}/ingest-{rid}");
        assert_eq!(env.client().get(&movie).status(), 404, "{movie} stays gone");
    }
}

#[test]
fn a_put_still_arriving_when_its_url_expires_is_cut() {
    let env = Env::with_settings(&[("CLIPSTREAM_SHOTSTACK_UPLOAD_URL_SECS", "2")]);
    let (status, answer) = ask_upload(&env);
    assert_eq!(status, 200, "{answer}");
    let url = answer["data"]["attributes"]["url"].as_str().unwrap();
    let target = url.split_once("/ingest-upload/").unwrap().1;
    let server = env.server().url.trim_start_matches("http://").to_owned();
    let mut put = std::net::TcpStream::connect(&server).unwrap();
    put.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A body that never ends: the server answers once the URL expires.
    write!(
        put,
        "PUT /ingest-upload/{target} HTTP/1.1\r\nHost: {server}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    put.write_all(&[0; 1000]).unwrap();
    let mut head = String::new();
    BufReader::new(&put).read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}
