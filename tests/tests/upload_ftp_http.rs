//! Issue 16, CONTRACT section 8: `ftp` and `http` upload destinations,
//! against a real FTP server (pyftpdlib) and an HTTP receiver on loopback.
//!
//! - ftp: the video arrives byte for byte at its path, directories
//!   created, in passive, extended passive and active mode; the status
//!   says `done` with its `url`. A wrong password fails at once with the
//!   server's answer; a failure after the file went out leaves nothing
//!   behind; the render is served all the same.
//! - ftp over TLS: a server that offers TLS (`AUTH TLS`) gets the login
//!   and the file over TLS only (`PROT P` protects the data connections),
//!   its certificate verified against the roots the server trusts; one
//!   that does not gets plain FTP. A certificate that does not verify
//!   fails the upload at once, before the password goes out.
//! - http: POST sends a form (the file in `fileid`, named `filename`, the
//!   `fields` beside it), PUT the file as the body, with Basic auth and
//!   the `headers`; the status says `done` with the HTTP `status`. A 5xx
//!   is tried again, a 403 is not.
//! - A destination on a private address is refused, without a connection,
//!   unless the server allows private addresses.

use base64::Engine as _;
use clipstream_tests::peers::ftp::FtpServer;
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::peers::tls::Ca;
use clipstream_tests::{json, Api, Env};
use serde_json::{json, Value};

/// Loopback peers are private addresses; retries come quickly.
const SETTINGS: &[(&str, &str)] = &[
    ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE", "true"),
    ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
];

/// How long a render and its uploads may take.
const UPLOAD_SECS: u64 = 120;

/// A server, a project with a one-second title movie `welcome` in it,
/// and its uid.
fn setup(settings: &[(&str, &str)]) -> (Env, String) {
    let env = Env::with_settings(settings);
    let api = env.client();
    let uid = api.create_project("uploads");
    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Hi {{NAME}}" },
                           "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/welcome"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    (env, uid)
}

/// Asks for `welcome` with `upload`; returns the token and the answer's
/// `uploads`.
fn render(api: &Api, uid: &str, name: &str, upload: Value) -> (String, Value) {
    let answer = api.render_with_upload(uid, "welcome", json!({ "NAME": name }), upload);
    let token = answer["token"].as_str().expect("token").to_owned();
    (token, answer["uploads"].clone())
}

/// The rendered video, as viewers get it.
fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "the render is served");
    let bytes = r.bytes().expect("video").to_vec();
    assert!(bytes.len() > 1000, "a video: {} bytes", bytes.len());
    bytes
}

fn ftp_task(server: &FtpServer, filename: &str, extra: Value) -> Value {
    let mut d = json!({ "type": "ftp", "host": server.host(), "filename": filename,
                        "user": server.user, "password": server.password });
    d.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "extension": "mp4", "destination": d })
}

#[test]
fn ftp_uploads_arrive_whole_at_their_path_in_passive_extended_passive_and_active_mode() {
    let (env, uid) = setup(SETTINGS);
    let api = env.client();
    // PASV names 127.0.0.2, where nothing listens: the data connection
    // must go to the control connection's address instead.
    let passive = FtpServer::start_with(Some("127.0.0.2"), &[]);
    let epsv = FtpServer::start();
    let active = FtpServer::start();
    let (token, known) = render(
        &api,
        &uid,
        "Ftp",
        json!([
            ftp_task(
                &passive,
                "/videos/2024/welcome.mp4",
                json!({ "passive": true })
            ),
            ftp_task(&epsv, "renders/jo.mp4", json!({ "epsv": true })),
            ftp_task(&active, "jo.mp4", json!({})),
        ]),
    );
    let urls = [
        format!("ftp://127.0.0.1:{}/videos/2024/welcome.mp4", passive.port),
        format!("ftp://127.0.0.1:{}/renders/jo.mp4", epsv.port),
        format!("ftp://127.0.0.1:{}/jo.mp4", active.port),
    ];
    assert_eq!(known, json!(urls), "the URLs are known at once");

    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    let bytes = video(&api, &token);
    let servers = [
        (&passive, "videos/2024/welcome.mp4", "PASV"),
        (&epsv, "renders/jo.mp4", "EPSV"),
        (&active, "jo.mp4", "PORT"),
    ];
    for (i, (server, path, mode)) in servers.into_iter().enumerate() {
        let u = &uploads[i];
        assert_eq!(
            (&u["type"], &u["state"], &u["url"], &u["attempts"]),
            (&json!("ftp"), &json!("done"), &json!(urls[i]), &json!(1)),
            "{u}: {}",
            server.stderr()
        );
        assert_eq!(
            server.files(),
            [path],
            "only the video, nothing half-written"
        );
        let got = std::fs::read(server.home().join(path)).unwrap();
        assert!(
            got == bytes,
            "{path}: {} bytes, not the video's {}",
            got.len(),
            bytes.len()
        );
        // Binary, in the mode asked, stored aside then renamed.
        let commands = server.commands();
        assert!(commands.contains(&"TYPE I".to_owned()), "{commands:?}");
        for other in ["PASV", "EPSV", "PORT", "EPRT"] {
            let used = server.count(other) > 0;
            let expected = other == mode;
            assert_eq!(used, expected, "{mode} mode used {other}? {commands:?}");
        }
        let stored: Vec<&String> = commands.iter().filter(|c| c.starts_with("STOR ")).collect();
        assert_eq!(stored.len(), 1, "{commands:?}");
        let name = path.rsplit('/').next().unwrap();
        assert!(
            stored[0].contains(&format!(".{name}.part-")),
            "{commands:?}"
        );
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with("RNTO ") && c.ends_with(path)),
            "{commands:?}"
        );
        assert_eq!(
            server.events_of("login"),
            [format!("login {}", server.user)]
        );
    }
}

