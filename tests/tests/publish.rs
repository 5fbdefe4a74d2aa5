//! Issue 21 item 5, CONTRACT section 13: `POST /v1/publish/{uid}/{cluster}`
//! to a peer installation (`[[cluster.peers]]`) copies the project — its
//! assets and dynamic movies — through the peer's own Project API, in a
//! background job that survives a restart; a later publish sends only
//! what changed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clipstream_tests::media::{ffmpeg, ffprobe};
use clipstream_tests::{assert_error, json, Api, Env, Key};
use reqwest::Method;
use serde_json::{json, Value};

/// A 1 s title over `image`, at the smallest resolution.
fn movie(image: &str) -> Value {
    json!({
        "timeline": { "background": "#000000", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Hi" }, "start": 0, "length": 1 } ] },
            { "clips": [ { "asset": { "type": "image", "src": image },
                           "start": 0, "length": 1, "fit": "none", "position": "topRight" } ] }
        ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

/// A 32×18 PNG of one colour.
fn png(dir: &std::path::Path, colour: &str) -> Vec<u8> {
    let path = dir.join(format!("{colour}.png"));
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:s=32x18"),
            "-frames:v",
            "1",
        ],
        &path,
    );
    std::fs::read(&path).unwrap()
}

/// `CLIPSTREAM_CLUSTER_PEERS`: one peer named `b` at `url`.
fn peers(url: &str, key: &str, secret: &str) -> String {
    format!(r#"[{{name="b", url="{url}", key="{key}", secret="{secret}"}}]"#)
}

/// Installation A, with peer `b` at `url`; retries come quickly and, with
/// `patient`, for minutes.
fn installation_a(url: &str, key: &Key, secret: &str, patient: bool) -> Env {
    let attempts = if patient { "100000" } else { "3" };
    Env::with_settings(&[
        ("CLIPSTREAM_CLUSTER_PEERS", &peers(url, &key.key, secret)),
        ("CLIPSTREAM_UPLOAD_RETRY_BACKOFF_MS", "50"),
        ("CLIPSTREAM_UPLOAD_MAX_BACKOFF_SECS", "1"),
        ("CLIPSTREAM_UPLOAD_MAX_ATTEMPTS", attempts),
    ])
}

/// Installation B, logging at `info` so that its log shows every asset
/// and movie stored.
fn installation_b() -> Env {
    Env::with_settings(&[("RUST_LOG", "info")])
}

/// The publication of project `uid` to `cluster`, as the project list shows it.
fn publication(api: &Api, uid: &str, cluster: &str) -> Value {
    let (status, body) = json(api.get("/v1/list/project"));
    assert_eq!(status, 200, "{body}");
    let project = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["uid"] == uid)
        .unwrap_or_else(|| panic!("no project {uid}: {body}"))
        .clone();
    project["published"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cluster"] == cluster)
        .unwrap_or_else(|| panic!("no publication to {cluster}: {project}"))
        .clone()
}

/// Polls the publication until `done(publication)` or `secs` pass.
fn wait_for(api: &Api, uid: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let p = publication(api, uid, "b");
        if done(&p) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "publication not as expected in {secs} s: {p}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_finished(api: &Api, uid: &str) -> Value {
    wait_for(api, uid, 60, |p| {
        matches!(p["state"].as_str(), Some("done" | "failed"))
    })
}

fn publish(api: &Api, uid: &str, cluster: &str) -> Value {
    let (status, body) = json(api.post(&format!("/v1/publish/{uid}/{cluster}")));
    assert_eq!(status, 200, "{body}");
    body
}

/// The uid of B's project named `name`.
fn uid_on(api: &Api, name: &str) -> String {
    let (status, body) = json(api.get("/v1/list/project"));
    assert_eq!(status, 200, "{body}");
    body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no project {name:?} on the peer: {body}"))["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn asset(api: &Api, uid: &str, name: &str) -> (u16, Vec<u8>) {
    let r = api.get(&format!("/v1/data/{uid}/{name}"));
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

/// How many times B's log says it stored something named `name`
/// (`what`: "asset stored", "dynamic movie stored").
fn stored(env: &Env, what: &str, name: &str) -> usize {
    let needle = format!(" name={name} ");
    plain(&env.server().log_text())
        .lines()
        .filter(|l| l.contains(what) && l.contains(&needle))
        .count()
}

/// `text` without its terminal colours (`ESC [ … m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A project with two images and a movie using one of them, on A.
fn project_on_a(api: &Api, dir: &std::path::Path) -> (String, Vec<u8>, Vec<u8>) {
    let uid = api.create_project("shop");
    let red = png(dir, "red");
    let green = png(dir, "green");
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/red.png"), red.clone())
            .status(),
        201
    );
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/logo.png"), green.clone())
            .status(),
        201
    );
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/m"), movie("red.png").to_string())
            .status(),
        201
    );
    (uid, red, green)
}

#[test]
fn a_project_is_copied_to_a_peer_and_later_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let b_env = installation_b();
    let b = b_env.client();
    let a_env = installation_a(&b_env.server().url, &b_env.key, &b_env.key.secret, false);
    let a = a_env.client();
    let (uid, red, green) = project_on_a(&a, dir.path());

    let answer = publish(&a, &uid, "b");
    let queued = &answer["published"][0];
    assert_eq!(queued["cluster"], "b");
    assert!(
        matches!(
            queued["state"].as_str(),
            Some("queued" | "running" | "done")
        ),
        "{answer}"
    );
    let done = wait_finished(&a, &uid);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"], 1.0, "{done}");

    // B holds the same project: same asset bytes, same movie text.
    let on_b = uid_on(&b, "shop");
    assert_eq!(done["peer_uid"], on_b.as_str());
    assert_eq!(asset(&b, &on_b, "red.png"), (200, red));
    assert_eq!(asset(&b, &on_b, "logo.png"), (200, green));
    let r = b.get(&format!("/v1/sdl/{on_b}/m"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), movie("red.png").to_string());

    // A render token made on B renders there.
    let (status, body) = json(
        b.request(Method::POST, &format!("/v2/render/{on_b}"))
            .json(&json!({ "movie": "m", "params": {} }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let r = b.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let video = dir.path().join("on_b.mp4");
    std::fs::write(&video, r.bytes().unwrap()).unwrap();
    let probe = ffprobe(&video);
    assert_eq!(probe["streams"][0]["codec_type"], "video", "{probe}");
    assert_eq!(
        (
            stored(&b_env, "asset stored", "red.png"),
            stored(&b_env, "asset stored", "logo.png"),
            stored(&b_env, "dynamic movie stored", "m"),
        ),
        (1, 1, 1)
    );

    // One asset changed, the other deleted: B gets exactly that.
    let blue = png(dir.path(), "blue");
    assert_eq!(
        a.put(&format!("/v1/data/{uid}/red.png"), blue.clone())
            .status(),
        201
    );
    assert_eq!(a.delete(&format!("/v1/data/{uid}/logo.png")).status(), 200);
    publish(&a, &uid, "b");
    let done = wait_finished(&a, &uid);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(asset(&b, &on_b, "red.png"), (200, blue));
    assert_eq!(asset(&b, &on_b, "logo.png").0, 404);
    assert_eq!(
        (
            stored(&b_env, "asset stored", "red.png"),
            stored(&b_env, "asset stored", "logo.png"),
            stored(&b_env, "dynamic movie stored", "m"),
        ),
        (2, 1, 1),
        "only the changed asset is sent"
    );

    // Nothing changed: nothing is sent.
    publish(&a, &uid, "b");
    assert_eq!(wait_finished(&a, &uid)["state"], "done");
    assert_eq!(stored(&b_env, "asset stored", "red.png"), 2);
    assert_eq!(stored(&b_env, "dynamic movie stored", "m"), 1);
    let (_, projects) = json(b.get("/v1/list/project"));
    assert_eq!(
        projects["projects"].as_array().unwrap().len(),
        1,
        "{projects}"
    );

    // A changed movie is sent again, alone; a deleted one is deleted.
    let changed = movie("red.png").to_string().replace("\"Hi\"", "\"Hello\"");
    assert_eq!(
        a.put(&format!("/v1/sdl/{uid}/m"), changed.clone()).status(),
        201
    );
    publish(&a, &uid, "b");
    assert_eq!(wait_finished(&a, &uid)["state"], "done");
    assert_eq!(b.get(&format!("/v1/sdl/{on_b}/m")).text().unwrap(), changed);
    assert_eq!(stored(&b_env, "dynamic movie stored", "m"), 2);
    assert_eq!(stored(&b_env, "asset stored", "red.png"), 2);
    assert_eq!(a.delete(&format!("/v1/sdl/{uid}/m")).status(), 200);
    publish(&a, &uid, "b");
    assert_eq!(wait_finished(&a, &uid)["state"], "done");
    assert_eq!(b.get(&format!("/v1/sdl/{on_b}/m")).status(), 404);
    assert_eq!(asset(&b, &on_b, "red.png").0, 200);
}

#[test]
fn publishing_here_only_records_and_an_unknown_cluster_names_the_known_ones() {
    // No peer answers there: publishing to the own cluster sends nothing.
    let key = Key {
        account: "a".into(),
        key: "k".into(),
        secret: "s".into(),
    };
    let env = installation_a("http://127.0.0.1:9", &key, "s", false);
    let api = env.client();
    let uid = api.create_project("p");
    let answer = publish(&api, &uid, "local");
    assert_eq!(answer["published"][0]["cluster"], "local");
    assert_eq!(answer["published"][0]["state"], "done");
    let error = assert_error(
        api.post(&format!("/v1/publish/{uid}/mars")),
        404,
        "cluster_not_found",
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("\"mars\"") && message.ends_with("known clusters: b, local"),
        "{message}"
    );
}

#[test]
fn a_wrong_peer_secret_fails_the_publication_clearly_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let b_env = installation_b();
    let secret = "not-the-secret-q7x";
    let a_env = installation_a(&b_env.server().url, &b_env.key, secret, false);
    let a = a_env.client();
    let (uid, _, _) = project_on_a(&a, dir.path());
    publish(&a, &uid, "b");
    let failed = wait_finished(&a, &uid);
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("401") && error.contains("secret"), "{error}");
    assert!(!error.contains(secret), "{error}");
    assert!(!a_env.server().log_text().contains(secret));
    // Refused at once: nothing reached B.
    let (_, projects) = json(b_env.client().get("/v1/list/project"));
    assert_eq!(projects["projects"], json!([]));
    let (_, listed) = json(a.get("/v1/list/project"));
    assert!(!listed.to_string().contains(secret));
}

/// Forwards connections from a loopback port to `to` once `open` is set;
/// until then the port refuses them (nothing listens). Stops on drop.
struct Gate {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Gate {
    fn closed() -> Gate {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Gate {
            port,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts forwarding to `to` (`http://host:port`).
    fn open(&self, to: &str) {
        let to = to.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = self.stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(&to).unwrap();
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn a_publish_cut_off_by_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let b_env = installation_b();
    let gate = Gate::closed();
    let mut a_env = installation_a(&gate.url(), &b_env.key, &b_env.key.secret, true);
    let a = a_env.client();
    let (uid, red, _) = project_on_a(&a, dir.path());
    publish(&a, &uid, "b");
    // The peer cannot be reached: the job retries, saying why.
    let waiting = wait_for(&a, &uid, 30, |p| p["error"].is_string());
    assert_eq!(waiting["state"], "running", "{waiting}");
    assert!(
        waiting["error"].as_str().unwrap().contains("peer \"b\""),
        "{waiting}"
    );

    // A dies mid-publish; the peer becomes reachable; A starts again and
    // finishes the publish on its own (the old process is gone).
    a_env.while_stopped(|_| gate.open(&b_env.server().url));
    let a = a_env.client();
    let done = wait_finished(&a, &uid);
    assert_eq!(done["state"], "done", "{done}");
    let b = b_env.client();
    let on_b = uid_on(&b, "shop");
    assert_eq!(asset(&b, &on_b, "red.png"), (200, red));
    assert_eq!(b.get(&format!("/v1/sdl/{on_b}/m")).status(), 200);
}
