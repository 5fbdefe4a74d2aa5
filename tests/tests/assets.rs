//! CONTRACT section 3, assets: streaming PUT, GET with Range, HEAD,
//! validators, DELETE, plain filenames, durability.

use std::io::Read;

use clipstream_tests::{assert_error, json, noise, raw_request, Env, Noise};
use reqwest::blocking::Body;
use reqwest::Method;

fn setup() -> (Env, String) {
    let env = Env::new();
    let uid = env.client().create_project("media");
    (env, uid)
}

#[test]
fn put_then_get_returns_the_same_bytes_with_metadata() {
    let (env, uid) = setup();
    let api = env.client();
    let data = noise(1, 300_000);
    let r = api
        .request(Method::PUT, &format!("/v1/data/{uid}/clip.mp4"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(data.clone())
        .send()
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let (status, put) = json(r);
    assert_eq!(status, 201, "{put}");
    assert_eq!(put["size"], 300_000);
    // curl's --data-binary default type says nothing; the name decides.
    assert_eq!(put["content_type"], "video/mp4");
    assert_eq!(put["etag"], etag.as_str());

    let r = api.get(&format!("/v1/data/{uid}/clip.mp4"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["content-length"], "300000");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.bytes().unwrap().as_ref(), data.as_slice());

    let (_, list) = json(api.get(&format!("/v1/list/data/{uid}")));
    assert_eq!(list["assets"][0]["name"], "clip.mp4");
    assert_eq!(list["assets"][0]["size"], 300_000);
}

#[test]
fn a_given_content_type_is_kept_and_replacing_changes_the_etag() {
    let (env, uid) = setup();
    let api = env.client();
    let path = format!("/v1/data/{uid}/logo");
    let first = api
        .request(Method::PUT, &path)
        .header("content-type", "image/png")
        .body("one")
        .send()
        .unwrap();
    assert_eq!(first.status(), 201);
    let first_tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let second = api.put(&path, "two");
    assert_eq!(second.status(), 201);
    assert_ne!(second.headers()["etag"].to_str().unwrap(), first_tag);
    let r = api.get(&path);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.text().unwrap(), "two");
}

#[test]
fn ranges_head_and_conditional_requests() {
    let (env, uid) = setup();
    let api = env.client();
    let data = noise(2, 10_000);
    let path = format!("/v1/data/{uid}/v.mp4");
    assert_eq!(api.put(&path, data.clone()).status(), 201);
    let etag = api.get(&path).headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let ranged = |range: &str| {
        api.request(Method::GET, &path)
            .header("range", range)
            .send()
            .unwrap()
    };

    let r = ranged("bytes=0-1");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-1/10000");
    assert_eq!(r.bytes().unwrap().as_ref(), &data[0..2]);

    let r = ranged("bytes=5000-5999");
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(r.bytes().unwrap().as_ref(), &data[5000..6000]);

    let r = ranged("bytes=-100");
    assert_eq!(r.headers()["content-range"], "bytes 9900-9999/10000");
    assert_eq!(r.bytes().unwrap().as_ref(), &data[9900..]);

    let r = ranged("bytes=9990-20000");
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().as_ref(), &data[9990..]);

    let r = ranged("bytes=10000-");
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */10000");

    // A malformed Range is ignored, as RFC 9110 says.
    assert_eq!(ranged("bytes=z-").status(), 200);

    let head = api.request(Method::HEAD, &path).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "10000");
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.bytes().unwrap().is_empty());

    let r = api
        .request(Method::GET, &path)
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().unwrap().is_empty());
    let r = api
        .request(Method::GET, &path)
        .header("if-none-match", "\"other\"")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let last_modified = api.get(&path).headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = api
        .request(Method::GET, &path)
        .header("if-modified-since", &last_modified)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);

    // If-Range: the range only while the entity is still the one we know.
    let r = api
        .request(Method::GET, &path)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    let r = api
        .request(Method::GET, &path)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().len(), 10_000);

    let r = api
        .request(Method::GET, &path)
        .header("if-match", "\"stale\"")
        .send()
        .unwrap();
    assert_eq!(r.status(), 412);
}

#[test]
fn missing_assets_and_delete() {
    let (env, uid) = setup();
    let api = env.client();
    assert_error(
        api.get(&format!("/v1/data/{uid}/nope.png")),
        404,
        "asset_not_found",
    );
    assert_error(
        api.delete(&format!("/v1/data/{uid}/nope.png")),
        404,
        "asset_not_found",
    );
    assert_error(
        api.get("/v1/data/no-such-project/a.png"),
        404,
        "project_not_found",
    );
    assert_error(
        api.put("/v1/data/no-such-project/a.png", "x"),
        404,
        "project_not_found",
    );
    assert_error(
        api.get("/v1/list/data/no-such-project"),
        404,
        "project_not_found",
    );

    assert_eq!(api.put(&format!("/v1/data/{uid}/a.png"), "x").status(), 201);
    let (status, _) = json(api.delete(&format!("/v1/data/{uid}/a.png")));
    assert_eq!(status, 200);
    assert_error(
        api.get(&format!("/v1/data/{uid}/a.png")),
        404,
        "asset_not_found",
    );
}

