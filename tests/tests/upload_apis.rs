//! Issue 16, CONTRACT section 8: a render request's `upload` sends the
//! finished video to Dropbox (API v2, upload sessions for large files),
//! YouTube (Data API v3 resumable upload, with its metadata and playlist),
//! Facebook (Graph video upload) and Mux (a direct upload that becomes an
//! asset; a Clipstream extension, for the Shotstack API), with the client's OAuth token or,
//! for `auth_secret`, the server's own account's token refreshed from its
//! configuration (Facebook's only to the server's own endpoint). A
//! refusal fails at once with the API's own message; a busy API is tried
//! again; a revoked server token is replaced. The APIs are a stand-in on
//! loopback that checks each call's documented shape and records what
//! arrived (`clipstream_tests::peers::apis`).

use clipstream_tests::peers::apis::{Apis, OAuthClient};
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::{json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

const DROPBOX_TOKEN: &str = "sl.client-dropbox-token";
const YOUTUBE_TOKEN: &str = "ya29.client-youtube-token";
const FACEBOOK_TOKEN: &str = "EAAB-client-facebook-token";
/// The server's own Facebook token (`upload.facebook_access_token`).
const SERVER_FACEBOOK_TOKEN: &str = "EAAB-server-facebook-token";
const DROPBOX_SECRET: &str = "dropbox-auth-secret";
const YOUTUBE_SECRET: &str = "youtube-auth-secret";
const FACEBOOK_SECRET: &str = "facebook-auth-secret";
/// Mux access tokens, `id:secret`: the server's and a client's.
const SERVER_MUX: (&str, &str) = ("server-mux-id", "server-mux-secret");
const CLIENT_MUX: (&str, &str) = ("client-mux-id", "client-mux-secret");

/// Seconds an upload may take, the render included.
const UPLOAD_SECS: u64 = 90;

fn dropbox_app() -> OAuthClient {
    OAuthClient {
        client_id: "dropbox-app-key".into(),
        client_secret: "dropbox-app-secret".into(),
        refresh_token: "dropbox-refresh-token".into(),
    }
}

fn google_app() -> OAuthClient {
    OAuthClient {
        client_id: "google-client-id.apps.googleusercontent.com".into(),
        client_secret: "google-client-secret".into(),
        refresh_token: "1//google-refresh-token".into(),
    }
}

/// The stand-in, a server whose API endpoints and own accounts point at
/// it, and a project with the movie `welcome`.
struct Setup {
    apis: Apis,
    env: Env,
    uid: String,
}

fn setup(extra: &[(&str, &str)]) -> Setup {
    let apis = Apis::start(
        &[
            DROPBOX_TOKEN,
            YOUTUBE_TOKEN,
            FACEBOOK_TOKEN,
            SERVER_FACEBOOK_TOKEN,
            &format!("{}:{}", SERVER_MUX.0, SERVER_MUX.1),
            &format!("{}:{}", CLIENT_MUX.0, CLIENT_MUX.1),
        ],
        dropbox_app(),
        google_app(),
    );
    let (dropbox, google) = (dropbox_app(), google_app());
    let settings: Vec<(String, String)> = [
        ("ALLOW_PRIVATE", "true"),
        ("RETRY_BACKOFF_MS", "50"),
        ("DROPBOX_ENDPOINT", apis.url.as_str()),
        (
            "DROPBOX_TOKEN_ENDPOINT",
            format!("{}/dropbox/oauth2/token", apis.url).as_str(),
        ),
        ("DROPBOX_AUTH_SECRET", DROPBOX_SECRET),
        ("DROPBOX_APP_KEY", dropbox.client_id.as_str()),
        ("DROPBOX_APP_SECRET", dropbox.client_secret.as_str()),
        ("DROPBOX_REFRESH_TOKEN", dropbox.refresh_token.as_str()),
        ("YOUTUBE_ENDPOINT", apis.url.as_str()),
        (
            "YOUTUBE_TOKEN_ENDPOINT",
            format!("{}/google/token", apis.url).as_str(),
        ),
        ("YOUTUBE_AUTH_SECRET", YOUTUBE_SECRET),
        ("YOUTUBE_CLIENT_ID", google.client_id.as_str()),
        ("YOUTUBE_CLIENT_SECRET", google.client_secret.as_str()),
        ("YOUTUBE_REFRESH_TOKEN", google.refresh_token.as_str()),
        ("FACEBOOK_ACCESS_TOKEN", SERVER_FACEBOOK_TOKEN),
        ("FACEBOOK_AUTH_SECRET", FACEBOOK_SECRET),
        ("FACEBOOK_ENDPOINT", format!("{}/graph", apis.url).as_str()),
        ("MUX_ENDPOINT", format!("{}/mux", apis.url).as_str()),
        ("MUX_TOKEN_ID", SERVER_MUX.0),
        ("MUX_TOKEN_SECRET", SERVER_MUX.1),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (format!("CLIPSTREAM_UPLOAD_{k}"), v.to_string()))
    .collect();
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let env = Env::with_settings(&settings);
    let api = env.client();
    let uid = api.create_project("uploads");
    // A second of a title at the smallest size: the file is what is
    // compared, not how it looks.
    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Hello {{NAME}}" },
                           "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/welcome"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    Setup { apis, env, uid }
}

impl Setup {
    fn api(&self) -> Api {
        self.env.client()
    }

    /// Asks for a render of `welcome` for `name` with `upload`; returns
    /// the token and the answer's `uploads`.
    fn request(&self, name: &str, upload: Value) -> (String, Vec<Value>) {
        let answer =
            self.api()
                .render_with_upload(&self.uid, "welcome", json!({ "NAME": name }), upload);
        let token = answer["token"].as_str().expect("token").to_owned();
        let uploads = answer["uploads"].as_array().expect("uploads").clone();
        (token, uploads)
    }

    /// Waits for the uploads of `token` to end; returns their status
    /// entries and the whole status text.
    fn finished(&self, token: &str) -> (Vec<Value>, String) {
        let entries = self.api().wait_uploads(token, UPLOAD_SECS);
        let text = self
            .api()
            .anonymous()
            .get(&format!("/v2/render/{token}/status"))
            .text()
            .expect("status");
        (entries, text)
    }

    /// The video as a viewer gets it.
    fn video(&self, token: &str) -> Vec<u8> {
        let r = self.api().anonymous().get(&format!("/render/{token}.mp4"));
        assert_eq!(r.status(), 200);
        r.bytes().expect("video").to_vec()
    }
}

/// A status entry that is `done` after one attempt, with its result.
fn assert_done(entry: &Value, kind: &str) {
    assert_eq!(entry["type"], kind, "{entry}");
    assert_eq!(entry["state"], "done", "{entry}");
    assert_eq!(entry["attempts"], 1, "{entry}");
    assert!(entry.get("error").is_none(), "{entry}");
}

#[test]
fn dropbox_receives_the_render_at_its_path_with_the_clients_token() {
    let s = setup(&[]);
    // Dropbox-API-Arg is a header: the path's accents and emoji travel
    // escaped, and arrive as written.
    let path = "/Vidéos/bienvenue 😀.mp4";
    let (token, known) = s.request(
        "Alex",
        json!({"extension": "mp4", "destination": {"type": "dropbox",
               "filename": "Vidéos/bienvenue 😀.mp4", "oauth_token": DROPBOX_TOKEN}}),
    );
    assert_eq!(known, [json!(path)], "the path is known at once");
    let (entries, status) = s.finished(&token);
    assert_done(&entries[0], "dropbox");
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.dropbox.len(), 1);
    let file = &got.dropbox[0];
    assert_eq!(file.path, path);
    assert_eq!(file.token, DROPBOX_TOKEN);
    assert_eq!(entries[0]["path"], path);
    assert_eq!(entries[0]["id"], file.id.as_str());
    let video = s.video(&token);
    assert!(file.bytes == video, "the bytes Dropbox got are the video");
    assert_eq!(
        file.calls,
        [("upload".to_owned(), video.len())],
        "a file of one part goes in one files/upload"
    );
    assert!(
        !status.contains(DROPBOX_TOKEN),
        "no credential in the status"
    );
}