#[test]
fn a_wrong_ftp_password_fails_once_and_a_refused_rename_leaves_nothing_behind() {
    let (env, uid) = setup(SETTINGS);
    let api = env.client();
    // `norename` may store and delete, not rename.
    let server = FtpServer::start_with(None, &[("norename", "pw-norename", "elradmw")]);
    let good = FtpServer::start();
    let wrong = {
        let mut t = ftp_task(&server, "/videos/wrong.mp4", json!({ "passive": true }));
        t["destination"]["password"] = json!("not-the-password");
        t
    };
    let half = {
        let mut t = ftp_task(&server, "/videos/half.mp4", json!({ "passive": true }));
        t["destination"]["user"] = json!("norename");
        t["destination"]["password"] = json!("pw-norename");
        t
    };
    let (token, _) = render(
        &api,
        &uid,
        "Wrong",
        json!([
            wrong,
            half,
            ftp_task(&good, "ok.mp4", json!({ "passive": true }))
        ]),
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);

    // A wrong password is a refusal: tried once, the server's answer told.
    assert_eq!(uploads[0]["state"], "failed", "{uploads:?}");
    let error = uploads[0]["error"].as_str().unwrap_or("");
    assert!(error.contains("530"), "{error}");
    assert!(
        !error.contains("not-the-password"),
        "no password in an error: {error}"
    );
    assert_eq!(uploads[0]["attempts"], 1, "{uploads:?}");
    assert_eq!(
        server.events_of("failed"),
        [format!("failed {}", server.user)],
        "one login tried with the wrong password"
    );

    // The file went out, the rename was refused: the temporary file is
    // deleted, nothing is left under any name.
    assert_eq!(uploads[1]["state"], "failed", "{uploads:?}");
    let error = uploads[1]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("550") && error.contains("renaming"),
        "{error}"
    );
    assert_eq!(uploads[1]["attempts"], 1, "{uploads:?}");
    assert_eq!(server.count("STOR"), 1, "{:?}", server.commands());
    assert_eq!(server.count("DELE"), 1, "{:?}", server.commands());
    assert_eq!(server.files(), Vec::<String>::new(), "nothing half-written");

    // The other upload and the render are unaffected.
    assert_eq!(uploads[2]["state"], "done", "{uploads:?}");
    let bytes = video(&api, &token);
    assert!(std::fs::read(good.home().join("ok.mp4")).unwrap() == bytes);
}

#[test]
fn an_ftp_upload_cut_off_by_kill_9_leaves_nothing_behind_once_it_is_sent_again() {
    let mut env = Env::with_settings(SETTINGS);
    let api = env.client();
    let uid = api.create_project("uploads");
    // Three seconds of video, some 10 KB: at 2 KiB/s its STOR takes long
    // enough to be cut.
    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Hi {{NAME}}" },
                           "start": 0, "length": 3 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/welcome"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    let server = FtpServer::start_slow(2048);
    let (token, _) = render(
        &api,
        &uid,
        "Cut",
        json!([ftp_task(
            &server,
            "videos/jo.mp4",
            json!({ "passive": true })
        )]),
    );
    // Killed while the file is going out: a part of it is on the server,
    // under its temporary name, and nothing of the server's can delete it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let partial = server.files().iter().any(|f| f.contains(".part-"));
        if partial && server.events_of("received").is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never caught storing: {:?}",
            server.events()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.restart();
    let api = env.client();
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    assert_eq!(
        (&uploads[0]["state"], &uploads[0]["attempts"]),
        (&json!("done"), &json!(2)),
        "{uploads:?}: {}",
        server.stderr()
    );
    // The second attempt stored under the same name, which it then
    // renamed: the first one's part is gone with it.
    let stored: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("STOR "))
        .collect();
    assert_eq!(stored.len(), 2, "{:?}", server.commands());
    assert_eq!(stored[0], stored[1], "the same temporary name each attempt");
    assert_eq!(
        server.events_of("incomplete").len(),
        1,
        "the first attempt was cut midway: {:?}",
        server.events()
    );
    assert_eq!(server.files(), ["videos/jo.mp4"], "nothing left behind");
    let got = std::fs::read(server.home().join("videos/jo.mp4")).unwrap();
    assert!(got == video(&api, &token), "the whole video");
}