#[test]
fn filenames_must_be_plain() {
    let (env, uid) = setup();
    let api = env.client();
    for bad in [
        "a%2Fb.png",
        "%2Fetc%2Fpasswd",
        "a%00b",
        "bell%07",
        "new%0Aline",
        "back%5Cslash",
        "%2E%2E%2Fx",
    ] {
        let body = assert_error(
            api.put(&format!("/v1/data/{uid}/{bad}"), "x"),
            400,
            "invalid_parameter",
        );
        assert_eq!(body["param"], "filename", "{bad}");
        assert_error(
            api.get(&format!("/v1/data/{uid}/{bad}")),
            400,
            "invalid_parameter",
        );
    }
    for bad in ["..", "%2E%2E", "..%2F..%2Fdb"] {
        let (status, body) = raw_request(
            &env.server().url,
            "PUT",
            &format!("/v1/data/{uid}/{bad}"),
            Some(&env.key),
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("\"param\":\"filename\""), "{body}");
    }
    let (_, list) = json(api.get(&format!("/v1/list/data/{uid}")));
    assert_eq!(list["assets"].as_array().map(Vec::len), Some(0));
    // A name that only looks odd is fine: spaces, unicode, %, +.
    for good in ["my%20clip.mp4", "h%C3%A9llo.png", "100%25.txt", "a+b.txt"] {
        assert_eq!(
            api.put(&format!("/v1/data/{uid}/{good}"), "ok").status(),
            201,
            "{good}"
        );
        assert_eq!(
            api.get(&format!("/v1/data/{uid}/{good}")).text().unwrap(),
            "ok"
        );
    }
    let (_, list) = json(api.get(&format!("/v1/list/data/{uid}")));
    let mut names: Vec<&str> = list["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["100%.txt", "a+b.txt", "héllo.png", "my clip.mp4"]);
}

#[test]
fn a_body_over_the_limit_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = clipstream_tests::create_key(&data, None);
    let server = clipstream_tests::Server::start_with(
        &data,
        &[("CLIPSTREAM_LIMITS_MAX_ASSET_BYTES", "1000")],
    );
    let api = clipstream_tests::Api::new(&server.url, Some(&key));
    let uid = api.create_project("p");
    // Declared too large: refused before the body is read.
    assert_error(
        api.put(&format!("/v1/data/{uid}/big"), vec![0u8; 1001]),
        413,
        "body_too_large",
    );
    // Streamed without a length: refused once the limit is passed.
    let chunked = Body::new(Noise::new(3, 5000));
    assert_error(
        api.put(&format!("/v1/data/{uid}/big"), chunked),
        413,
        "body_too_large",
    );
    assert_error(
        api.get(&format!("/v1/data/{uid}/big")),
        404,
        "asset_not_found",
    );
    assert_eq!(
        std::fs::read_dir(data.join("tmp")).unwrap().count(),
        0,
        "no partial file is left"
    );
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/ok"), vec![0u8; 1000])
            .status(),
        201
    );
}

#[test]
fn assets_survive_a_restart() {
    let (mut env, uid) = setup();
    let data = noise(4, 50_000);
    assert_eq!(
        env.client()
            .put(&format!("/v1/data/{uid}/keep.bin"), data.clone())
            .status(),
        201
    );
    env.restart();
    assert_eq!(
        env.client()
            .get(&format!("/v1/data/{uid}/keep.bin"))
            .bytes()
            .unwrap()
            .as_ref(),
        data.as_slice()
    );
}

#[test]
fn a_storage_failure_is_a_json_500_and_the_service_recovers() {
    let (env, uid) = setup();
    let api = env.client();
    // Bodies are written under tmp/ first; a file in its place makes every
    // write fail with an I/O error.
    let tmp = env.data_dir().join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::write(&tmp, "in the way").unwrap();
    let body = assert_error(
        api.put(&format!("/v1/data/{uid}/a.bin"), "data"),
        500,
        "internal",
    );
    assert!(
        !body["message"]
            .as_str()
            .unwrap()
            .contains(env.data_dir().to_str().unwrap()),
        "no internals leak"
    );
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/a.bin"), "data").status(),
        201
    );
}

/// A 100 MB asset goes in and out as a stream: the server's resident
/// memory grows by far less than the body.
#[test]
fn a_100_mb_asset_streams_in_and_out_in_bounded_memory() {
    const LEN: u64 = 100 * 1024 * 1024;
    let (env, uid) = setup();
    let api = env.client();
    let path = format!("/v1/data/{uid}/big.bin");
    let (rss_before, _) = env.server().memory_kib();

    let r = api
        .request(Method::PUT, &path)
        .body(Body::sized(Noise::new(5, LEN), LEN))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    let mut r = api.get(&path);
    assert_eq!(r.headers()["content-length"], LEN.to_string().as_str());
    let mut expected = Noise::new(5, LEN);
    let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let n = r.read(&mut got).unwrap();
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).unwrap();
        assert!(got[..n] == want[..n], "bytes differ near offset {total}");
        total += n as u64;
    }
    assert_eq!(total, LEN);

    let (rss_after, peak) = env.server().memory_kib();
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    eprintln!("server RSS: {rss_before} KiB before, {rss_after} KiB after, peak {peak} KiB");
    assert!(
        growth_mib < 40,
        "the server's peak RSS grew by {growth_mib} MiB for a 100 MiB body"
    );
}