#[test]
fn dropbox_auth_secret_uploads_with_one_token_refreshed_for_the_server() {
    let s = setup(&[]);
    let task = |filename: &str| {
        json!({"destination": {"type": "dropbox", "filename": filename,
                               "auth_secret": DROPBOX_SECRET}})
    };
    let (token, known) = s.request("Sam", json!([task("a.mp4"), task("Team/b.mp4")]));
    assert_eq!(known, [json!("/a.mp4"), json!("/Team/b.mp4")]);
    let (entries, status) = s.finished(&token);
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    // Both uploads ran at once, and asked for one token between them.
    assert_eq!(got.issued.len(), 1, "{:?}", got.issued);
    let (provider, issued) = &got.issued[0];
    assert_eq!(provider, "dropbox");
    let video = s.video(&token);
    for (entry, path) in entries.iter().zip(["/a.mp4", "/Team/b.mp4"]) {
        assert_done(entry, "dropbox");
        assert_eq!(entry["path"], path);
        let file = got
            .dropbox
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} not in Dropbox: {got:?}"));
        assert_eq!(&file.token, issued, "the refreshed token is used");
        assert_eq!(entry["id"], file.id.as_str());
        assert!(file.bytes == video, "{path} holds the video");
    }
    assert!(!status.contains(DROPBOX_SECRET) && !status.contains(issued.as_str()));
}

