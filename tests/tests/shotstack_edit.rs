//! The Shotstack Edit API's renders and templates (CONTRACT section 7,
//! issue 17), driven by Shotstack's own SDKs (PyPI `shotstack-sdk` 0.2.8,
//! npm `shotstack-sdk` 0.2.9, installed by scripts/peers.sh) through
//! tests/sdk/edit.{py,js}: a render with merge fields and a callback goes
//! through its statuses to `done`, its hosted file is what the Edit asked
//! for; a template lives its whole life; an invalid Edit and an unknown id
//! are the SDKs' own exceptions. What the SDKs cannot reach (the `stage`
//! stage, another account's ids, flags in odd case, the Edit echoed byte
//! for byte, the ImpossibleFX side of a template) is checked over plain
//! HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use clipstream_tests::media::ffprobe;
use clipstream_tests::peers::apis::{Apis, OAuthClient};
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::peers::seaweedfs::{self, SeaweedFs};
use clipstream_tests::sdk;
use clipstream_tests::{create_key, ffmpeg, http_client, serve_files, Env};
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// A 2-second 320×240 H.264 video with sound, served at the returned URL.
fn small_mp4() -> String {
    let (base, _) = serve_files(vec![(
        "/small.mp4".into(),
        clipstream_tests::media::small_mp4(),
    )]);
    format!("{base}/small.mp4")
}

/// Fetches and callbacks may reach the test's loopback servers.
fn env() -> Env {
    Env::with_settings(&[("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true")])
}

fn api_key(key: &clipstream_tests::Key) -> String {
    format!("{}:{}", key.key, key.secret)
}

fn host(env: &Env, stage: &str) -> String {
    format!("{}/edit/{stage}", env.server().url)
}

fn python(host: &str, key: &str, args: &[&str]) -> Value {
    sdk::python("edit.py", &[&[host, key], args].concat())
}

fn node(host: &str, key: &str, args: &[&str]) -> Value {
    sdk::node("edit.js", &[&[host, key], args].concat())
}

type Driver = fn(&str, &str, &[&str]) -> Value;

const STATUSES: [&str; 6] = [
    "queued",
    "fetching",
    "rendering",
    "saving",
    "done",
    "failed",
];

