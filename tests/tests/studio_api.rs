//! What the studio (issue 19) reads from the server besides the pages:
//! the page and its files with their CSP and ETags, a project's render
//! tokens, a chunked upload's progress, a render's size and timings, and
//! the render cache's size on /metrics.

use clipstream_tests::{assert_error, create_key, json, Api, Env};
use reqwest::Method;
use serde_json::json;

fn tiny_movie(text: &str) -> serde_json::Value {
    json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": text }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview", "fps": 12 }
    })
}

#[test]
fn the_studio_is_served_at_the_root_with_a_strict_csp_and_etags() {
    let env = Env::new();
    let web = env.client().anonymous();
    let page = web.get("/");
    assert_eq!(
        page.status(),
        200,
        "scripts/web.sh builds the studio before the binary"
    );
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "no inline script or style: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let etag = header(&page, "etag");
    let html = page.text().expect("the page");
    assert!(
        html.contains(r#"<script defer src="/studio/app.js"></script>"#),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("<style"), "no inline style");

    let again = web
        .request(Method::GET, "/")
        .header("If-None-Match", &etag)
        .send()
        .expect("GET /");
    assert_eq!(again.status(), 304, "revalidated by its ETag");

    let script = web.get("/studio/app.js");
    assert_eq!(script.status(), 200);
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    assert!(header(&script, "content-security-policy").contains("script-src 'self'"));
    assert!(!header(&script, "etag").is_empty());
    assert_eq!(web.get("/studio/app.css").status(), 200);
    assert_error(web.get("/studio/nothing.js"), 404, "not_found");
    assert_error(web.get("/studio/index.html"), 404, "not_found");
    // The API keeps its paths and its answers.
    assert_error(web.get("/v1/list/project"), 401, "unauthorized");
}

#[test]
fn a_projects_render_tokens_are_listed_newest_first() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("tokens");
    let first = api.render_token(
        &uid,
        "hello",
        &tiny_movie("Hi {{NAME}}"),
        json!({ "NAME": "Ann" }),
    );
    let (status, body) = json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&json!({ "movie": "hello", "params": { "NAME": "Bob" } }))
            .send()
            .expect("POST render"),
    );
    assert_eq!(status, 200, "{body}");
    let second = body["token"].as_str().expect("token").to_owned();

    let (status, list) = json(api.get(&format!("/v1/list/render/{uid}")));
    assert_eq!(status, 200, "{list}");
    let renders = list["renders"].as_array().expect("renders");
    assert_eq!(renders.len(), 2, "{list}");
    let tokens: Vec<&str> = renders.iter().filter_map(|r| r["token"].as_str()).collect();
    assert!(tokens.contains(&first.as_str()) && tokens.contains(&second.as_str()));
    let ann = renders
        .iter()
        .find(|r| r["token"] == first.as_str())
        .expect("Ann's");
    assert_eq!(ann["movie"], "hello");
    assert_eq!(ann["params"], json!({ "NAME": "Ann" }));
    assert!(ann["created"].as_u64().is_some());
    assert!(
        renders[0]["created"].as_u64() >= renders[1]["created"].as_u64(),
        "newest first: {list}"
    );

    // Another account sees nothing of it.
    let other = create_key(&env.data_dir(), None);
    let stranger = Api::new(&env.server().url, Some(&other));
    let r = stranger.get(&format!("/v1/list/render/{uid}"));
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    assert_error(
        api.get("/v1/list/render/no-such-project"),
        404,
        "project_not_found",
    );
}

#[test]
fn a_chunked_upload_tells_which_chunks_arrived() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("chunks");
    let (status, up) = json(api.post(&format!(
        "/chunked/videos/{uid}?name=big.bin&chunk_count=3&chunk_size=4"
    )));
    assert_eq!(status, 201, "{up}");
    let id = up["upload-id"].as_str().expect("upload id").to_owned();
    let (status, body) = json(
        api.request(
            Method::POST,
            &format!("/chunked/videos/{uid}/{id}/chunks?chunk_id=1"),
        )
        .body("abcd")
        .send()
        .expect("chunk"),
    );
    assert_eq!(status, 200, "{body}");

    let (status, progress) = json(api.get(&format!("/chunked/videos/{uid}/{id}")));
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["received"], json!([1]));
    assert_eq!(progress["chunk_count"], 3);
    assert_eq!(progress["name"], "big.bin");
    assert_error(
        api.get(&format!(
            "/chunked/videos/{uid}/0123456789abcdef0123456789abcdef"
        )),
        404,
        "upload_not_found",
    );
    assert_error(
        api.anonymous().get(&format!("/chunked/videos/{uid}/{id}")),
        401,
        "unauthorized",
    );
}

