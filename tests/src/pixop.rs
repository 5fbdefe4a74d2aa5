//! A small client of the Pixop API (CONTRACT section 9) for the
//! `pixop_*` suites: users made with the CLI, tokens from
//! `GET /accounts/v1/token`, JSON calls with a bearer token.

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::Value;

use crate::{http_client, json, run_cli};

pub struct User {
    pub id: String,
    pub email: String,
    pub password: String,
    pub team_id: String,
}

/// `clipstream users create` on `data_dir` (through the running server).
pub fn create_user(data_dir: &Path, email: &str, team: &str, password: &str) -> User {
    let out = run_cli(
        data_dir,
        &[
            "users",
            "create",
            "--email",
            email,
            "--team",
            team,
            "--password",
            password,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "users create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("users create prints JSON");
    User {
        id: v["id"].as_str().expect("id").to_owned(),
        email: email.to_owned(),
        password: password.to_owned(),
        team_id: v["team_id"].as_str().expect("team_id").to_owned(),
    }
}

pub struct Pixop {
    pub http: Client,
    pub base: String,
}

impl Pixop {
    pub fn new(base: &str) -> Pixop {
        Pixop {
            http: http_client(Duration::from_secs(120)),
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /accounts/v1/token` with Basic email:password.
    pub fn login(&self, email: &str, password: &str) -> Response {
        self.http
            .get(self.url("/accounts/v1/token"))
            .basic_auth(email, Some(password))
            .send()
            .expect("GET token")
    }

    /// A fresh token for `user`.
    pub fn token(&self, user: &User) -> String {
        let (status, body) = json(self.login(&user.email, &user.password));
        assert_eq!(status, 200, "{body}");
        body["jwtToken"].as_str().expect("jwtToken").to_owned()
    }

    /// A call with `Authorization: Bearer token` and a JSON body.
    pub fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().expect("Pixop call")
    }

    /// The status and JSON of a bearer call.
    pub fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        json(self.call(method, path, token, body))
    }
}

/// Asserts a Pixop failure: its status, its `exception` and a non-empty
/// `errorMessage`.
pub fn assert_exception(got: (u16, Value), status: u16, exception: &str) -> Value {
    let (code, body) = got;
    assert_eq!(
        (code, body["exception"].as_str()),
        (status, Some(exception)),
        "{body}"
    );
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    body
}

/// A date as the seed writes them: `YYYY-MM-DD hh:mm:ss`.
pub fn is_seed_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        b.len() == 19
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b' ',
                13 | 16 => *c == b':',
                _ => c.is_ascii_digit(),
            })
    })
}

/// A file part for an upload: `reader` of `len` bytes, streamed.
pub fn file_part(
    reader: impl std::io::Read + Send + 'static,
    len: u64,
    file_name: &str,
    content_type: &str,
) -> reqwest::blocking::multipart::Form {
    let part = reqwest::blocking::multipart::Part::reader_with_length(reader, len)
        .file_name(file_name.to_owned())
        .mime_str(content_type)
        .expect("mime");
    reqwest::blocking::multipart::Form::new().part("file", part)
}

impl Pixop {
    /// `POST /media/v1/upload/{id}` (or its `light` variant) with `form`.
    pub fn upload(
        &self,
        token: &str,
        id: &str,
        light: bool,
        form: reqwest::blocking::multipart::Form,
    ) -> (u16, Value) {
        let path = if light {
            format!("/media/v1/upload/light/{id}")
        } else {
            format!("/media/v1/upload/{id}")
        };
        json(
            self.http
                .post(self.url(&path))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .expect("upload"),
        )
    }

    /// A new video of the default project holding `bytes`, ingested.
    pub fn ingested_video(&self, token: &str, bytes: Vec<u8>, file_name: &str) -> (String, Value) {
        let (status, made) = self.json(
            Method::PUT,
            "/videos/v1/video",
            token,
            Some(serde_json::json!({ "name": file_name })),
        );
        assert_eq!(status, 200, "{made}");
        let id = made["videoId"].as_str().expect("videoId").to_owned();
        let len = bytes.len() as u64;
        let (status, v) = self.upload(
            token,
            &id,
            false,
            file_part(std::io::Cursor::new(bytes), len, file_name, "video/mp4"),
        );
        assert_eq!(status, 200, "{v}");
        let video = self.wait_ingested(token, &id, 60);
        (id, video)
    }

    /// Polls the video until its ingestion ends (at most `secs`); returns
    /// the video.
    pub fn wait_ingested(&self, token: &str, id: &str, secs: u64) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, v) =
                self.json(Method::GET, &format!("/videos/v1/video/{id}"), token, None);
            assert_eq!(status, 200, "{v}");
            let state = v["video"]["ingestion"]["ingestionState"]["ingestionStatus"].clone();
            if state == "INGESTED" || state == "FAILED" {
                return v["video"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not ingested in {secs} s: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls a processing job until it ends (at most `secs`), returning
    /// every progress percent seen and the final state.
    pub fn wait_processed(&self, token: &str, id: &str, secs: u64) -> (Vec<f64>, Value) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            let (status, v) = self.json(
                Method::GET,
                &format!("/videos/v1/check-process-video-progress/{id}"),
                token,
                None,
            );
            assert_eq!(status, 200, "{v}");
            let state = v["processingState"].clone();
            seen.push(
                state["processingProgressPercent"]
                    .as_f64()
                    .expect("percent"),
            );
            let status = state["processingStatus"].as_str().unwrap_or("").to_owned();
            if status == "DONE" || status == "FAILED" {
                return (seen, state);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not processed in {secs} s: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