/// Polls the render's status through the SDK until it is final; returns
/// every status seen, in order without repeats, and the last response.
fn wait_final(sdk: Driver, host: &str, key: &str, id: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let answer = sdk(host, key, &["status", id]);
        let response = answer["ok"]["response"].clone();
        let status = response["status"]
            .as_str()
            .unwrap_or_else(|| panic!("no status: {answer}"))
            .to_owned();
        assert!(STATUSES.contains(&status.as_str()), "{status}");
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "done" || status == "failed" {
            return (seen, response);
        }
        assert!(Instant::now() < deadline, "not final in time: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The statuses a render went through are in the seed's order.
fn assert_in_order(seen: &[String]) {
    let rank = |s: &String| STATUSES.iter().position(|x| x == s).unwrap();
    assert!(
        seen.windows(2).all(|w| rank(&w[0]) < rank(&w[1])),
        "{seen:?}"
    );
}

/// The callback's one POST, waited for.
fn callback_of(receiver: &Receiver) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(request) = receiver.requests().first() {
            assert_eq!(request.method, "POST");
            return serde_json::from_slice(&request.body).expect("a JSON callback");
        }
        assert!(Instant::now() < deadline, "no callback came");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn download(url: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let response = http_client(Duration::from_secs(30))
        .get(url)
        .send()
        .expect("GET the hosted file");
    assert_eq!(response.status(), 200, "{url}");
    let path = dir.join(name);
    std::fs::write(&path, response.bytes().unwrap()).unwrap();
    path
}

/// The video, poster and thumbnail a done render hosts: 320×240 for
/// `secs` seconds, a 320×240 poster, a half-size thumbnail.
fn assert_outputs(response: &Value, secs: f64) {
    let dir = tempfile::tempdir().unwrap();
    let id = response["id"].as_str().unwrap();
    let url = response["url"].as_str().expect("a url once done");
    assert!(url.ends_with(&format!("/{id}.mp4")), "{url}");
    let facts = ffprobe(&download(url, dir.path(), "out.mp4"));
    let video = facts["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream")
        .clone();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    let duration: f64 = facts["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - secs).abs() < 0.15, "{duration}");
    assert!((response["duration"].as_f64().unwrap() - secs).abs() < 1e-9);
    for (field, suffix, size) in [
        ("poster", "-poster.jpg", (320, 240)),
        ("thumbnail", "-thumb.jpg", (160, 120)),
    ] {
        let url = response[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}"));
        assert!(url.ends_with(&format!("/{id}{suffix}")), "{url}");
        let facts = ffprobe(&download(url, dir.path(), suffix));
        let image = &facts["streams"][0];
        assert_eq!(image["codec_name"], "mjpeg", "{field}");
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(size.0), Some(size.1)),
            "{field}"
        );
    }
}

fn assert_callback(callback: &Value, response: &Value, owner: &str) {
    assert_eq!(callback["type"], "edit");
    assert_eq!(callback["action"], "render");
    assert_eq!(callback["id"], response["id"]);
    assert_eq!(callback["owner"], owner);
    assert_eq!(callback["status"], "done");
    assert_eq!(callback["url"], response["url"]);
    assert!(callback.get("error").is_none(), "no error, not a null one");
    let completed = callback["completed"].as_str().expect("completed");
    assert!(
        completed.ends_with('Z') && completed.contains('T'),
        "{completed}"
    );
}

#[test]
fn the_python_sdk_renders_an_edit_with_merge_fields_and_a_callback() {
    let video = small_mp4();
    let env = env();
    let key = api_key(&env.key);
    let host = host(&env, "v1");
    let receiver = Receiver::start(&[200]);
    let callback = format!("{}/done", receiver.url);
    let queued = python(&host, &key, &["render", &video, &callback]);
    let queued = &queued["ok"];
    assert_eq!(queued["success"], true, "{queued}");
    assert_eq!(queued["message"], "Created");
    assert_eq!(queued["response"]["message"], "Render Successfully Queued");
    let id = queued["response"]["id"].as_str().unwrap().to_owned();
    assert!(uuid_v4(&id), "{id}");

    let (seen, response) = wait_final(python, &host, &key, &id);
    assert_in_order(&seen);
    assert_eq!(seen.last().map(String::as_str), Some("done"), "{response}");
    assert_eq!(response["id"], id.as_str());
    assert_eq!(response["owner"], env.key.account.as_str());
    assert!(response["render_time"].as_f64().unwrap() > 0.0);
    for date in ["created", "updated"] {
        assert!(response[date].as_str().unwrap().ends_with('Z'), "{date}");
    }
    assert!(response.get("error").is_none(), "{response}");
    assert_outputs(&response, 2.0);
    assert_callback(&callback_of(&receiver), &response, &env.key.account);
    // The SDK read the Edit back into its model (it drops the assets, whose
    // oneOf it cannot tell apart); the words are checked over plain HTTP.
    assert!(
        response["data"]["timeline"]["tracks"].is_array(),
        "{response}"
    );
    let merged = data_of(&env, &id, true);
    assert!(
        merged.contains("Hello Jane") && !merged.contains("{{NAME}}"),
        "{merged}"
    );
    let sent = data_of(&env, &id, false);
    assert!(
        sent.contains("Hello {{NAME}}") && sent.contains("\"merge\""),
        "{sent}"
    );

    // The Serve API lists the render's three files, at the same URLs.
    let served: Value = http_client(Duration::from_secs(30))
        .get(format!("{}/serve/v1/assets/render/{id}", env.server().url))
        .header("x-api-key", &key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut files: Vec<(String, String)> = served["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{served}"))
        .iter()
        .map(|d| {
            let a = &d["attributes"];
            (
                a["filename"].as_str().unwrap().to_owned(),
                a["url"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    files.sort();
    let expected: Vec<(String, String)> = [
        (format!("{id}-poster.jpg"), &response["poster"]),
        (format!("{id}-thumb.jpg"), &response["thumbnail"]),
        (format!("{id}.mp4"), &response["url"]),
    ]
    .into_iter()
    .map(|(name, url)| (name, url.as_str().unwrap().to_owned()))
    .collect();
    assert_eq!(files, expected);
}

/// `data` of a render as plain text, with `merged` or without.
fn data_of(env: &Env, id: &str, merged: bool) -> String {
    let api = Plain::new(env, &env.key, "v1");
    let (status, body) = api.json(
        reqwest::Method::GET,
        &format!("/render/{id}?data=true&merged={merged}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["response"]["data"].to_string()
}

#[test]
fn the_node_sdk_renders_an_edit_through_its_statuses() {
    let env = env();
    let key = api_key(&env.key);
    let host = host(&env, "v1");
    let receiver = Receiver::start(&[200]);
    let callback = format!("{}/done", receiver.url);
    let queued = node(&host, &key, &["render", "_", &callback]);
    let id = queued["ok"]["response"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert!(uuid_v4(&id), "{id}");
    let (seen, response) = wait_final(node, &host, &key, &id);
    assert_in_order(&seen);
    assert_eq!(seen.last().map(String::as_str), Some("done"), "{response}");
    assert!(response["renderTime"].as_f64().unwrap() > 0.0);
    assert_outputs(&response, 2.0);
    assert_callback(&callback_of(&receiver), &response, &env.key.account);
}

/// The steps of a driver's `templates` run, by name.
fn steps(answer: &Value) -> std::collections::HashMap<String, Value> {
    answer["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

/// What both SDKs see of a template's life; returns the id of the render
/// of the template.
fn assert_template_life(env: &Env, answer: &Value, read_back: bool) -> String {
    let steps = steps(answer);
    let made = &steps["create"]["ok"];
    assert_eq!(made["message"], "Created", "{answer}");
    assert_eq!(made["response"]["message"], "Template Successfully Created");
    let id = made["response"]["id"].as_str().unwrap();
    assert!(uuid_v4(id), "{id}");
    let list = &steps["list"]["ok"]["response"];
    assert_eq!(list["owner"], env.key.account.as_str());
    let listed = list["templates"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "renders' Edits are not templates: {list}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["name"], "Greeting");
    assert!(listed[0]["created"].as_str().unwrap().ends_with('Z'));
    if read_back {
        for (step, name) in [("get", "Greeting"), ("get_updated", "Greeting, renamed")] {
            let got = &steps[step]["ok"]["response"];
            assert_eq!(got["id"], id, "{step}");
            assert_eq!(got["name"], name, "{step}");
            assert_eq!(got["owner"], env.key.account.as_str());
            assert!(got["template"]["timeline"].is_object(), "{got}");
        }
    }
    let updated = &steps["update"]["ok"];
    assert_eq!(
        updated["response"]["message"],
        "Template Successfully Updated"
    );
    assert_eq!(updated["response"]["id"], id);
    let rendered = &steps["render"]["ok"];
    assert_eq!(rendered["message"], "Created", "{answer}");
    assert_eq!(
        rendered["response"]["message"],
        "Render Successfully Queued"
    );
    assert!(steps["delete"].get("exception").is_none(), "{answer}");
    assert_eq!(steps["get_deleted"]["status"], 404, "{answer}");
    rendered["response"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn the_python_sdk_takes_a_template_through_its_whole_life() {
    let video = small_mp4();
    let env = env();
    let key = api_key(&env.key);
    let host = host(&env, "v1");
    let answer = python(&host, &key, &["templates", &video]);
    let render = assert_template_life(&env, &answer, true);
    let (seen, response) = wait_final(python, &host, &key, &render);
    assert_eq!(seen.last().map(String::as_str), Some("done"), "{response}");
    // Rendered with the request's merge field over the template's own.
    let text = data_of(&env, &render, true);
    assert!(text.contains("Hello Bob"), "{text}");
    assert_outputs(&response, 1.0);
}

/// The Node SDK cannot read an Edit back (its `Asset` and `ClipStart`
/// oneOf models throw on valid JSON, as they would against Shotstack), so
/// it reads no template; the Python SDK and plain HTTP do.
#[test]
fn the_node_sdk_takes_a_template_through_its_whole_life() {
    let env = env();
    let key = api_key(&env.key);
    let host = host(&env, "v1");
    let answer = node(&host, &key, &["templates", "_"]);
    let render = assert_template_life(&env, &answer, false);
    let (seen, response) = wait_final(node, &host, &key, &render);
    assert_eq!(seen.last().map(String::as_str), Some("done"), "{response}");
    let text = data_of(&env, &render, true);
    assert!(text.contains("Hello Bob"), "{text}");
}

#[test]
fn an_invalid_edit_and_an_unknown_id_are_the_sdks_own_exceptions() {
    let env = env();
    let key = api_key(&env.key);
    let host = host(&env, "v1");
    let unknown = "6f1b0a52-4b9e-4c55-9d6e-2a3c1f0e9b7d";

    let invalid = python(&host, &key, &["invalid"]);
    assert_eq!(invalid["exception"], "ApiException", "{invalid}");
    assert_eq!(invalid["status"], 400);
    let body: Value = serde_json::from_str(invalid["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(
        body["response"]["error"]["param"],
        "timeline.tracks[0].clips[0].length"
    );
    let missing = python(&host, &key, &["unknown", unknown]);
    assert_eq!(missing["exception"], "NotFoundException", "{missing}");
    assert_eq!(missing["status"], 404);

    let invalid = node(&host, &key, &["invalid"]);
    assert_eq!(invalid["status"], 400, "{invalid}");
    let missing = node(&host, &key, &["unknown", unknown]);
    assert_eq!(missing["status"], 404, "{missing}");
}

/// Plain HTTP with an `x-api-key`.
struct Plain {
    http: Client,
    base: String,
    key: String,
}

impl Plain {
    fn new(env: &Env, key: &clipstream_tests::Key, stage: &str) -> Plain {
        Plain {
            http: http_client(Duration::from_secs(60)),
            base: host(env, stage),
            key: api_key(key),
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().expect("request");
        (response.status().as_u16(), response.text().unwrap())
    }

    fn json(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = self.send(method, path, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// An Edit as a person might type it: odd spacing, keys out of the
/// schema's order, `25.0` and `0.0`, a transparent background.
const TYPED_EDIT: &str = r##"{ "output" : {"fps":25.0, "format":"mp4","size":{"height":240,"width":320}},
  "merge":[{"replace":"Ann","find":"NAME"}],
  "timeline":{"tracks":[{"clips":[{"length":1.0,"start":0.0,
     "asset":{"type":"html","html":"<p>{{NAME}}</p>","width":320,"height":240,"background":"transparent"}}]}],
   "background":"#000000"}}"##;

#[test]
fn plain_http_the_stage_stage_flags_in_any_case_and_the_edit_echoed_as_sent() {
    let env = env();
    let api = Plain::new(&env, &env.key, "stage");
    let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(TYPED_EDIT));
    assert_eq!(status, 201, "{queued}");
    assert_eq!(queued["message"], "Created");
    let id = queued["response"]["id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, body) = api.json(reqwest::Method::GET, &format!("/render/{id}"), None);
        assert_eq!(status, 200, "{body}");
        let response = &body["response"];
        assert!(
            response.get("data").is_none(),
            "data only when asked: {body}"
        );
        // Present as null until done, never left out.
        assert!(response.get("poster").is_some() && response.get("thumbnail").is_some());
        if response["status"] == "done" {
            break response.clone();
        }
        assert_ne!(response["status"], "failed", "{body}");
        assert!(Instant::now() < deadline, "not done in time");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        done["poster"].is_null() && done["thumbnail"].is_null(),
        "none asked: {done}"
    );
    assert!(done["url"].as_str().unwrap().contains("/hosted/"));

    // The Edit exactly as sent, whatever the flags' case.
    let (status, text) = api.send(
        reqwest::Method::GET,
        &format!("/render/{id}?data=True&merged=FALSE"),
        None,
    );
    assert_eq!(status, 200);
    assert!(text.contains(&format!("\"data\":{TYPED_EDIT}")), "{text}");
    // With merged, the merge field is in place.
    let (_, merged) = api.json(
        reqwest::Method::GET,
        &format!("/render/{id}?data=TRUE&merged=tRuE"),
        None,
    );
    let text = merged["response"]["data"].to_string();
    assert!(
        text.contains("<p>Ann</p>") && !text.contains("{{NAME}}"),
        "{text}"
    );
    // A flag that is not a boolean is named.
    let (status, bad) = api.json(
        reqwest::Method::GET,
        &format!("/render/{id}?data=yes"),
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(bad["response"]["error"]["param"], "data");
}

#[test]
fn plain_http_another_accounts_ids_are_not_found() {
    let env = env();
    let owner = Plain::new(&env, &env.key, "v1");
    let other_key = create_key(&env.data_dir(), None);
    let other = Plain::new(&env, &other_key, "v1");
    let (_, queued) = owner.json(reqwest::Method::POST, "/render", Some(TYPED_EDIT));
    let id = queued["response"]["id"].as_str().unwrap().to_owned();
    let (status, body) = other.json(reqwest::Method::GET, &format!("/render/{id}"), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false);

    let template =
        json!({ "name": "Mine", "template": serde_json::from_str::<Value>(TYPED_EDIT).unwrap() });
    let (status, made) = owner.json(
        reqwest::Method::POST,
        "/templates",
        Some(&template.to_string()),
    );
    assert_eq!(status, 201, "{made}");
    let tid = made["response"]["id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/templates/{tid}"), None),
        (
            reqwest::Method::PUT,
            format!("/templates/{tid}"),
            Some(template.to_string()),
        ),
        (reqwest::Method::DELETE, format!("/templates/{tid}"), None),
        (
            reqwest::Method::POST,
            "/templates/render".to_owned(),
            Some(json!({ "id": tid }).to_string()),
        ),
    ] {
        let (status, body) = other.json(method.clone(), &path, body.as_deref());
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, list) = other.json(reqwest::Method::GET, "/templates", None);
    assert_eq!(list["response"]["templates"], json!([]), "{list}");
    // The owner still has it.
    let (status, _) = owner.json(reqwest::Method::GET, &format!("/templates/{tid}"), None);
    assert_eq!(status, 200);
}

#[test]
fn plain_http_bad_edits_and_destinations_are_named() {
    let env = env();
    let api = Plain::new(&env, &env.key, "v1");
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["format"] = json!("mov");
    let (status, body) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "output.format");

    // Mux with no token of the server's: refused at once, by destination.
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["destinations"] = json!([{ "provider": "shotstack" }, { "provider": "mux" }]);
    let (status, body) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "output.destinations[1]");
    // A poster is only hosted: with hosting excluded it cannot go anywhere.
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["poster"] = json!({ "capture": 0.5 });
    edit["output"]["destinations"] = json!([{ "provider": "shotstack", "exclude": true }]);
    let (status, body) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["response"]["error"]["param"], "output.poster");

    // Nor is a poster sent to S3: a 501 rather than a file missing there.
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["poster"] = json!({ "capture": 0.5 });
    edit["output"]["destinations"] = json!([{ "provider": "s3",
        "options": { "region": "us-east-1", "bucket": "b" } }]);
    let (status, body) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["response"]["error"]["param"], "output.poster");

    // A template's Edit is checked too, named under `template`.
    let bad = json!({ "name": "x", "template": { "timeline": {}, "output": { "format": "mp4" } } });
    let (status, body) = api.json(reqwest::Method::POST, "/templates", Some(&bad.to_string()));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["error"]["param"],
        "template.timeline.tracks"
    );
    let (status, body) = api.json(
        reqwest::Method::POST,
        "/templates",
        Some(r#"{"template": {}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "name");
    // Nothing was stored by the refused requests.
    let (_, list) = api.json(reqwest::Method::GET, "/templates", None);
    assert_eq!(list["response"]["templates"], json!([]));

    // An update names both; a render merges each field once.
    let good =
        json!({ "name": "ok", "template": serde_json::from_str::<Value>(TYPED_EDIT).unwrap() });
    let (_, made) = api.json(reqwest::Method::POST, "/templates", Some(&good.to_string()));
    let tid = made["response"]["id"].as_str().unwrap();
    let (status, body) = api.json(
        reqwest::Method::PUT,
        &format!("/templates/{tid}"),
        Some(r#"{"name": "renamed only"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "template");
    let twice = json!({ "id": tid, "merge": [
        { "find": "NAME", "replace": "A" }, { "find": "NAME", "replace": "B" } ] });
    let (status, body) = api.json(
        reqwest::Method::POST,
        "/templates/render",
        Some(&twice.to_string()),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "merge[1].find");
    let (_, got) = api.json(reqwest::Method::GET, &format!("/templates/{tid}"), None);
    assert_eq!(
        got["response"]["name"], "ok",
        "the refused update changed nothing"
    );
}

#[test]
fn plain_http_a_movie_of_the_shotstack_project_is_a_template() {
    let env = env();
    let api = Plain::new(&env, &env.key, "v1");
    // The first use makes the account's `shotstack` project.
    let (_, list) = api.json(reqwest::Method::GET, "/templates", None);
    assert_eq!(list["response"]["templates"], json!([]));
    let client = env.client();
    let (_, projects) = clipstream_tests::json(client.get("/v1/list/project"));
    let uid = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "shotstack")
        .expect("the shotstack project")["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = client.put(&format!("/v1/sdl/{uid}/intro"), TYPED_EDIT);
    assert_eq!(response.status(), 201);

    let (_, list) = api.json(reqwest::Method::GET, "/templates", None);
    let listed = &list["response"]["templates"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(listed[0]["id"], "intro");
    assert_eq!(listed[0]["name"], "intro");
    let (status, text) = api.send(reqwest::Method::GET, "/templates/intro", None);
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!("\"template\":{TYPED_EDIT}")),
        "{text}"
    );

    // And a template made here is a movie there, under its id.
    let template = json!({ "name": "Made here", "template": serde_json::from_str::<Value>(TYPED_EDIT).unwrap() });
    let (_, made) = api.json(
        reqwest::Method::POST,
        "/templates",
        Some(&template.to_string()),
    );
    let tid = made["response"]["id"].as_str().unwrap();
    let response = client.get(&format!("/v1/sdl/{uid}/{tid}"));
    assert_eq!(response.status(), 200);
    // A render's Edit is a movie too, but never a template.
    let (_, queued) = api.json(reqwest::Method::POST, "/render", Some(TYPED_EDIT));
    let rid = queued["response"]["id"].as_str().unwrap();
    let response = client.get(&format!("/v1/sdl/{uid}/render-{rid}"));
    assert_eq!(response.status(), 200);
    let (_, list) = api.json(reqwest::Method::GET, "/templates", None);
    assert_eq!(
        list["response"]["templates"].as_array().unwrap().len(),
        2,
        "{list}"
    );
}

fn uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && s.bytes()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
}

/// Polls a render over plain HTTP until it is final; its response.
fn wait_final_plain(api: &Plain, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = api.json(reqwest::Method::GET, &format!("/render/{id}"), None);
        assert_eq!(status, 200, "{body}");
        let response = &body["response"];
        if response["status"] == "done" || response["status"] == "failed" {
            return response.clone();
        }
        assert!(Instant::now() < deadline, "not final in time: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_s3_destination_gets_the_video_with_the_servers_own_keys() {
    let s3 = SeaweedFs::start();
    s3.create_bucket("renders");
    let endpoint = s3.endpoint();
    let env = Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
        ("CLIPSTREAM_UPLOAD_AWS_ACCESS_KEY_ID", seaweedfs::ACCESS_KEY),
        (
            "CLIPSTREAM_UPLOAD_AWS_SECRET_ACCESS_KEY",
            seaweedfs::SECRET_KEY,
        ),
        ("CLIPSTREAM_UPLOAD_AWS_BUCKETS", r#"["renders"]"#),
        ("CLIPSTREAM_UPLOAD_AWS_S3HOST", endpoint.as_str()),
    ]);
    let api = Plain::new(&env, &env.key, "v1");
    let with = |destinations: Value| {
        let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
        edit["output"]["destinations"] = destinations;
        edit.to_string()
    };
    let s3_to = |bucket: &str| {
        json!({ "provider": "s3", "options": { "region": "us-east-1", "bucket": bucket,
                "prefix": "shotstack", "filename": "ann" } })
    };

    // Only to S3: not hosted here, and `url` is the object's.
    let edit = with(json!([s3_to("renders"), { "provider": "shotstack", "exclude": true }]));
    let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit));
    assert_eq!(status, 201, "{queued}");
    let id = queued["response"]["id"].as_str().unwrap();
    let done = wait_final_plain(&api, id);
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["url"],
        format!("{endpoint}/renders/shotstack/ann.mp4").as_str()
    );
    let object = s3.get_object("renders", "shotstack/ann.mp4");
    assert_eq!(object.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ann.mp4");
    std::fs::write(&path, object.bytes().unwrap()).unwrap();
    let duration: f64 = ffprobe(&path)["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 1.0).abs() < 0.15, "{duration}");

    // A bucket the server's keys may not write to is refused at once,
    // named by its destination.
    let (status, body) = api.json(
        reqwest::Method::POST,
        "/render",
        Some(&with(
            json!([{ "provider": "shotstack" }, s3_to("archive")]),
        )),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["error"]["param"], "output.destinations[1]");
}

#[test]
fn a_render_that_fails_says_why_and_calls_back_failed() {
    let env = env();
    let api = Plain::new(&env, &env.key, "v1");
    let receiver = Receiver::start(&[200]);
    // A source that is not there: the render fails while fetching.
    let (missing, _) = serve_files(Vec::new());
    let edit = json!({
        "timeline": { "tracks": [ { "clips": [ { "asset": { "type": "video",
            "src": format!("{missing}/gone.mp4") }, "start": 0.0, "length": 1.0 } ] } ] },
        "output": { "format": "mp4", "size": { "width": 320, "height": 240 } },
        "callback": format!("{}/hook", receiver.url),
    });
    let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 201, "{queued}");
    let id = queued["response"]["id"].as_str().unwrap();
    let failed = wait_final_plain(&api, id);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().expect("why it failed");
    assert!(error.contains("gone.mp4"), "{error}");
    assert!(
        failed.get("url").is_none(),
        "no url for a failed render: {failed}"
    );
    let callback = callback_of(&receiver);
    assert_eq!(callback["status"], "failed");
    assert_eq!(callback["id"], id);
    assert_eq!(callback["error"], error);
    assert!(callback.get("url").is_none(), "{callback}");
}

#[test]
fn a_mux_destination_makes_a_mux_asset_with_the_servers_token() {
    const MUX: (&str, &str) = ("server-mux-id", "server-mux-secret");
    let app = |name: &str| OAuthClient {
        client_id: format!("{name}-id"),
        client_secret: format!("{name}-secret"),
        refresh_token: format!("{name}-refresh"),
    };
    let apis = Apis::start(
        &[&format!("{}:{}", MUX.0, MUX.1)],
        app("dropbox"),
        app("google"),
    );
    let endpoint = format!("{}/mux", apis.url);
    let env = Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
        ("CLIPSTREAM_UPLOAD_MUX_ENDPOINT", endpoint.as_str()),
        ("CLIPSTREAM_UPLOAD_MUX_TOKEN_ID", MUX.0),
        ("CLIPSTREAM_UPLOAD_MUX_TOKEN_SECRET", MUX.1),
    ]);
    let api = Plain::new(&env, &env.key, "v1");
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["destinations"] = json!([{ "provider": "mux",
        "options": { "playbackPolicy": ["signed"], "passthrough": "order-7" } }]);
    let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 201, "{queued}");
    let id = queued["response"]["id"].as_str().unwrap();
    let done = wait_final_plain(&api, id);
    assert_eq!(done["status"], "done", "{done}");
    // Hosted too (not excluded): the url is the hosted file's.
    assert!(done["url"].as_str().unwrap().contains("/hosted/"), "{done}");

    let got = apis.received();
    assert_eq!(got.mux.len(), 1, "{got:?}");
    let asset = &got.mux[0];
    assert_eq!(asset.token, format!("{}:{}", MUX.0, MUX.1));
    assert_eq!(asset.content_type, "video/mp4");
    let hosted = http_client(Duration::from_secs(30))
        .get(done["url"].as_str().unwrap())
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(
        asset.bytes == hosted.to_vec(),
        "Mux got the video hosted here"
    );
    let settings = asset.settings.to_string();
    assert!(
        settings.contains("signed") && settings.contains("order-7"),
        "{settings}"
    );
}

/// A source whose first request is held unanswered (the render stays in
/// `fetching`) and whose later ones get `bytes`; returns its URL and how
/// many connections it took.
fn stalling_source(bytes: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/clip.mp4", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                // Kept open, never answered, until the thread ends.
                held.push(stream);
                continue;
            }
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(&bytes);
        }
    });
    (url, hits)
}

/// The path of a hosted file's URL, whatever server name it is told on.
fn hosted_path(url: &Value) -> String {
    let url = url.as_str().unwrap_or_else(|| panic!("{url}"));
    url[url.find("/hosted/").expect("a hosted URL")..].to_owned()
}

#[test]
fn a_render_interrupted_by_a_restart_ends_and_calls_back_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &path,
    );
    let (source, hits) = stalling_source(std::fs::read(&path).unwrap());
    let mut env = env();
    let receiver = Receiver::start(&[200]);
    let edit = json!({
        "timeline": { "tracks": [ { "clips": [ { "asset": { "type": "video", "src": source },
            "start": 0.0, "length": 1.0 } ] } ] },
        "output": { "format": "mp4", "size": { "width": 320, "height": 240 } },
        "callback": format!("{}/hook", receiver.url),
    });
    let id = {
        let api = Plain::new(&env, &env.key, "v1");
        let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
        assert_eq!(status, 201, "{queued}");
        queued["response"]["id"].as_str().unwrap().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the render never fetched");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.restart();
    // Taken up at the start, with nobody asking: the callback comes.
    let callback = callback_of(&receiver);
    assert_eq!(callback["status"], "done", "{callback}");
    assert_eq!(callback["id"], id.as_str());
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let api = Plain::new(&env, &env.key, "v1");
    let done = wait_final_plain(&api, &id);
    assert_eq!(done["status"], "done", "{done}");
    // The same file; the answer names it on the server as it is now
    // (the restart moved it to another port), the callback as it was.
    assert_eq!(hosted_path(&callback["url"]), hosted_path(&done["url"]));
    let now = done["url"].as_str().unwrap();
    assert!(now.starts_with(&env.server().url), "{now}");
    assert_eq!(
        http_client(Duration::from_secs(30))
            .get(now)
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn an_image_output_is_hosted_under_its_own_extension() {
    let env = env();
    let api = Plain::new(&env, &env.key, "v1");
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["output"]["format"] = json!("png");
    let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
    assert_eq!(status, 201, "{queued}");
    let id = queued["response"]["id"].as_str().unwrap();
    let done = wait_final_plain(&api, id);
    assert_eq!(done["status"], "done", "{done}");
    let url = done["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/{id}.png")), "{url}");
    let dir = tempfile::tempdir().unwrap();
    let facts = ffprobe(&download(url, dir.path(), "out.png"));
    assert_eq!(facts["streams"][0]["codec_name"], "png", "{facts}");
    assert_eq!(facts["streams"][0]["width"], 320);
}

/// Callbacks of this outcome the running server has counted.
fn callbacks_counted(env: &Env, outcome: &str) -> u64 {
    let text = env.client().anonymous().get("/metrics").text().unwrap();
    let line = format!("clipstream_callbacks_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_callback_cut_off_by_a_restart_is_sent_after_it_once() {
    // The wait after the failed attempt is long enough that the first
    // server is surely stopped before it tries again.
    let mut env = Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_SHOTSTACK_CALLBACK_BACKOFF_MS", "1500"),
    ]);
    let receiver = Receiver::start(&[503, 200]);
    let mut edit: Value = serde_json::from_str(TYPED_EDIT).unwrap();
    edit["callback"] = json!(format!("{}/hook?token=s3cret", receiver.url));
    let id = {
        let api = Plain::new(&env, &env.key, "v1");
        let (status, queued) = api.json(reqwest::Method::POST, "/render", Some(&edit.to_string()));
        assert_eq!(status, 201, "{queued}");
        queued["response"]["id"].as_str().unwrap().to_owned()
    };
    let wait_for = |n: usize, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while receiver.requests().len() < n {
            assert!(Instant::now() < deadline, "callback {n} never came");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(1, 120);
    // The first attempt was answered 503; the server stops before its next.
    let before = env.while_stopped(|_| receiver.requests().len());
    assert_eq!(before, 1, "the first server tried once");

    wait_for(2, 30);
    let requests = receiver.requests();
    let callback: Value = serde_json::from_slice(&requests[1].body).expect("a JSON callback");
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].target, "/hook?token=s3cret");
    assert_eq!(requests[1].body, requests[0].body, "the body as recorded");
    assert_eq!(callback["type"], "edit");
    assert_eq!(callback["id"], id.as_str());
    assert_eq!(callback["status"], "done", "{callback}");
    let api = Plain::new(&env, &env.key, "v1");
    let done = wait_final_plain(&api, &id);
    assert_eq!(hosted_path(&callback["url"]), hosted_path(&done["url"]));
    // Counted once forgotten: then a restart has nothing left to send.
    let deadline = Instant::now() + Duration::from_secs(10);
    while callbacks_counted(&env, "delivered") < 1 {
        assert!(Instant::now() < deadline, "the delivery was not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.restart();
    // A callback left pending would be sent within its backoff (1.5 s)
    // of the start: wait longer than that for what must not come.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.requests().len(), 2, "delivered exactly once");
    assert_eq!(callbacks_counted(&env, "delivered"), 0);
}
