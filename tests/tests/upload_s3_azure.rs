//! Issue 16, CONTRACT section 8: a render request's `upload` sends the
//! finished video to S3 (a real S3-compatible server, SeaweedFS) and to
//! Azure Blob storage (Azurite, its emulator), with the options the seed
//! names; the status reports each upload `done` with its URL, or `failed`
//! with the error, and a failed upload leaves nothing half-written. The
//! server's own S3 keys (`aws_use_policy`) write only to the buckets it
//! lists, on its own S3 host.

use clipstream_tests::media::{ffmpeg, upload};
use clipstream_tests::peers::azurite::{self, Azurite};
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::peers::seaweedfs::{self, SeaweedFs};
use clipstream_tests::{json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

/// Loopback peers are private addresses; retries come quickly.
const SETTINGS: [(&str, &str); 2] = [
    ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
    ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
];

/// A server with `extra` settings besides [`SETTINGS`], and a project.
fn server(extra: &[(&str, &str)]) -> (Env, String) {
    let settings: Vec<(&str, &str)> = SETTINGS.iter().chain(extra).copied().collect();
    let env = Env::with_settings(&settings);
    let uid = env.client().create_project("uploads");
    (env, uid)
}

/// Stores a one-second title movie named `name` (a few tens of KiB).
fn small_movie(api: &Api, uid: &str, name: &str, text: &str) {
    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": text }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let r = api.put(&format!("/v1/sdl/{uid}/{name}"), movie.to_string());
    assert_eq!(r.status(), 201);
}

/// Stores a movie whose MP4 is over 5 MiB (S3's smallest part): a still
/// of random noise, zoomed so that no frame repeats the last, 2 s.
fn large_movie(api: &Api, uid: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join("noise.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=640x360,geq=random(1)*255:random(1)*255:random(1)*255",
            "-frames:v",
            "1",
        ],
        &noise,
    );
    upload(api, uid, "noise.png", &noise);
    let movie = json!({
        "timeline": { "background": "#000000", "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": "noise.png" }, "start": 0, "length": 2,
              "effect": "zoomIn" } ] } ] },
        "output": { "format": "mp4", "resolution": "sd", "quality": "high" }
    });
    let r = api.put(&format!("/v1/sdl/{uid}/{name}"), movie.to_string());
    assert_eq!(r.status(), 201);
}

/// The render's video as a viewer gets it.
fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    r.bytes().unwrap().to_vec()
}

fn s3_task(peer: &SeaweedFs, bucket: &str, filename: &str, secret: &str) -> Value {
    json!({ "extension": "mp4", "destination": {
        "type": "s3", "s3host": peer.endpoint(), "bucket": bucket, "filename": filename,
        "aws_access_key_id": seaweedfs::ACCESS_KEY, "aws_secret_access_key": secret } })
}

fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers()))
}

#[test]
fn a_render_lands_in_s3_byte_for_byte_with_the_headers_asked() {
    let s3 = SeaweedFs::start();
    s3.create_bucket("renders");
    let (env, uid) = server(&[]);
    let api = env.client();
    small_movie(&api, &uid, "welcome", "Hello Alex");

    let mut task = s3_task(&s3, "renders", "welcome/alex.mp4", seaweedfs::SECRET_KEY);
    let d = task["destination"].as_object_mut().unwrap();
    for (k, v) in [
        ("acl", json!("public-read")),
        ("contenttype", json!("video/mp4")),
        ("cachecontrol", json!("public, max-age=3600")),
        (
            "contentdisposition",
            json!("attachment; filename=\"alex.mp4\""),
        ),
        (
            "metadata",
            json!({ "campaign": "spring", "customer": "42" }),
        ),
        ("reduced_redundancy", json!(true)),
    ] {
        d.insert(k.into(), v);
    }
    let answer = api.render_with_upload(&uid, "welcome", json!({}), task);
    let url = format!("{}/renders/welcome/alex.mp4", s3.endpoint());
    assert_eq!(answer["uploads"], json!([url]), "the URL is known at once");
    let token = answer["token"].as_str().unwrap();

    let uploads = api.wait_uploads(token, 60);
    assert_eq!(uploads[0]["type"], "s3");
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    assert_eq!(uploads[0]["url"], url.as_str());
    assert_eq!(uploads[0]["attempts"], 1);

    let object = s3.get_object("renders", "welcome/alex.mp4");
    assert_eq!(object.status(), 200);
    assert_eq!(header(&object, "content-type"), "video/mp4");
    assert_eq!(header(&object, "cache-control"), "public, max-age=3600");
    assert_eq!(
        header(&object, "content-disposition"),
        "attachment; filename=\"alex.mp4\""
    );
    assert_eq!(header(&object, "x-amz-meta-campaign"), "spring");
    assert_eq!(header(&object, "x-amz-meta-customer"), "42");
    assert_eq!(header(&object, "x-amz-storage-class"), "REDUCED_REDUNDANCY");
    let uploaded = object.bytes().unwrap().to_vec();
    assert_eq!(uploaded, video(&api, token), "the object is the render");

    // The ACL (public-read here) is sent as the signed x-amz-acl header
    // of the PutObject; SeaweedFS 4.48 keeps no ACL given that way (its
    // GetObjectAcl answers the owner's grant alone; it applies x-amz-acl
    // only on PutObjectAcl), so the header itself is checked by the S3
    // sender's unit tests.
}

