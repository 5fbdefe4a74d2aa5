//! CONTRACT sections 2 and 3: projects, keys and isolation between accounts.

use clipstream_tests::{assert_error, create_key, files_under, json, raw_request, Api, Env};

#[test]
fn health_needs_no_credentials() {
    let env = Env::new();
    let (status, body) = json(env.client().anonymous().get("/healthz"));
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[test]
fn requests_without_or_with_wrong_credentials_are_401() {
    let env = Env::new();
    let api = env.client();
    let r = api.anonymous().get("/v1/list/project");
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"clipstream\"")
    );
    assert_error(r, 401, "unauthorized");
    assert_error(
        api.with_auth(&env.key.key, "wrong-secret")
            .get("/v1/list/project"),
        401,
        "unauthorized",
    );
    assert_error(
        api.with_auth("ck_unknown", &env.key.secret)
            .get("/v1/list/project"),
        401,
        "unauthorized",
    );
    assert_error(
        api.with_auth(&env.key.key, "").get("/v1/list/project"),
        401,
        "unauthorized",
    );
    let no_scheme = api
        .anonymous()
        .request(reqwest::Method::GET, "/v1/list/project")
        .header("authorization", "Bearer x")
        .send()
        .unwrap();
    assert_error(no_scheme, 401, "unauthorized");
}