#[test]
fn a_finished_render_has_its_size_and_timings_and_the_cache_its_total() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("timings");
    let token = api.render_token(&uid, "hello", &tiny_movie("Hi"), json!({}));
    let (_, before) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(before["size"], serde_json::Value::Null, "{before}");
    let video = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(video.status(), 200);
    let len = video.bytes().expect("the video").len() as u64;
    api.wait_done(&token, "mp4", 60);

    let (_, status) = json(api.get(&format!("/v2/render/{token}/status")));
    assert_eq!(status["size"], len, "{status}");
    let t = &status["timings"];
    assert!(
        t["render_secs"].as_f64().is_some_and(|s| s > 0.0),
        "{status}"
    );
    let created = t["created"].as_u64().expect("created");
    let started = t["started"].as_u64().expect("started");
    let finished = t["finished"].as_u64().expect("finished");
    assert!(created <= started && started <= finished, "{status}");

    assert_eq!(api.metric("clipstream_cache_size_bytes"), len);
    assert_eq!(api.metric("clipstream_cache_entries"), 1);
}

#[test]
fn the_renders_list_comes_a_page_at_a_time_with_its_count() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("pages");
    let mut tokens = Vec::new();
    tokens.push(api.render_token(
        &uid,
        "hello",
        &tiny_movie("Hi {{NAME}}"),
        json!({ "NAME": "0" }),
    ));
    for n in 1..5 {
        let (status, body) = json(
            api.request(Method::POST, &format!("/v2/render/{uid}"))
                .json(&json!({ "movie": "hello", "params": { "NAME": n.to_string() } }))
                .send()
                .expect("POST render"),
        );
        assert_eq!(status, 200, "{body}");
        tokens.push(body["token"].as_str().expect("token").to_owned());
    }
    let mut seen: Vec<String> = Vec::new();
    let mut created: Vec<u64> = Vec::new();
    let mut path = format!("/v1/list/render/{uid}?limit=2");
    for _ in 0..5 {
        let (status, page) = json(api.get(&path));
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["count"], 5, "{page}");
        let renders = page["renders"].as_array().expect("renders");
        assert!(renders.len() <= 2, "{page}");
        for r in renders {
            seen.push(r["token"].as_str().expect("token").to_owned());
            created.push(r["created"].as_u64().expect("created"));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/list/render/{uid}?limit=2&cursor={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "every token once: {seen:?}");
    tokens.sort();
    assert_eq!(sorted, tokens);
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );

    let (_, all) = json(api.get(&format!("/v1/list/render/{uid}")));
    assert_eq!(all["renders"].as_array().map(Vec::len), Some(5), "{all}");
    assert_eq!(all["next"], serde_json::Value::Null, "{all}");
    for bad in ["limit=0", "limit=501", "limit=ten"] {
        let r = assert_error(
            api.get(&format!("/v1/list/render/{uid}?{bad}")),
            400,
            "invalid_parameter",
        );
        assert_eq!(r["param"], "limit", "{bad}: {r}");
    }
    let r = assert_error(
        api.get(&format!("/v1/list/render/{uid}?cursor=../x")),
        400,
        "invalid_parameter",
    );
    assert_eq!(r["param"], "cursor", "{r}");
}

#[test]
fn another_accounts_chunked_upload_is_not_found() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("mine");
    let (status, up) = json(api.post(&format!(
        "/chunked/videos/{uid}?name=big.bin&chunk_count=2&chunk_size=4"
    )));
    assert_eq!(status, 201, "{up}");
    let id = up["upload-id"].as_str().expect("upload id").to_owned();
    let other = create_key(&env.data_dir(), None);
    let stranger = Api::new(&env.server().url, Some(&other));
    let r = stranger.get(&format!("/chunked/videos/{uid}/{id}"));
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    // Nor under a project of the stranger's own.
    let theirs = stranger.create_project("theirs");
    let r = stranger.get(&format!("/chunked/videos/{theirs}/{id}"));
    assert_eq!(r.status(), 404, "an upload belongs to its project");
}

#[test]
fn the_studio_gets_no_basic_challenge_other_clients_do() {
    let env = Env::new();
    let web = env.client().anonymous();
    let challenge = |r: &reqwest::blocking::Response| r.headers().get("www-authenticate").is_some();
    let plain = web.get("/v1/list/project");
    assert_eq!(plain.status(), 401);
    assert!(challenge(&plain), "a plain client is challenged");
    for auth in [None, Some("Basic bm9ib2R5Om5vdGhpbmc=")] {
        let mut req = web
            .request(Method::GET, "/v1/list/project")
            .header("X-Requested-With", "clipstream-studio");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().expect("GET");
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(!challenge(&r), "the studio asks itself: {auth:?}");
        let (_, body) = json(r);
        assert_eq!(body["code"], "unauthorized", "{body}");
    }
}