#[test]
fn a_large_render_goes_to_s3_in_parts_and_a_wrong_secret_leaves_nothing() {
    let s3 = SeaweedFs::start();
    s3.create_bucket("renders");
    let (env, uid) = server(&[("CLIPSTREAM_UPLOAD_PART_BYTES", "5242880")]);
    let api = env.client();
    large_movie(&api, &uid, "noise");

    // Two tasks of one render: the second one's failure is its own.
    let tasks = json!([
        s3_task(&s3, "renders", "large.mp4", seaweedfs::SECRET_KEY),
        s3_task(&s3, "renders", "stolen.mp4", "not-the-secret"),
    ]);
    let answer = api.render_with_upload(&uid, "noise", json!({}), tasks);
    let token = answer["token"].as_str().unwrap();
    let uploads = api.wait_uploads(token, 120);
    let rendered = video(&api, token);
    assert!(
        rendered.len() > 5 * 1024 * 1024,
        "the render must be over one part: {} bytes",
        rendered.len()
    );

    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    let object = s3.get_object("renders", "large.mp4");
    assert_eq!(object.status(), 200);
    // An object put in parts has the ETag of its parts' digests, "-<parts>".
    let etag = header(&object, "etag");
    assert!(etag.trim_matches('"').ends_with("-2"), "ETag {etag}");
    assert_eq!(
        object.bytes().unwrap().to_vec(),
        rendered,
        "the parts make the render"
    );

    let failed = &uploads[1];
    assert_eq!(failed["state"], "failed", "{uploads:?}");
    assert_eq!(failed["attempts"], 1, "a refusal is not tried again");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("403") && error.contains("SignatureDoesNotMatch"),
        "{error}"
    );
    assert!(
        !error.contains("not-the-secret"),
        "no credential in the error"
    );
    assert_eq!(s3.keys("renders"), vec!["large.mp4".to_owned()]);
    assert_eq!(
        s3.pending_multipart_uploads("renders"),
        Vec::<String>::new(),
        "no multipart upload is left open"
    );
    assert_eq!(video(&api, token), rendered, "the render is still served");
}

#[test]
fn the_servers_own_s3_keys_write_only_to_its_buckets_on_its_host() {
    let s3 = SeaweedFs::start();
    s3.create_bucket("renders");
    s3.create_bucket("archive");
    let endpoint = s3.endpoint();
    let (env, uid) = server(&[
        ("CLIPSTREAM_UPLOAD_AWS_ACCESS_KEY_ID", seaweedfs::ACCESS_KEY),
        (
            "CLIPSTREAM_UPLOAD_AWS_SECRET_ACCESS_KEY",
            seaweedfs::SECRET_KEY,
        ),
        // A list, as figment reads it from the environment.
        ("CLIPSTREAM_UPLOAD_AWS_BUCKETS", r#"["renders"]"#),
        ("CLIPSTREAM_UPLOAD_AWS_S3HOST", endpoint.as_str()),
    ]);
    let api = env.client();
    small_movie(&api, &uid, "welcome", "Hello Lee");
    let policy = |bucket: &str, extra: Value| {
        let mut d = json!({ "type": "s3", "bucket": bucket, "filename": "policy/lee.mp4",
                            "aws_use_policy": true });
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "extension": "mp4", "destination": d })
    };

    // A bucket of the list, no s3host: the server's keys, to its host.
    let answer = api.render_with_upload(&uid, "welcome", json!({}), policy("renders", json!({})));
    let url = format!("{endpoint}/renders/policy/lee.mp4");
    assert_eq!(
        answer["uploads"],
        json!([url]),
        "the server's host, known at once"
    );
    let token = answer["token"].as_str().unwrap();
    let uploads = api.wait_uploads(token, 60);
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    assert_eq!(uploads[0]["url"], url.as_str());
    let object = s3.get_object("renders", "policy/lee.mp4");
    assert_eq!(object.status(), 200);
    assert_eq!(object.bytes().unwrap().to_vec(), video(&api, token));

    // Another bucket the keys reach, or another host: refused at once.
    let elsewhere = Receiver::start(&[200]);
    for (task, param) in [
        (policy("archive", json!({})), "upload.destination.bucket"),
        (
            policy("renders", json!({ "s3host": elsewhere.url })),
            "upload.destination.s3host",
        ),
    ] {
        let (status, body) = json(
            api.request(Method::POST, &format!("/v2/render/{uid}"))
                .json(&json!({ "movie": "welcome", "params": {}, "upload": task }))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 400, "{task}: {body}");
        assert_eq!(body["param"], param, "{body}");
    }
    assert_eq!(s3.keys("archive"), Vec::<String>::new());
    assert_eq!(
        elsewhere.connections(),
        0,
        "no signed request went elsewhere"
    );
}

