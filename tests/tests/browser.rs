//! A real browser plays a token's URL (CONTRACT section 5): headless
//! Chromium opens a page with `<video src=".../render/<token>.mp4">` (or
//! `.webm`), and the page reports what the player saw to a listener of
//! this test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clipstream_tests::{json, Env};
use reqwest::Method;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the browser gets to load and play the whole video.
const PLAY_TIMEOUT: Duration = Duration::from_secs(60);

fn setup_token(env: &Env) -> String {
    let api = env.client();
    let uid = api.create_project("browser");
    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "Hello {{NAME}}" }, "start": 0, "length": 4,
              "transition": { "in": "fade" } } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    });
    assert_eq!(
        api.put(&format!("/v1/sdl/{uid}/hello"), movie.to_string())
            .status(),
        201
    );
    let r = api
        .request(Method::POST, &format!("/v2/render/{uid}"))
        .json(&json!({ "movie": "hello", "params": { "NAME": "browser" } }))
        .send()
        .unwrap();
    let (status, body) = json(r);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// Waits for the page's report: the query string of one GET.
fn wait_for_report(listener: &TcpListener) -> String {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + PLAY_TIMEOUT;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                let mut line = String::new();
                BufReader::new(stream.try_clone().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                if let Some(query) = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.split_once('?'))
                {
                    return query.1.to_owned();
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("the page reported nothing within {PLAY_TIMEOUT:?}");
}

/// Plays `/render/<token>.<ext>` in headless Chromium, cold (the page
/// is the render's first viewer), and checks it played to its end.
fn chromium_plays(ext: &str) {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium"
    );
    let env = Env::new();
    let token = setup_token(&env);
    let video_url = env
        .client()
        .anonymous()
        .url(&format!("/render/{token}.{ext}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let report_url = format!("http://{}/report", listener.local_addr().unwrap());
    let page = env.dir.path().join("page.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html>
<video id="v" muted autoplay playsinline src="{video_url}"></video>
<script>
const v = document.getElementById("v");
let sent = false;
function report(kind) {{
  if (sent) return;
  sent = true;
  const q = new URLSearchParams({{ kind, duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                                   time: v.currentTime, error: v.error ? v.error.code + " " + v.error.message : "" }});
  new Image().src = "{report_url}?" + q;
}}
v.addEventListener("ended", () => report("ended"));
v.addEventListener("error", () => report("error"));
setTimeout(() => report("timeout"), 45000);
</script>"#
        ),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let report = wait_for_report(&listener);
    let _ = browser.kill();
    let _ = browser.wait();
    let field = |name: &str| {
        report
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        field("kind"),
        "ended",
        "the video played to its end: {report}"
    );
    assert_eq!(
        (field("width").as_str(), field("height").as_str()),
        ("640", "360"),
        "{report}"
    );
    let duration: f64 = field("duration").parse().unwrap_or(0.0);
    assert!(
        (duration - 4.0).abs() < 0.2,
        "duration {duration}: {report}"
    );
    let time: f64 = field("time").parse().unwrap_or(0.0);
    assert!(time > 3.5, "currentTime advanced to the end: {report}");
}

#[test]
fn chromium_plays_a_token_url() {
    chromium_plays("mp4");
}

#[test]
fn chromium_plays_a_webm_token_url_while_it_renders() {
    chromium_plays("webm");
}
