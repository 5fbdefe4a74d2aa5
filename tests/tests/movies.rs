//! CONTRACT sections 3 and 6: dynamic movies are Shotstack Edits, checked
//! when stored; a mistake is a 400 naming its JSON path.

use clipstream_tests::{assert_error, json, Env};
use reqwest::Method;
use serde_json::{json, Value};

fn movie() -> Value {
    json!({
        "timeline": {
            "background": "#000000",
            "tracks": [
                { "clips": [
                    { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "minimal" },
                      "start": 0, "length": 3, "transition": { "in": "fade" } }
                ]},
                { "clips": [
                    { "asset": { "type": "video", "src": "{{VIDEO}}", "volume": 1 },
                      "start": 0, "length": "{{LENGTH}}" }
                ]}
            ]
        },
        "output": { "format": "mp4", "resolution": "sd" }
    })
}

fn setup() -> (Env, String) {
    let env = Env::new();
    let uid = env.client().create_project("movies");
    (env, uid)
}

#[test]
fn put_get_list_delete() {
    let (env, uid) = setup();
    let api = env.client();
    let text = serde_json::to_string_pretty(&movie()).unwrap();
    let r = api
        .request(Method::PUT, &format!("/v1/sdl/{uid}/welcome"))
        .header("content-type", "application/json")
        .body(text.clone())
        .send()
        .unwrap();
    let (status, body) = json(r);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["placeholders"], json!(["LENGTH", "NAME", "VIDEO"]));

    let r = api.get(&format!("/v1/sdl/{uid}/welcome"));
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().unwrap(), text, "stored exactly as sent");

    let (_, list) = json(api.get(&format!("/v1/list/sdl/{uid}")));
    assert_eq!(list["movies"][0]["name"], "welcome");

    assert_eq!(api.delete(&format!("/v1/sdl/{uid}/welcome")).status(), 200);
    assert_error(
        api.get(&format!("/v1/sdl/{uid}/welcome")),
        404,
        "movie_not_found",
    );
    assert_error(
        api.delete(&format!("/v1/sdl/{uid}/welcome")),
        404,
        "movie_not_found",
    );
    assert_error(api.get("/v1/list/sdl/nope"), 404, "project_not_found");
}

#[test]
fn movies_survive_a_restart() {
    let (mut env, uid) = setup();
    assert_eq!(
        env.client()
            .put(&format!("/v1/sdl/{uid}/m"), movie().to_string())
            .status(),
        201
    );
    env.restart();
    let (_, body) = json(env.client().get(&format!("/v1/sdl/{uid}/m")));
    assert_eq!(body, movie());
}

/// Each case: a change to the valid movie, the path the error must name,
/// and a word its message must contain.
#[test]
fn every_kind_of_mistake_names_its_path() {
    type Change = fn(&mut Value);
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "unknown asset type",
            |m| m["timeline"]["tracks"][1]["clips"][0]["asset"]["type"] = json!("hologram"),
            "timeline.tracks[1].clips[0].asset.type",
            "hologram",
        ),
        (
            "bad enumerated value",
            |m| m["output"]["resolution"] = json!("4k"),
            "output.resolution",
            "4k",
        ),
        (
            "missing required field",
            |m| {
                m["timeline"]["tracks"][0]["clips"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("start");
            },
            "timeline.tracks[0].clips[0]",
            "start",
        ),
        (
            "misspelt key",
            |m| m["timeline"]["tracks"][0]["clips"][0]["lenght"] = json!(2),
            "timeline.tracks[0].clips[0].lenght",
            "lenght",
        ),
        (
            "misspelt key in an asset",
            |m| m["timeline"]["tracks"][0]["clips"][0]["asset"]["colour"] = json!("#fff"),
            "timeline.tracks[0].clips[0].asset.colour",
            "colour",
        ),
        (
            "wrong JSON type",
            |m| m["timeline"]["tracks"][0]["clips"][0]["start"] = json!(true),
            "timeline.tracks[0].clips[0].start",
            "boolean",
        ),
        (
            "unknown transition",
            |m| m["timeline"]["tracks"][0]["clips"][0]["transition"]["in"] = json!("spin"),
            "timeline.tracks[0].clips[0].transition.in",
            "spin",
        ),
        (
            "bad colour",
            |m| m["timeline"]["background"] = json!("#12345"),
            "timeline.background",
            "colour",
        ),
        (
            "skew out of range",
            |m| m["timeline"]["tracks"][0]["clips"][0]["transform"] = json!({ "skew": { "y": 7 } }),
            "timeline.tracks[0].clips[0].transform.skew.y",
            "3",
        ),
        (
            "odd custom width",
            |m| m["output"] = json!({ "format": "mp4", "size": { "width": 641, "height": 360 } }),
            "output.size.width",
            "even",
        ),
        (
            "volume out of range",
            |m| m["timeline"]["tracks"][1]["clips"][0]["asset"]["volume"] = json!(2),
            "timeline.tracks[1].clips[0].asset.volume",
            "1",
        ),
        (
            "unknown output format",
            |m| m["output"]["format"] = json!("avi"),
            "output.format",
            "avi",
        ),
        (
            "tracks not a list",
            |m| m["timeline"]["tracks"] = json!({}),
            "timeline.tracks",
            "map",
        ),
        (
            "unknown top-level key",
            |m| m["timelines"] = json!([]),
            "timelines",
            "timelines",
        ),
    ];
    let (env, uid) = setup();
    let api = env.client();
    for (what, change, path, word) in cases {
        let mut m = movie();
        change(&mut m);
        let body = assert_error(
            api.put(&format!("/v1/sdl/{uid}/bad"), m.to_string()),
            400,
            "invalid_edit",
        );
        assert_eq!(body["path"], path, "{what}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(word),
            "{what}: {body}"
        );
    }
    assert_error(
        api.get(&format!("/v1/sdl/{uid}/bad")),
        404,
        "movie_not_found",
    );
}

#[test]
fn not_json_limits_and_names() {
    let (env, uid) = setup();
    let api = env.client();
    assert_error(
        api.put(&format!("/v1/sdl/{uid}/m"), "{\"timeline\": "),
        400,
        "invalid_json",
    );
    assert_error(
        api.put(&format!("/v1/sdl/{uid}/m"), vec![0xffu8, 0xfe]),
        400,
        "invalid_body",
    );
    let mut long = movie();
    long["timeline"]["tracks"][0]["clips"][0]["start"] = json!(3600);
    assert_error(
        api.put(&format!("/v1/sdl/{uid}/m"), long.to_string()),
        400,
        "limit_exceeded",
    );
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
    assert_error(
        api.put(&format!("/v1/sdl/{uid}/m"), huge),
        413,
        "body_too_large",
    );
    assert_error(
        api.put(&format!("/v1/sdl/{uid}/a%2Fb"), movie().to_string()),
        400,
        "invalid_parameter",
    );
}