#[test]
fn a_render_lands_in_azure_blob_storage_byte_for_byte() {
    let azure = Azurite::start();
    azure.create_container("videos");
    let (env, uid) = server(&[]);
    let api = env.client();
    small_movie(&api, &uid, "welcome", "Hello Sam");

    let task = json!({ "extension": "mp4", "destination": {
        "type": "azureblob", "account": azurite::ACCOUNT, "key": azurite::KEY,
        "container": "videos", "filename": "renders/sam.mp4", "contenttype": "video/mp4",
        "endpoint": azure.account_url() } });
    let answer = api.render_with_upload(&uid, "welcome", json!({}), task);
    let url = format!("{}/videos/renders/sam.mp4", azure.account_url());
    assert_eq!(answer["uploads"], json!([url]));
    let token = answer["token"].as_str().unwrap();

    let uploads = api.wait_uploads(token, 60);
    assert_eq!(uploads[0]["type"], "azureblob");
    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    assert_eq!(uploads[0]["url"], url.as_str());

    let blob = azure.get_blob("videos", "renders/sam.mp4");
    assert_eq!(blob.status(), 200);
    assert_eq!(header(&blob, "content-type"), "video/mp4");
    assert_eq!(blob.bytes().unwrap().to_vec(), video(&api, token));
    assert_eq!(
        azure.committed_blocks("videos", "renders/sam.mp4"),
        Vec::<u64>::new(),
        "put whole, in one request"
    );
}

#[test]
fn a_render_goes_to_azure_in_blocks_and_a_wrong_key_leaves_no_blob() {
    let azure = Azurite::start();
    azure.create_container("videos");
    // Blocks of 1 KiB: the small render takes several.
    let (env, uid) = server(&[("CLIPSTREAM_UPLOAD_PART_BYTES", "1024")]);
    let api = env.client();
    small_movie(&api, &uid, "welcome", "Hello Kim");

    let task = |filename: &str, key: &str| {
        json!({ "destination": {
            "type": "azureblob", "account": azurite::ACCOUNT, "key": key,
            "filename": format!("videos/{filename}"), "contenttype": "video/mp4",
            "endpoint": azure.account_url() } })
    };
    // A valid key of the right length, but not the account's.
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    let tasks = json!([task("kim.mp4", azurite::KEY), task("forged.mp4", &wrong)]);
    let answer = api.render_with_upload(&uid, "welcome", json!({}), tasks);
    let token = answer["token"].as_str().unwrap();
    let uploads = api.wait_uploads(token, 60);
    let rendered = video(&api, token);
    assert!(rendered.len() > 2 * 1024, "{} bytes", rendered.len());

    assert_eq!(uploads[0]["state"], "done", "{uploads:?}");
    let blob = azure.get_blob("videos", "kim.mp4");
    assert_eq!(blob.status(), 200);
    assert_eq!(header(&blob, "content-type"), "video/mp4");
    assert_eq!(blob.bytes().unwrap().to_vec(), rendered);
    let blocks = azure.committed_blocks("videos", "kim.mp4");
    assert_eq!(blocks.len(), rendered.len().div_ceil(1024), "{blocks:?}");
    assert!(
        blocks[..blocks.len() - 1].iter().all(|&b| b == 1024),
        "{blocks:?}"
    );

    assert_eq!(uploads[1]["state"], "failed", "{uploads:?}");
    assert_eq!(uploads[1]["attempts"], 1, "a refusal is not tried again");
    let error = uploads[1]["error"].as_str().unwrap();
    assert!(error.contains("403"), "{error}");
    assert_eq!(azure.get_blob("videos", "forged.mp4").status(), 404);
}