/// Whether event `first` happened, and before any `then`.
fn before(events: &[String], first: &str, then: &str) -> bool {
    let at = |e: &str| events.iter().position(|x| x == e);
    match (at(first), at(then)) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[test]
fn ftp_goes_over_tls_with_the_certificate_verified_when_the_server_offers_it() {
    let ca = Ca::new("Clipstream test CA");
    let cert = ca.issue("ftps");
    let mut settings = SETTINGS.to_vec();
    settings.extend(ca.trust());
    let (env, uid) = setup(&settings);
    let api = env.client();
    // Both refuse logins and data connections without TLS.
    let passive = FtpServer::start_tls(&cert.cert, &cert.key);
    let active = FtpServer::start_tls(&cert.cert, &cert.key);
    // No TLS here: AUTH TLS is refused in plain text.
    let plain = FtpServer::start();
    let (token, _) = render(
        &api,
        &uid,
        "Tls",
        json!([
            ftp_task(&passive, "/secure/jo.mp4", json!({ "passive": true })),
            ftp_task(&active, "jo.mp4", json!({})),
            ftp_task(&plain, "jo.mp4", json!({ "epsv": true })),
        ]),
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    let bytes = video(&api, &token);
    let servers = [
        (&passive, "secure/jo.mp4"),
        (&active, "jo.mp4"),
        (&plain, "jo.mp4"),
    ];
    for (i, (server, path)) in servers.into_iter().enumerate() {
        let u = &uploads[i];
        assert_eq!(
            (&u["state"], &u["attempts"]),
            (&json!("done"), &json!(1)),
            "{u}: {}",
            server.stderr()
        );
        assert_eq!(server.files(), [path]);
        let got = std::fs::read(server.home().join(path)).unwrap();
        assert!(
            got == bytes,
            "{path}: {} bytes, not the video's {}",
            got.len(),
            bytes.len()
        );
    }

    for server in [&passive, &active] {
        let events = server.events();
        // One control connection, secured first: AUTH TLS, the handshake,
        // then PBSZ 0 and PROT P (RFC 4217) before the login.
        assert_eq!(server.events_of("connect").len(), 1, "{events:?}");
        let commands = server.commands();
        assert_eq!(
            commands
                .iter()
                .take(5)
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["AUTH TLS", "PBSZ 0", "PROT P", "USER", "PASS"],
            "{commands:?}"
        );
        assert!(before(&events, "tls control", "cmd USER"), "{events:?}");
        assert_eq!(server.events_of("password"), ["password tls"], "{events:?}");
        assert_eq!(
            server.events_of("login"),
            [format!("login {}", server.user)]
        );
        // The file came over a data connection with TLS of its own.
        let received = events
            .iter()
            .find(|e| e.starts_with("received "))
            .expect("a file received");
        assert!(before(&events, "tls data", received), "{events:?}");
    }

    // The plain server: AUTH TLS refused, then plain FTP on a new
    // connection, as before TLS existed.
    let events = plain.events();
    assert_eq!(plain.events_of("connect").len(), 2, "{events:?}");
    assert_eq!(plain.commands()[0], "AUTH TLS", "{events:?}");
    assert_eq!(
        plain.events_of("password"),
        ["password plain"],
        "{events:?}"
    );
    assert_eq!(plain.count("PBSZ") + plain.count("PROT"), 0, "{events:?}");
}

#[test]
fn an_ftp_server_whose_certificate_is_not_trusted_gets_no_password_and_no_file() {
    let ca = Ca::new("Clipstream test CA");
    let cert = ca.issue("ftps");
    // The server trusts a CA of the same name, with another key: the
    // FTP server's certificate names it as issuer, its signature does
    // not verify.
    let other = Ca::new("Clipstream test CA");
    let mut settings = SETTINGS.to_vec();
    settings.extend(other.trust());
    let (env, uid) = setup(&settings);
    let api = env.client();
    let server = FtpServer::start_tls(&cert.cert, &cert.key);
    let (token, _) = render(
        &api,
        &uid,
        "Untrusted",
        json!([ftp_task(&server, "jo.mp4", json!({ "passive": true }))]),
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);

    // Refused, not retried: the certificate will not verify next time.
    let u = &uploads[0];
    assert_eq!(
        (&u["state"], &u["attempts"]),
        (&json!("failed"), &json!(1)),
        "{uploads:?}"
    );
    let error = u["error"].as_str().unwrap_or("");
    assert!(
        error.contains("TLS") && error.contains("certificate"),
        "{error}"
    );
    assert!(!error.contains(&server.password), "{error}");

    // The handshake failed and the client hung up: no login was tried,
    // on that connection or another, so the password never went out.
    let events = server.events();
    assert_eq!(server.events_of("connect").len(), 1, "{events:?}");
    assert_eq!(server.commands(), ["AUTH TLS"], "{events:?}");
    assert!(server.events_of("password").is_empty(), "{events:?}");
    assert!(server.events_of("tls").is_empty(), "{events:?}");
    assert_eq!(server.files(), Vec::<String>::new());
    video(&api, &token);
}

#[test]
fn http_uploads_post_a_form_or_put_the_file_with_basic_auth_and_headers() {
    let (env, uid) = setup(SETTINGS);
    let api = env.client();
    let post = Receiver::start(&[201]);
    let put = Receiver::start(&[200]);
    let (token, known) = render(
        &api,
        &uid,
        "Http",
        json!([
            { "extension": "mp4", "destination": {
                "type": "http", "url": format!("{}/api/videos?kind=welcome", post.url),
                "filename": "welcome.mp4", "method": "POST", "fileid": "video",
                "fields": { "title": "Hi Jo", "campaign": "spring" },
                "headers": { "X-Api-Key": "key-123" },
                "user": "alice", "password": "s3cret" } },
            { "extension": "mp4", "destination": {
                "type": "http", "url": format!("{}/store/jo.mp4", put.url),
                "filename": "jo.mp4", "method": "PUT",
                "headers": { "Authorization": "Bearer tok-456" } } },
        ]),
    );
    assert_eq!(
        known,
        json!([null, null]),
        "nothing known before the answer"
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    assert_eq!(
        (
            &uploads[0]["type"],
            &uploads[0]["state"],
            &uploads[0]["status"]
        ),
        (&json!("http"), &json!("done"), &json!(201)),
        "{uploads:?}"
    );
    assert_eq!(
        (&uploads[1]["state"], &uploads[1]["status"]),
        (&json!("done"), &json!(200)),
        "{uploads:?}"
    );
    let bytes = video(&api, &token);

    let requests = post.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/api/videos?kind=welcome")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(r.header("x-api-key"), Some("key-123"));
    let parts = r.parts();
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no part {name}: {parts:?}"))
    };
    assert_eq!(parts.len(), 3, "the file and two fields");
    assert_eq!(field("title").body, b"Hi Jo");
    assert_eq!(field("campaign").body, b"spring");
    let file = field("video");
    assert_eq!(file.filename.as_deref(), Some("welcome.mp4"));
    assert_eq!(file.content_type.as_deref(), Some("video/mp4"));
    assert!(file.body == bytes, "the form's file is the video");

    let requests = put.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("PUT", "/store/jo.mp4")
    );
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"jo.mp4\"")
    );
    assert_eq!(r.header("authorization"), Some("Bearer tok-456"));
    assert!(r.body == bytes, "the PUT's body is the video");
}