#[test]
fn a_file_larger_than_a_part_goes_to_dropbox_in_an_upload_session() {
    const PART: usize = 1024;
    let s = setup(&[("PART_BYTES", "1024")]);
    let (token, _) = s.request(
        "Kim",
        json!({"destination": {"type": "dropbox", "filename": "big.mp4",
                               "oauth_token": DROPBOX_TOKEN}}),
    );
    let (entries, _) = s.finished(&token);
    assert_done(&entries[0], "dropbox");
    let video = s.video(&token);
    assert!(
        video.len() > 2 * PART,
        "the video has at least three parts ({} bytes)",
        video.len()
    );
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    let file = &got.dropbox[0];
    assert!(file.bytes == video, "the parts make the video");
    assert_eq!(entries[0]["id"], file.id.as_str());
    let calls: Vec<&str> = file.calls.iter().map(|(c, _)| c.as_str()).collect();
    let parts = video.len().div_ceil(PART);
    let mut expected = vec!["upload_session/start"];
    expected.extend(vec!["upload_session/append_v2"; parts - 2]);
    expected.push("upload_session/finish");
    assert_eq!(calls, expected);
    assert!(
        file.calls.iter().all(|(_, n)| *n <= PART),
        "{:?}",
        file.calls
    );
}

#[test]
fn youtube_gets_the_video_with_its_metadata_and_adds_it_to_the_playlist() {
    let s = setup(&[]);
    let (token, known) = s.request(
        "Alex",
        json!({"extension": "mp4", "destination": {"type": "youtube",
               "title": "Welcome, Alex!", "description": "A personalized welcome video.",
               "category": "22", "status": "unlisted", "tags": ["personalized", "welcome"],
               "playlistid": "PLwelcome_2024-a", "notifySubscribers": false,
               "oauth_access_token": YOUTUBE_TOKEN}}),
    );
    assert_eq!(
        known,
        [Value::Null],
        "a video id is known only once it is up"
    );
    let (entries, status) = s.finished(&token);
    assert_done(&entries[0], "youtube");
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.youtube.len(), 1);
    let v = &got.youtube[0];
    assert_eq!(entries[0]["id"], v.id.as_str());
    assert_eq!(v.token, YOUTUBE_TOKEN);
    assert_eq!(
        v.snippet,
        json!({"title": "Welcome, Alex!", "description": "A personalized welcome video.",
               "categoryId": "22", "tags": ["personalized", "welcome"]})
    );
    assert_eq!(v.status, json!({"privacyStatus": "unlisted"}));
    assert_eq!(v.notify_subscribers, Some(false));
    assert_eq!(v.content_type, "video/mp4");
    assert!(
        v.bytes == s.video(&token),
        "the bytes YouTube got are the video"
    );
    assert_eq!(v.puts, [""], "one PUT of the whole file");
    assert_eq!(got.playlist_items.len(), 1);
    let item = &got.playlist_items[0];
    assert_eq!(
        (
            item.playlist_id.as_str(),
            item.video_id.as_str(),
            item.token.as_str()
        ),
        ("PLwelcome_2024-a", v.id.as_str(), YOUTUBE_TOKEN)
    );
    assert!(
        !status.contains(YOUTUBE_TOKEN),
        "no credential in the status"
    );
}