#[test]
fn create_list_and_refuse_a_duplicate_name() {
    let env = Env::new();
    let api = env.client();
    let (status, body) = json(api.get("/v1/list/project"));
    assert_eq!(
        (status, body["projects"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    let uid = api.create_project("welcome");
    assert_error(api.post("/v1/project/welcome"), 409, "project_exists");
    api.create_project("second");

    let (_, body) = json(api.get("/v1/list/project"));
    let projects = body["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2);
    let welcome = projects.iter().find(|p| p["name"] == "welcome").unwrap();
    assert_eq!(welcome["uid"], uid.as_str());
}

#[test]
fn project_names_are_plain() {
    let env = Env::new();
    let api = env.client();
    for bad in ["a%2Fb", "a%00b", "tab%09", "%20", "a%5Cb"] {
        let body = assert_error(
            api.post(&format!("/v1/project/{bad}")),
            400,
            "invalid_parameter",
        );
        assert_eq!(body["param"], "project name", "{bad}");
    }
    // Sent byte for byte: client libraries would normalise these away.
    for bad in ["..", "%2E%2E", ".%2E"] {
        let (status, body) = raw_request(
            &env.server().url,
            "POST",
            &format!("/v1/project/{bad}"),
            Some(&env.key),
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("invalid_parameter"), "{body}");
    }
    let (_, body) = json(api.get("/v1/list/project"));
    assert_eq!(body["projects"].as_array().map(Vec::len), Some(0));
}

#[test]
fn delete_removes_the_project_and_everything_under_it() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("doomed");
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/a.txt"), "aaa").status(),
        201
    );
    let movie = r#"{"timeline":{"tracks":[{"clips":[{"asset":{"type":"title","text":"x"},"start":0,"length":1}]}]},"output":{"format":"mp4","resolution":"sd"}}"#;
    assert_eq!(api.put(&format!("/v1/sdl/{uid}/m"), movie).status(), 201);
    let (status, _) = json(api.post(&format!(
        "/chunked/videos/{uid}?name=big.mp4&chunk_count=2&chunk_size=4"
    )));
    assert_eq!(status, 201);

    let (status, body) = json(api.delete(&format!("/v1/project/{uid}")));
    assert_eq!((status, body["deleted"].as_bool()), (200, Some(true)));
    assert_error(
        api.get(&format!("/v1/list/data/{uid}")),
        404,
        "project_not_found",
    );
    assert_error(
        api.get(&format!("/v1/data/{uid}/a.txt")),
        404,
        "project_not_found",
    );
    assert_error(
        api.get(&format!("/v1/sdl/{uid}/m")),
        404,
        "project_not_found",
    );
    assert_error(
        api.delete(&format!("/v1/project/{uid}")),
        404,
        "project_not_found",
    );
    // The name is free again, and the new project starts empty.
    let again = api.create_project("doomed");
    let (_, body) = json(api.get(&format!("/v1/list/data/{again}")));
    assert_eq!(body["assets"].as_array().map(Vec::len), Some(0));
    // No body of the deleted asset is left on disk.
    let blobs = files_under(&env.data_dir().join("blobs"));
    assert!(blobs.is_empty(), "{blobs:?}");
}

#[test]
fn publish_to_a_known_cluster() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("p");
    let (status, body) = json(api.post(&format!("/v1/publish/{uid}/local")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published"][0]["cluster"], "local");
    assert_error(
        api.post(&format!("/v1/publish/{uid}/ap-southeast-1")),
        404,
        "cluster_not_found",
    );
    assert_error(
        api.post("/v1/publish/no-such-project/local"),
        404,
        "project_not_found",
    );
}

#[test]
fn an_account_cannot_see_or_touch_another_accounts_projects() {
    let mut env = Env::new();
    let other = env.while_stopped(|data| create_key(data, None));
    let mine = env.client();
    let theirs = Api::new(&env.server().url, Some(&other));
    let uid = mine.create_project("mine");
    assert_eq!(
        mine.put(&format!("/v1/data/{uid}/a.txt"), "secret data")
            .status(),
        201
    );

    // The same name is free in the other account: names are per account.
    theirs.create_project("mine");
    let (_, listed) = json(theirs.get("/v1/list/project"));
    assert!(listed["projects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["uid"] != uid.as_str()));

    for (method, path) in [
        ("GET", format!("/v1/list/data/{uid}")),
        ("GET", format!("/v1/data/{uid}/a.txt")),
        ("HEAD", format!("/v1/data/{uid}/a.txt")),
        ("PUT", format!("/v1/data/{uid}/b.txt")),
        ("DELETE", format!("/v1/data/{uid}/a.txt")),
        ("GET", format!("/v1/list/sdl/{uid}")),
        ("GET", format!("/v1/sdl/{uid}/m")),
        ("PUT", format!("/v1/sdl/{uid}/m")),
        ("DELETE", format!("/v1/sdl/{uid}/m")),
        (
            "POST",
            format!("/chunked/videos/{uid}?name=x&chunk_count=1&chunk_size=1"),
        ),
        ("POST", format!("/v1/publish/{uid}/local")),
        ("DELETE", format!("/v1/project/{uid}")),
    ] {
        let r = theirs
            .request(method.parse().unwrap(), &path)
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{method} {path}");
        if method != "HEAD" {
            assert_error(r, 403, "forbidden");
        }
    }
    // Nothing changed for the owner.
    assert_eq!(
        mine.get(&format!("/v1/data/{uid}/a.txt")).text().unwrap(),
        "secret data"
    );
}

#[test]
fn a_second_key_of_an_account_sees_the_same_projects() {
    let mut env = Env::new();
    let account = env.key.account.clone();
    let second = env.while_stopped(|data| create_key(data, Some(&account)));
    let uid = env.client().create_project("shared");
    let (_, body) = json(Api::new(&env.server().url, Some(&second)).get("/v1/list/project"));
    assert_eq!(body["projects"][0]["uid"], uid.as_str());
}

#[test]
fn unknown_routes_and_methods_are_json_errors() {
    let env = Env::new();
    let api = env.client();
    assert_error(api.get("/v1/nothing-here"), 404, "not_found");
    let r = api
        .request(reqwest::Method::PATCH, "/v1/list/project")
        .send()
        .unwrap();
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    assert_error(r, 405, "method_not_allowed");
}

#[test]
fn projects_survive_a_restart() {
    let mut env = Env::new();
    let uid = env.client().create_project("durable");
    env.restart();
    let (_, body) = json(env.client().get("/v1/list/project"));
    assert_eq!(body["projects"][0]["uid"], uid.as_str());
}