#[test]
fn an_http_5xx_is_tried_again_and_a_403_is_not() {
    let (env, uid) = setup(SETTINGS);
    let api = env.client();
    let flaky = Receiver::start(&[500, 200]);
    let forbidden = Receiver::start(&[403]);
    let task = |r: &Receiver| {
        json!({ "extension": "mp4", "destination": {
            "type": "http", "url": format!("{}/in", r.url), "filename": "jo.mp4", "method": "PUT" } })
    };
    let (token, _) = render(&api, &uid, "Retry", json!([task(&flaky), task(&forbidden)]));
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    let bytes = video(&api, &token);

    assert_eq!(
        (
            &uploads[0]["state"],
            &uploads[0]["status"],
            &uploads[0]["attempts"]
        ),
        (&json!("done"), &json!(200), &json!(2)),
        "{uploads:?}"
    );
    let requests = flaky.requests();
    assert_eq!(requests.len(), 2, "one failure, one success");
    assert!(
        requests.iter().all(|r| r.body == bytes),
        "the whole file, each time"
    );

    assert_eq!(
        (&uploads[1]["state"], &uploads[1]["attempts"]),
        (&json!("failed"), &json!(1)),
        "{uploads:?}"
    );
    let error = uploads[1]["error"].as_str().unwrap_or("");
    assert!(error.contains("403"), "{error}");
    assert_eq!(
        forbidden.requests().len(),
        1,
        "a refusal is not tried again"
    );
}