#[test]
fn youtube_auth_secret_uploads_to_the_servers_channel_with_the_seeds_defaults() {
    let s = setup(&[]);
    let (token, _) = s.request(
        "Sam",
        json!({"destination": {"type": "youtube", "title": "Hello Sam",
               "description": "", "category": "27", "auth_secret": YOUTUBE_SECRET}}),
    );
    let (entries, _) = s.finished(&token);
    assert_done(&entries[0], "youtube");
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.issued.len(), 1);
    assert_eq!(got.issued[0].0, "google");
    let v = &got.youtube[0];
    assert_eq!(v.token, got.issued[0].1, "the refreshed token is used");
    assert_eq!(entries[0]["id"], v.id.as_str());
    assert_eq!(
        v.snippet,
        json!({"title": "Hello Sam", "description": "", "categoryId": "27"})
    );
    // The seed's defaults: public, subscribers notified.
    assert_eq!(v.status, json!({"privacyStatus": "public"}));
    assert_eq!(v.notify_subscribers, Some(true));
    assert!(v.bytes == s.video(&token));
    assert!(got.playlist_items.is_empty(), "no playlist asked");
}

#[test]
fn an_interrupted_youtube_upload_resumes_where_it_stopped() {
    let s = setup(&[]);
    // The connection drops after 1000 bytes of the PUT; the session keeps
    // them, and the uploader sends only the rest.
    s.apis.cut_next_youtube_put(1000);
    let (token, _) = s.request(
        "Lou",
        json!({"destination": {"type": "youtube", "title": "Hello Lou",
               "description": "d", "category": "22", "oauth_access_token": YOUTUBE_TOKEN}}),
    );
    let (entries, _) = s.finished(&token);
    assert_done(&entries[0], "youtube");
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.youtube.len(), 1, "one video, not two");
    let v = &got.youtube[0];
    let video = s.video(&token);
    let len = video.len();
    assert_eq!(
        v.puts,
        [
            "(cut after 1000 bytes)".to_owned(),
            format!("bytes */{len}"),
            format!("bytes 1000-{}/{len}", len - 1)
        ]
    );
    assert!(v.bytes == video, "the two pieces make the video");
    assert_eq!(entries[0]["id"], v.id.as_str());
}

#[test]
fn facebook_gets_the_video_with_its_fields_and_the_right_token() {
    let s = setup(&[]);
    let (token, known) = s.request(
        "Alex",
        json!([
            {"destination": {"type": "facebook", "title": "Welcome Video",
             "description": "A personalized welcome.", "caption": "For Alex",
             "name": "welcome-alex", "message": "Hi Alex!",
             "oauth_access_token": FACEBOOK_TOKEN,
             // A trailing '/' in the endpoint is the same endpoint.
             "endpoint": format!("{}/graph/", s.apis.url)}},
            // The server's token, to the server's endpoint
            // (upload.facebook_endpoint), the task naming none.
            {"destination": {"type": "facebook", "title": "Server's own",
             "description": "With the server's token.", "auth_secret": FACEBOOK_SECRET}}
        ]),
    );
    assert_eq!(known, [Value::Null, Value::Null]);
    let (entries, status) = s.finished(&token);
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.facebook.len(), 2);
    let video = s.video(&token);
    let mut by_id = Vec::new();
    for entry in &entries {
        assert_done(entry, "facebook");
        let posted = got
            .facebook
            .iter()
            .find(|f| entry["id"] == f.id.as_str())
            .unwrap_or_else(|| panic!("{entry} names no posted video"));
        assert_eq!(posted.filename, "video.mp4");
        assert_eq!(posted.content_type, "video/mp4");
        assert!(posted.bytes == video, "the source part is the video");
        by_id.push(posted);
    }
    let fields = |f: &[(&str, &str)]| {
        f.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        by_id[0].fields,
        fields(&[
            ("access_token", FACEBOOK_TOKEN),
            ("title", "Welcome Video"),
            ("description", "A personalized welcome."),
            ("caption", "For Alex"),
            ("name", "welcome-alex"),
            ("message", "Hi Alex!"),
        ])
    );
    assert_eq!(
        by_id[1].fields,
        fields(&[
            ("access_token", SERVER_FACEBOOK_TOKEN),
            ("title", "Server's own"),
            ("description", "With the server's token."),
        ])
    );
    assert!(!status.contains(FACEBOOK_TOKEN) && !status.contains(SERVER_FACEBOOK_TOKEN));
    assert!(!status.contains(FACEBOOK_SECRET));
}

