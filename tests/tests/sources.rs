//! Fetcher safety end to end (issue 5, item 3): a URL source that stalls or
//! resets mid-body fails its render with a clean 502 after the configured
//! number of attempts, leaves nothing behind, and the server goes on
//! rendering. Only loopback servers of the test itself are contacted
//! (`fetch.allow_private` is on for them); refused address forms are
//! checked where they are classified (unit tests in `delivery::fetch`) and
//! end to end in `render.rs` against a canary that must see nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clipstream_tests::{assert_error, files_under, Env};
use serde_json::{json, Value};

/// A loopback source whose every connection is answered by `answer`, one
/// thread each; returns its base URL and a count of connections.
fn source(answer: fn(&mut TcpStream)) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                answer(&mut stream);
            });
        }
    });
    (url, hits)
}

/// Headers promising 100 kB, then 10 bytes, then silence.
fn stall(s: &mut TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n\x89PNG\r\n\x1a\n\0\0");
    std::thread::sleep(Duration::from_secs(20));
}

/// Headers promising 100 kB, then 10 bytes, then the connection dropped.
fn reset(s: &mut TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n\x89PNG\r\n\x1a\n\0\0");
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn image_movie(src: &str) -> Value {
    json!({
        "timeline": { "background": "#102030", "tracks": [ { "clips": [
            { "asset": { "type": "image", "src": src }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

#[test]
fn a_source_that_stalls_or_resets_mid_body_is_a_clean_502_after_bounded_retries() {
    let env = Env::with_settings(&[
        ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true"),
        ("CLIPSTREAM_FETCH_READ_TIMEOUT_SECS", "1"),
        ("CLIPSTREAM_FETCH_MAX_ATTEMPTS", "2"),
        ("CLIPSTREAM_FETCH_RETRY_BACKOFF_MS", "100"),
    ]);
    let api = env.client();
    let uid = api.create_project("sources");
    for (what, answer) in [("stall", stall as fn(&mut TcpStream)), ("reset", reset)] {
        let (url, hits) = source(answer);
        let token = api.render_token(
            &uid,
            what,
            &image_movie(&format!("{url}/picture.png")),
            json!({}),
        );
        let started = Instant::now();
        let body = assert_error(
            api.anonymous().get(&format!("/render/{token}.mp4")),
            502,
            "source_unavailable",
        );
        let elapsed = started.elapsed();
        let message = body["message"].as_str().unwrap();
        eprintln!(
            "source {what}: 502 in {} ms after {} connections: {message}",
            elapsed.as_millis(),
            hits.load(Ordering::SeqCst)
        );
        assert!(
            message.contains("gave up after 2 attempts"),
            "{what}: {message}"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            2,
            "{what}: two attempts, no more"
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{what}: failed in {elapsed:?}"
        );
        let (_, status) =
            clipstream_tests::json(api.anonymous().get(&format!("/v2/render/{token}/status")));
        assert_eq!(status["state"], "failed", "{what}");
    }
    // Nothing half-downloaded or half-rendered is left, and the server
    // still renders.
    assert!(files_under(&env.data_dir().join("renders")).is_empty());
    assert!(files_under(&env.data_dir().join("tmp")).is_empty());
    let ok = api.render_token(
        &uid,
        "plain",
        &json!({
            "timeline": { "background": "#102030", "tracks": [ { "clips": [
                { "asset": { "type": "title", "text": "ok" }, "start": 0, "length": 1 } ] } ] },
            "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
        }),
        json!({}),
    );
    assert_eq!(
        api.anonymous().get(&format!("/render/{ok}.mp4")).status(),
        200
    );
}