#[test]
fn an_http_destination_that_redirects_is_not_followed() {
    let (env, uid) = setup(SETTINGS);
    let api = env.client();
    // Where the redirects point: it must see nothing, the task's headers
    // least of all.
    let elsewhere = Receiver::start(&[200]);
    // Post/redirect/get: the file was taken, the answer is elsewhere.
    let see_other = Receiver::redirecting(&[303], &format!("{}/videos/1", elsewhere.url));
    let moved = Receiver::redirecting(
        &[301],
        &format!("http://localhost:{}/new?sig=s3cr3t", elsewhere.port()),
    );
    let temporary = Receiver::redirecting(&[307], &format!("{}/put-here", elsewhere.url));
    let task = |r: &Receiver, method: &str| {
        json!({ "extension": "mp4", "destination": {
            "type": "http", "url": format!("{}/in", r.url), "filename": "jo.mp4",
            "method": method, "headers": { "X-Api-Key": "key-123" } } })
    };
    let (token, _) = render(
        &api,
        &uid,
        "Redirect",
        json!([
            task(&see_other, "POST"),
            task(&moved, "POST"),
            task(&temporary, "PUT")
        ]),
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    let bytes = video(&api, &token);

    assert_eq!(
        (
            &uploads[0]["state"],
            &uploads[0]["status"],
            &uploads[0]["attempts"]
        ),
        (&json!("done"), &json!(303), &json!(1)),
        "{uploads:?}"
    );
    let requests = see_other.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].parts()[0].body == bytes, "the file was posted");

    for (u, status, host) in [
        (&uploads[1], "301", "localhost"),
        (&uploads[2], "307", "127.0.0.1"),
    ] {
        assert_eq!(
            (&u["state"], &u["attempts"]),
            (&json!("failed"), &json!(1)),
            "a redirect is a refusal, not retried: {uploads:?}"
        );
        let error = u["error"].as_str().unwrap_or("");
        assert!(
            error.contains(status) && error.contains(&format!("redirect to {host},")),
            "{error}"
        );
        assert!(
            !error.contains("s3cr3t") && !error.contains("/new") && !error.contains("put-here"),
            "the host alone: {error}"
        );
    }
    assert_eq!(moved.requests().len(), 1);
    assert_eq!(temporary.requests().len(), 1);
    assert_eq!(elsewhere.connections(), 0, "no redirect was followed");
}

#[test]
fn ftp_and_http_destinations_on_private_addresses_are_refused_without_a_connection() {
    // upload.allow_private is false by default.
    let (env, uid) = setup(&[("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50")]);
    let api = env.client();
    let http_canary = Receiver::start(&[200]);
    let ftp_canary = Receiver::start(&[200]);
    let (token, _) = render(
        &api,
        &uid,
        "Private",
        json!([
            { "extension": "mp4", "destination": {
                "type": "http", "url": format!("{}/in", http_canary.url), "filename": "jo.mp4" } },
            { "extension": "mp4", "destination": {
                "type": "ftp", "host": format!("127.0.0.1:{}", ftp_canary.port()),
                "filename": "jo.mp4", "user": "u", "password": "p", "passive": true } },
            { "extension": "mp4", "destination": {
                "type": "ftp", "host": format!("localhost:{}", ftp_canary.port()),
                "filename": "jo.mp4" } },
        ]),
    );
    let uploads = api.wait_uploads(&token, UPLOAD_SECS);
    for (u, kind) in uploads.iter().zip(["http", "ftp", "ftp"]) {
        assert_eq!(
            (&u["type"], &u["state"], &u["attempts"]),
            (&json!(kind), &json!("failed"), &json!(1)),
            "{uploads:?}"
        );
        let error = u["error"].as_str().unwrap_or("");
        assert!(
            error.contains("private") && error.contains("refused"),
            "{error}"
        );
    }
    assert_eq!(http_canary.connections(), 0, "the http canary was reached");
    assert_eq!(ftp_canary.connections(), 0, "the ftp canary was reached");
    video(&api, &token);
}