#[test]
fn the_servers_facebook_token_goes_nowhere_but_its_own_endpoint() {
    let s = setup(&[]);
    // Where a client would like the server's token to go.
    let elsewhere = Receiver::start(&[200]);
    let post = |destination: Value| {
        json(
            s.api()
                .request(Method::POST, &format!("/v2/render/{}", s.uid))
                .json(&json!({"movie": "welcome", "params": {"NAME": "Eve"},
                              "upload": {"destination": destination}}))
                .send()
                .expect("POST render"),
        )
    };
    let (status, body) = post(json!({"type": "facebook", "title": "t", "description": "d",
        "auth_secret": FACEBOOK_SECRET, "endpoint": format!("{}/graph", elsewhere.url)}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["param"], "upload.destination.endpoint", "{body}");
    // Without the server's secret, no token of the server's at all.
    let (status, body) = post(json!({"type": "facebook", "title": "t", "description": "d",
        "auth_secret": "a guess", "endpoint": format!("{}/graph", s.apis.url)}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["param"], "upload.destination.auth_secret", "{body}");
    let (status, body) = post(json!({"type": "facebook", "title": "t", "description": "d",
        "endpoint": format!("{}/graph", elsewhere.url)}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["param"], "upload.destination.oauth_access_token",
        "{body}"
    );
    assert_eq!(elsewhere.connections(), 0);
    // The server's own endpoint, written out, is the same endpoint.
    let (token, _) = s.request(
        "Eve",
        json!({"destination": {"type": "facebook", "title": "t", "description": "d",
               "auth_secret": FACEBOOK_SECRET, "endpoint": format!("{}/graph/", s.apis.url)}}),
    );
    assert_done(&s.finished(&token).0[0], "facebook");
    let got = s.apis.received();
    assert_eq!(got.facebook.len(), 1);
    assert_eq!(
        got.facebook[0].fields["access_token"],
        SERVER_FACEBOOK_TOKEN
    );
}

#[test]
fn a_token_the_api_refuses_fails_at_once_with_the_apis_message() {
    let s = setup(&[]);
    let (token, _) = s.request(
        "Max",
        json!([
            {"destination": {"type": "dropbox", "filename": "x.mp4", "oauth_token": "revoked"}},
            {"destination": {"type": "youtube", "title": "t", "description": "d",
             "category": "22", "oauth_access_token": "revoked"}},
            {"destination": {"type": "facebook", "title": "t", "description": "d",
             "oauth_access_token": "revoked", "endpoint": format!("{}/graph", s.apis.url)}}
        ]),
    );
    let (entries, _) = s.finished(&token);
    let messages = [
        "invalid_access_token",
        "Request had invalid authentication credentials.",
        "Invalid OAuth access token",
    ];
    for (entry, message) in entries.iter().zip(messages) {
        assert_eq!(entry["state"], "failed", "{entry}");
        assert_eq!(
            entry["attempts"], 1,
            "a refused token is not tried again: {entry}"
        );
        let error = entry["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{entry}");
    }
    let got = s.apis.received();
    let count = |call: &str| got.requests.iter().filter(|r| *r == call).count();
    assert_eq!(count("POST /2/files/upload"), 1, "{:?}", got.requests);
    assert_eq!(
        count("POST /upload/youtube/v3/videos"),
        1,
        "{:?}",
        got.requests
    );
    assert_eq!(count("POST /graph/me/videos"), 1, "{:?}", got.requests);
    assert!(got.dropbox.is_empty() && got.youtube.is_empty() && got.facebook.is_empty());
    // The render itself is not affected.
    assert!(!s.video(&token).is_empty());
}

#[test]
fn an_api_that_is_busy_or_failing_for_a_moment_is_tried_again() {
    let s = setup(&[]);
    s.apis.fail_next(
        "POST /2/files/upload",
        503,
        json!({"error_summary": "internal_error/..."}),
    );
    s.apis.fail_next(
        "POST /upload/youtube/v3/videos",
        429,
        json!({"error": {"code": 429, "message": "Too many requests",
                         "errors": [{"reason": "rateLimitExceeded"}]}}),
    );
    // Graph's throttling comes as a 400 whose code says "try later".
    s.apis.fail_next(
        "POST /graph/me/videos",
        400,
        json!({"error": {"message": "(#4) Application request limit reached",
                         "type": "OAuthException", "code": 4}}),
    );
    let (token, _) = s.request(
        "Ana",
        json!([
            {"destination": {"type": "dropbox", "filename": "a.mp4", "oauth_token": DROPBOX_TOKEN}},
            {"destination": {"type": "youtube", "title": "t", "description": "d",
             "category": "22", "oauth_access_token": YOUTUBE_TOKEN}},
            {"destination": {"type": "facebook", "title": "t", "description": "d",
             "oauth_access_token": FACEBOOK_TOKEN, "endpoint": format!("{}/graph", s.apis.url)}}
        ]),
    );
    let (entries, _) = s.finished(&token);
    for (entry, kind) in entries.iter().zip(["dropbox", "youtube", "facebook"]) {
        assert_eq!(
            (entry["type"].as_str(), entry["state"].as_str()),
            (Some(kind), Some("done")),
            "{entry}"
        );
        assert_eq!(entry["attempts"], 2, "{entry}");
    }
    let got = s.apis.received();
    let video = s.video(&token);
    assert!(got.dropbox[0].bytes == video);
    assert!(got.youtube[0].bytes == video);
    assert!(got.facebook[0].bytes == video);
}

#[test]
fn a_revoked_server_token_is_replaced_on_the_next_attempt() {
    let s = setup(&[]);
    let task = json!({"destination": {"type": "dropbox", "filename": "a.mp4",
                                      "auth_secret": DROPBOX_SECRET}});
    let (first, _) = s.request("One", task.clone());
    assert_done(&s.finished(&first).0[0], "dropbox");
    let issued = s.apis.received().issued;
    assert_eq!(issued.len(), 1);
    // The kept token is refused: that attempt fails, and the next one
    // asks for a new token instead of giving up.
    s.apis.revoke(&issued[0].1);
    let (second, _) = s.request("Two", task);
    let (entries, _) = s.finished(&second);
    assert_eq!(entries[0]["state"], "done", "{}", entries[0]);
    assert_eq!(entries[0]["attempts"], 2, "{}", entries[0]);
    let got = s.apis.received();
    assert_eq!(got.issued.len(), 2, "{:?}", got.issued);
    let file = got.dropbox.last().expect("the second upload");
    assert_eq!(file.token, got.issued[1].1);
    assert!(file.bytes == s.video(&second));
}

#[test]
fn mux_makes_an_asset_of_the_render_with_the_servers_token_or_the_tasks() {
    let s = setup(&[]);
    let (token, known) = s.request(
        "Mia",
        json!([
            {"destination": {"type": "mux", "playback_policy": ["public", "signed"],
                             "passthrough": "customer-42"}},
            {"destination": {"type": "mux", "token_id": CLIENT_MUX.0,
                             "token_secret": CLIENT_MUX.1}}
        ]),
    );
    assert_eq!(
        known,
        [Value::Null, Value::Null],
        "Mux names the asset later"
    );
    let (entries, status) = s.finished(&token);
    assert_done(&entries[0], "mux");
    assert_done(&entries[1], "mux");
    let got = s.apis.received();
    assert_eq!(got.refused, Vec::<String>::new());
    assert_eq!(got.mux.len(), 2);
    let video = s.video(&token);
    for (entry, token) in entries.iter().zip([SERVER_MUX, CLIENT_MUX]) {
        let asset = got
            .mux
            .iter()
            .find(|a| entry["id"] == a.upload_id.as_str())
            .expect("the upload of the entry");
        assert_eq!(entry["asset_id"], asset.asset_id.as_str());
        assert_eq!(asset.token, format!("{}:{}", token.0, token.1));
        assert_eq!(asset.content_type, "video/mp4");
        assert!(asset.bytes == video, "the bytes Mux got are the video");
    }
    let servers = got
        .mux
        .iter()
        .find(|a| a.token.starts_with(SERVER_MUX.0))
        .unwrap();
    assert_eq!(
        servers.settings,
        json!({"playback_policy": ["public", "signed"], "passthrough": "customer-42"})
    );
    assert!(
        !status.contains(CLIENT_MUX.1),
        "no credential in the status"
    );

    // Mux takes videos; a GIF is refused with the request.
    let api = s.api();
    let (code, body) = json(
        api.request(Method::POST, &format!("/v2/render/{}", s.uid))
            .json(&json!({"movie": "welcome", "params": {"NAME": "Mia"},
                          "upload": {"extension": "gif", "destination": {"type": "mux"}}}))
            .send()
            .expect("POST render"),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["param"], "upload.extension", "{body}");
}
