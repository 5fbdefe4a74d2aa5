//! The Shotstack Serve API (CONTRACT section 7, issue 17): a render's
//! files are hosted assets, found by render id and by asset id, fetched
//! without credentials from their absolute URLs with the HTTP semantics
//! of every body here (ranges, validators, HEAD), and deleted one by one
//! (the file stops being served; the asset reads `deleted`). Driven by
//! Shotstack's Python and Node SDKs (tests/sdk/serve.*); plain HTTP for
//! the files themselves and for another account.

use std::time::{Duration, Instant};

use clipstream_tests::{create_key, http_client, json, sdk, Env, Key};
use reqwest::blocking::Client;
use serde_json::{json, Value};

fn key_of(key: &Key) -> String {
    format!("{}:{}", key.key, key.secret)
}

fn client() -> Client {
    http_client(Duration::from_secs(60))
}

/// Renders a one-second title with a poster through `POST edit/v1/render`
/// and waits for `done`; returns the render id.
fn render(env: &Env, key: &str) -> String {
    let edit = json!({
        "timeline": { "background": "#102030", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "Served" }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview", "poster": { "capture": 0.5 } }
    });
    render_edit(env, key, &edit).0
}

/// Renders `edit` and waits for `done`; returns its id and final status.
fn render_edit(env: &Env, key: &str, edit: &Value) -> (String, Value) {
    let url = format!("{}/edit/v1/render", env.server().url);
    let (status, body) = json(
        client()
            .post(&url)
            .header("x-api-key", key)
            .json(&edit)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["response"]["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = json(
            client()
                .get(format!("{url}/{id}"))
                .header("x-api-key", key)
                .send()
                .unwrap(),
        );
        match body["response"]["status"].as_str() {
            Some("done") => return (id, body["response"].clone()),
            Some("failed") => panic!("the render failed: {body}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not done in time: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve_host(env: &Env) -> String {
    format!("{}/serve/v1", env.server().url)
}

/// The Python SDK's `to_dict` names fields in snake case: back to the
/// wire's names.
fn wire_names(mut attributes: Value) -> Value {
    if let Some(map) = attributes.as_object_mut() {
        for (python, wire) in [("provider_id", "providerId"), ("render_id", "renderId")] {
            if let Some(v) = map.remove(python) {
                map.insert(wire.to_owned(), v);
            }
        }
    }
    attributes
}

/// An asset's attributes as the seed has them: every required field, dates
/// as ISO strings, no nulls.
fn assert_asset(attributes: &Value, owner: &str, render: &str) {
    for field in [
        "id",
        "owner",
        "status",
        "providerId",
        "filename",
        "url",
        "created",
        "updated",
    ] {
        assert!(attributes[field].is_string(), "{field}: {attributes}");
    }
    assert_eq!(attributes["owner"], owner);
    assert_eq!(attributes["renderId"], render);
    assert_eq!(attributes["providerId"], attributes["id"], "hosted here");
    assert!(attributes["created"].as_str().unwrap().ends_with('Z'));
    assert!(attributes
        .as_object()
        .unwrap()
        .values()
        .all(|v| !v.is_null()));
}

#[test]
fn the_python_sdk_finds_fetches_and_deletes_a_renders_assets() {
    let env = Env::new();
    let key = key_of(&env.key);
    let id = render(&env, &key);
    let host = serve_host(&env);

    let answer = sdk::python("serve.py", &[&host, &key, "by_render", &id]);
    let assets: Vec<Value> = answer["ok"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|a| json!({ "type": a["type"], "attributes": wire_names(a["attributes"].clone()) }))
        .collect();
    let names: Vec<&str> = assets
        .iter()
        .map(|a| a["attributes"]["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("{id}.mp4"), format!("{id}-poster.jpg")]);
    for asset in &assets {
        assert_eq!(asset["type"], "asset");
        assert_eq!(asset["attributes"]["status"], "ready");
        assert_asset(&asset["attributes"], &env.key.account, &id);
    }
    let video = &assets[0]["attributes"];
    let poster = &assets[1]["attributes"];

    let one = sdk::python(
        "serve.py",
        &[&host, &key, "get", video["id"].as_str().unwrap()],
    );
    assert_eq!(
        &wire_names(one["ok"]["data"]["attributes"].clone()),
        video,
        "{one}"
    );

    // The file, with no credentials: an MP4 and the poster a JPEG.
    let bytes = client().get(video["url"].as_str().unwrap()).send().unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.headers()["content-type"], "video/mp4");
    assert_eq!(&bytes.bytes().unwrap()[4..8], b"ftyp");
    let jpeg = client()
        .get(poster["url"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(jpeg.headers()["content-type"], "image/jpeg");

    // Deleting the poster leaves the video; the poster is gone at once.
    let poster_id = poster["id"].as_str().unwrap();
    let deleted = sdk::python("serve.py", &[&host, &key, "delete", poster_id]);
    assert_eq!(deleted, json!({ "ok": null }));
    let gone = client()
        .get(poster["url"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404);
    let after = sdk::python("serve.py", &[&host, &key, "get", poster_id]);
    assert_eq!(
        after["ok"]["data"]["attributes"]["status"], "deleted",
        "{after}"
    );
    let video_again = client().get(video["url"].as_str().unwrap()).send().unwrap();
    assert_eq!(video_again.status(), 200);

    let unknown = "0f8c6a55-2d3e-4d7a-9a51-7d0b9b0e4c11";
    for command in ["get", "by_render", "delete"] {
        let answer = sdk::python("serve.py", &[&host, &key, command, unknown]);
        assert_eq!(
            answer["exception"], "NotFoundException",
            "{command}: {answer}"
        );
        assert_eq!(answer["status"], 404);
    }
}

#[test]
fn the_node_sdk_finds_and_deletes_a_renders_video() {
    let env = Env::new();
    let key = key_of(&env.key);
    let id = render(&env, &key);
    let host = serve_host(&env);
    let answer = sdk::node("serve.js", &[&host, &key, "by_render", &id]);
    let video = answer["ok"]["data"][0]["attributes"].clone();
    assert_eq!(video["filename"], format!("{id}.mp4"), "{answer}");
    assert_asset(&video, &env.key.account, &id);
    let asset_id = video["id"].as_str().unwrap();
    let one = sdk::node("serve.js", &[&host, &key, "get", asset_id]);
    assert_eq!(
        one["ok"]["data"]["attributes"]["url"], video["url"],
        "{one}"
    );
    let deleted = sdk::node("serve.js", &[&host, &key, "delete", asset_id]);
    assert_eq!(deleted, json!({ "ok": null }));
    let gone = client().get(video["url"].as_str().unwrap()).send().unwrap();
    assert_eq!(gone.status(), 404);
    let answer = sdk::node("serve.js", &[&host, &key, "get", "not-a-uuid"]);
    assert_eq!(answer["status"], 404, "{answer}");
}

#[test]
fn hosted_files_answer_ranges_validators_and_head_and_only_at_their_name() {
    let env = Env::new();
    let key = key_of(&env.key);
    let id = render(&env, &key);
    let url = format!("{}/assets/render/{id}", serve_host(&env));
    let (_, body) = json(client().get(&url).header("x-api-key", &key).send().unwrap());
    let file = body["data"][0]["attributes"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        file.starts_with(&env.server().url),
        "absolute, on this server: {file}"
    );

    let whole = client().get(&file).send().unwrap();
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    let whole = whole.bytes().unwrap();
    let part = client()
        .get(&file)
        .header("range", "bytes=10-99")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-99/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().unwrap(), whole[10..100]);
    let cached = client()
        .get(&file)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(cached.status(), 304);
    let head = client().head(&file).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        whole.len().to_string().as_str()
    );
    // Another name under the same id is not the file.
    let renamed = file.replace(".mp4", ".webm");
    assert_eq!(client().get(&renamed).send().unwrap().status(), 404);
    let (status, body) = json(client().put(&file).body("x").send().unwrap());
    assert_eq!(status, 405, "{body}");
}

#[test]
fn another_accounts_assets_are_not_found() {
    let env = Env::new();
    let key = key_of(&env.key);
    let id = render(&env, &key);
    let other = key_of(&create_key(&env.data_dir(), None));
    let host = serve_host(&env);
    let mine = sdk::python("serve.py", &[&host, &key, "by_render", &id]);
    let asset = mine["ok"]["data"][0]["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (command, target) in [("by_render", &id), ("get", &asset), ("delete", &asset)] {
        let answer = sdk::python("serve.py", &[&host, &other, command, target]);
        assert_eq!(answer["status"], 404, "{command}: {answer}");
    }
    // Still there for its owner.
    let again = sdk::python("serve.py", &[&host, &key, "get", &asset]);
    assert_eq!(
        again["ok"]["data"]["attributes"]["status"], "ready",
        "{again}"
    );
    // Without a key: Shotstack's 401.
    let (status, _) = json(
        client()
            .get(format!("{host}/assets/{asset}"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);
}

#[test]
fn a_render_kept_off_the_serve_api_has_no_assets_and_its_url_is_its_tokens() {
    let env = Env::new();
    let key = key_of(&env.key);
    let edit = json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "Not hosted" }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview",
                    "destinations": [ { "provider": "shotstack", "exclude": true } ] }
    });
    let (id, status) = render_edit(&env, &key, &edit);
    let url = status["url"].as_str().unwrap_or_else(|| panic!("{status}"));
    assert!(
        url.starts_with(&format!("{}/render/", env.server().url)) && url.ends_with(".mp4"),
        "{url}"
    );
    let video = client().get(url).send().unwrap();
    assert_eq!(video.status(), 200);
    assert_eq!(&video.bytes().unwrap()[4..8], b"ftyp");
    let answer = sdk::python("serve.py", &[&serve_host(&env), &key, "by_render", &id]);
    assert_eq!(answer["ok"]["data"], json!([]), "{answer}");
}
