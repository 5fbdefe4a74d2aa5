//! CONTRACT section 4: render requests answer a token; the same request the
//! same token; unknown movies 404; params of the wrong type 400 naming the
//! placeholder.

use clipstream_tests::{assert_error, json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

const MOVIE: &str = r##"{
  "timeline": { "background": "{{BG}}", "tracks": [ { "clips": [
    { "asset": { "type": "title", "text": "Hi {{NAME}}" }, "start": 0, "length": "{{LEN}}" } ] } ] },
  "output": { "format": "mp4", "resolution": "sd" },
  "merge": [ { "find": "BG", "replace": "#000000" }, { "find": "LEN", "replace": 2 } ]
}"##;

fn setup() -> (Env, String) {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("renders");
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/hello"), MOVIE).status(),
        201
    );
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/other"), MOVIE).status(),
        201
    );
    (env, uid)
}

fn render(api: &Api, uid: &str, body: Value) -> reqwest::blocking::Response {
    api.request(Method::POST, &format!("/v2/render/{uid}"))
        .json(&body)
        .send()
        .unwrap()
}

fn token(api: &Api, uid: &str, body: Value) -> String {
    let (status, answer) = json(render(api, uid, body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["uploads"], json!([]));
    answer["token"].as_str().expect("token").to_owned()
}

#[test]
fn the_same_request_gets_the_same_short_unguessable_token() {
    let (env, uid) = setup();
    let api = env.client();
    let a = token(
        &api,
        &uid,
        json!({ "movie": "hello", "params": { "NAME": "Jane", "LEN": 3 } }),
    );
    assert!(a.len() <= 64 && a.len() >= 22, "{a}");
    assert!(
        a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {a}"
    );
    let again = token(
        &api,
        &uid,
        json!({ "params": { "LEN": 3, "NAME": "Jane" }, "movie": "hello", "parallel": 2 }),
    );
    assert_eq!(a, again);
    let other_params = token(
        &api,
        &uid,
        json!({ "movie": "hello", "params": { "NAME": "Joe" } }),
    );
    let other_movie = token(
        &api,
        &uid,
        json!({ "movie": "other", "params": { "NAME": "Jane", "LEN": 3 } }),
    );
    let by_extension = token(
        &api,
        &uid,
        json!({ "movie": { "mp4": "hello", "*": "other" }, "params": { "NAME": "Jane" } }),
    );
    let all = [&a, &other_params, &other_movie, &by_extension];
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert_ne!(x, y);
        }
    }
}

#[test]
fn tokens_survive_a_restart_and_die_with_their_project() {
    let (mut env, uid) = setup();
    let t = token(
        &env.client(),
        &uid,
        json!({ "movie": "hello", "params": { "NAME": "Jane" } }),
    );
    env.restart();
    let api = env.client();
    assert_eq!(
        t,
        token(
            &api,
            &uid,
            json!({ "movie": "hello", "params": { "NAME": "Jane" } })
        )
    );
    assert_eq!(api.delete(&format!("/v1/project/{uid}")).status(), 200);
    let uid = api.create_project("renders");
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/hello"), MOVIE).status(),
        201
    );
    let fresh = token(
        &api,
        &uid,
        json!({ "movie": "hello", "params": { "NAME": "Jane" } }),
    );
    assert_ne!(t, fresh, "a new project is a new identity");
}

#[test]
fn unknown_projects_and_movies_are_404() {
    let (env, uid) = setup();
    let api = env.client();
    assert_error(
        render(&api, "no-such-project", json!({ "movie": "hello" })),
        404,
        "project_not_found",
    );
    assert_error(
        render(&api, &uid, json!({ "movie": "nope" })),
        404,
        "movie_not_found",
    );
    assert_error(
        render(
            &api,
            &uid,
            json!({ "movie": { "mp4": "hello", "*": "nope" } }),
        ),
        404,
        "movie_not_found",
    );
}

#[test]
fn a_param_that_does_not_fit_its_placeholder_is_400_naming_it() {
    let (env, uid) = setup();
    let api = env.client();
    let body = assert_error(
        render(
            &api,
            &uid,
            json!({ "movie": "hello", "params": { "NAME": "Jane", "LEN": "long" } }),
        ),
        400,
        "invalid_param",
    );
    assert_eq!(body["param"], "LEN");
    assert_eq!(body["path"], "timeline.tracks[0].clips[0].length");
    let body = assert_error(
        render(
            &api,
            &uid,
            json!({ "movie": "hello", "params": { "NAME": "Jane", "BG": "blue" } }),
        ),
        400,
        "invalid_param",
    );
    assert_eq!(body["param"], "BG");
    let body = assert_error(
        render(
            &api,
            &uid,
            json!({ "movie": "hello", "params": { "NAME": { "first": "Jane" } } }),
        ),
        400,
        "invalid_param",
    );
    assert_eq!(body["param"], "NAME");
    let body = assert_error(
        render(&api, &uid, json!({ "movie": "hello" })),
        400,
        "invalid_param",
    );
    assert_eq!(body["param"], "NAME", "a placeholder without a value");
}

#[test]
fn malformed_requests_are_400() {
    let (env, uid) = setup();
    let api = env.client();
    let bad = |body: &str| {
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    assert_error(bad("not json"), 400, "invalid_body");
    assert_error(bad("{}"), 400, "invalid_body");
    assert_error(
        bad(r#"{"movie": "hello", "parms": {}}"#),
        400,
        "invalid_body",
    );
    assert_error(
        bad(r#"{"movie": "hello", "params": []}"#),
        400,
        "invalid_body",
    );
    assert_error(
        bad(r#"{"movie": {"avi": "hello"}}"#),
        400,
        "invalid_parameter",
    );
    assert_error(bad(r#"{"movie": {}}"#), 400, "invalid_parameter");
    assert_error(
        bad(r#"{"movie": "hello", "parallel": 0}"#),
        400,
        "invalid_parameter",
    );
    assert_error(
        api.anonymous().post(&format!("/v2/render/{uid}")),
        401,
        "unauthorized",
    );
}
