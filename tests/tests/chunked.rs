//! CONTRACT section 3, chunked upload: chunks in any order, retried,
//! verified on `finished`, and surviving a restart.

use clipstream_tests::{assert_error, json, noise, Api, Env};

struct Upload {
    uid: String,
    id: String,
}

impl Upload {
    fn begin(api: &Api, uid: &str, name: &str, count: u32, size: u64) -> Upload {
        let (status, body) = json(api.post(&format!(
            "/chunked/videos/{uid}?name={name}&chunk_count={count}&chunk_size={size}"
        )));
        assert_eq!(status, 201, "{body}");
        Upload {
            uid: uid.to_owned(),
            id: body["upload-id"].as_str().expect("upload-id").to_owned(),
        }
    }

    fn chunk(&self, api: &Api, chunk_id: u32, body: &[u8]) -> reqwest::blocking::Response {
        api.request(
            reqwest::Method::POST,
            &format!(
                "/chunked/videos/{}/{}/chunks?chunk_id={chunk_id}",
                self.uid, self.id
            ),
        )
        .body(body.to_vec())
        .send()
        .unwrap()
    }

    fn finish(&self, api: &Api) -> reqwest::blocking::Response {
        api.post(&format!(
            "/chunked/videos/{}/{}/finished",
            self.uid, self.id
        ))
    }
}

/// 3 chunks of 1000 bytes and a last one of 500.
fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.chunks(1000).collect()
}

#[test]
fn chunks_in_any_order_with_a_retry_assemble_into_the_asset() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("p");
    let data = noise(10, 3500);
    let upload = Upload::begin(&api, &uid, "hero.mp4", 4, 1000);
    let parts = parts(&data);
    for i in [3, 1, 0] {
        assert_eq!(upload.chunk(&api, i, parts[i as usize]).status(), 200);
    }
    // A retried chunk replaces the earlier copy (here: first sent wrong).
    assert_eq!(upload.chunk(&api, 2, &noise(99, 1000)).status(), 200);
    let (status, body) = json(upload.chunk(&api, 2, parts[2]));
    assert_eq!(status, 200);
    assert_eq!(body["received"], serde_json::json!([0, 1, 2, 3]));

    let (status, asset) = json(upload.finish(&api));
    assert_eq!(status, 201, "{asset}");
    assert_eq!(
        (asset["name"].as_str(), asset["size"].as_u64()),
        (Some("hero.mp4"), Some(3500))
    );
    assert_eq!(asset["content_type"], "video/mp4");
    assert_eq!(
        api.get(&format!("/v1/data/{uid}/hero.mp4"))
            .bytes()
            .unwrap()
            .as_ref(),
        data.as_slice()
    );
    // The upload is gone once assembled.
    assert_error(upload.finish(&api), 404, "upload_not_found");
    assert_error(upload.chunk(&api, 0, parts[0]), 404, "upload_not_found");
    let uploads = std::fs::read_dir(env.data_dir().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0, "the chunks are removed");
}

#[test]
fn finished_names_missing_chunks_and_the_upload_can_still_complete() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("p");
    let data = noise(11, 3500);
    let parts = parts(&data);
    let upload = Upload::begin(&api, &uid, "v.mp4", 4, 1000);
    upload.chunk(&api, 0, parts[0]);
    upload.chunk(&api, 2, parts[2]);
    let body = assert_error(upload.finish(&api), 400, "upload_incomplete");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("[1, 3]") && message.contains("2 of 4"),
        "{message}"
    );
    assert_error(
        api.get(&format!("/v1/data/{uid}/v.mp4")),
        404,
        "asset_not_found",
    );

    upload.chunk(&api, 1, parts[1]);
    upload.chunk(&api, 3, parts[3]);
    assert_eq!(upload.finish(&api).status(), 201);
    assert_eq!(
        api.get(&format!("/v1/data/{uid}/v.mp4"))
            .bytes()
            .unwrap()
            .as_ref(),
        data.as_slice()
    );
}

#[test]
fn wrong_sized_and_out_of_range_chunks_are_refused() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("p");
    let upload = Upload::begin(&api, &uid, "v.mp4", 3, 1000);
    let body = assert_error(upload.chunk(&api, 0, &[1u8; 999]), 400, "invalid_chunk");
    assert!(body["message"].as_str().unwrap().contains("999"), "{body}");
    assert_error(upload.chunk(&api, 0, &[1u8; 1001]), 413, "body_too_large");
    assert_error(upload.chunk(&api, 3, &[1u8; 1000]), 400, "invalid_chunk");
    assert_error(upload.chunk(&api, 2, &[]), 400, "invalid_chunk");
    // The last chunk may be shorter, not longer.
    assert_eq!(upload.chunk(&api, 2, &[1u8; 10]).status(), 200);
    let path = format!("/chunked/videos/{uid}/{}/chunks", upload.id);
    assert_error(api.post(&path), 400, "invalid_parameter");
    let body = assert_error(
        api.post(&format!("{path}?chunk_id=abc")),
        400,
        "invalid_parameter",
    );
    assert_eq!(body["param"], "chunk_id");
}

#[test]
fn initiate_checks_its_parameters() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("p");
    let cases = [
        ("chunk_count=2&chunk_size=10", "name"),
        ("name=a.mp4&chunk_size=10", "chunk_count"),
        ("name=a.mp4&chunk_count=2", "chunk_size"),
        ("name=a.mp4&chunk_count=two&chunk_size=10", "chunk_count"),
        ("name=a%2Fb&chunk_count=2&chunk_size=10", "name"),
    ];
    for (query, param) in cases {
        let body = assert_error(
            api.post(&format!("/chunked/videos/{uid}?{query}")),
            400,
            "invalid_parameter",
        );
        assert_eq!(body["param"], param, "{query}");
    }
    assert_error(
        api.post(&format!(
            "/chunked/videos/{uid}?name=a&chunk_count=0&chunk_size=10"
        )),
        400,
        "invalid_chunk",
    );
    assert_error(
        api.post(&format!(
            "/chunked/videos/{uid}?name=a&chunk_count=2&chunk_size=0"
        )),
        400,
        "invalid_chunk",
    );
    // More than the asset limit in total (4 GiB by default).
    assert_error(
        api.post(&format!(
            "/chunked/videos/{uid}?name=a&chunk_count=100&chunk_size=268435456"
        )),
        400,
        "invalid_chunk",
    );
    assert_error(
        api.post("/chunked/videos/nope?name=a&chunk_count=1&chunk_size=1"),
        404,
        "project_not_found",
    );
    assert_error(
        api.post(&format!("/chunked/videos/{uid}/nope/finished")),
        404,
        "upload_not_found",
    );
}

#[test]
fn an_upload_survives_a_server_restart() {
    let mut env = Env::new();
    let uid = env.client().create_project("p");
    let data = noise(12, 3500);
    let parts = parts(&data);
    let upload = Upload::begin(&env.client(), &uid, "resume.mp4", 4, 1000);
    upload.chunk(&env.client(), 0, parts[0]);
    upload.chunk(&env.client(), 3, parts[3]);
    env.restart();
    let api = env.client();
    upload.chunk(&api, 1, parts[1]);
    upload.chunk(&api, 2, parts[2]);
    assert_eq!(upload.finish(&api).status(), 201);
    assert_eq!(
        api.get(&format!("/v1/data/{uid}/resume.mp4"))
            .bytes()
            .unwrap()
            .as_ref(),
        data.as_slice()
    );
}
