//! A failure anywhere in a render's actor tree reaches its viewers and
//! nobody else (issue 15, item 3): with the debug build's fault hook armed
//! (`CLIPSTREAM_INJECT_FAULTS=1`), a title `inject-fault:<stage>` makes the
//! render fail in the fetcher, the compositor, the muxer or the
//! supervisor's handler. Its viewer gets a JSON error or a cut stream
//! within 5 s, its status is `failed`, nothing of it is cached, and a
//! render running beside it finishes. Without the variable the same title
//! is only a title.

use std::io::Read;
use std::time::{Duration, Instant};

use clipstream_tests::{files_under, json, Api, Env};
use serde_json::{json, Value};

fn title_movie(text: &str, seconds: u32) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": text }, "start": 0, "length": seconds } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

/// How a GET of a render ended.
#[derive(Debug)]
enum Seen {
    /// A JSON error with this status and code.
    Error(u16, String),
    /// 200, then the stream broke off after this many bytes.
    Cut(usize),
    /// 200 and the whole body.
    Whole(Vec<u8>),
}

fn watch(api: &Api, path: &str) -> Seen {
    let mut response = api.anonymous().get(path);
    let status = response.status().as_u16();
    if status != 200 {
        let (_, body) = json(response);
        return Seen::Error(status, body["code"].as_str().unwrap_or("").to_owned());
    }
    let mut body = Vec::new();
    match response.read_to_end(&mut body) {
        Ok(_) => Seen::Whole(body),
        Err(_) => Seen::Cut(body.len()),
    }
}

fn status_of(api: &Api, token: &str) -> Value {
    json(api.anonymous().get(&format!("/v2/render/{token}/status"))).1
}

#[test]
fn an_injected_fault_at_each_stage_fails_only_its_render() {
    let env = Env::with_settings(&[("CLIPSTREAM_INJECT_FAULTS", "1")]);
    let api = env.client();
    let uid = api.create_project("faults");
    for (n, stage) in ["fetcher", "compositor", "muxer", "supervisor"]
        .into_iter()
        .enumerate()
    {
        let faulty = api.render_token(
            &uid,
            &format!("fault-{stage}"),
            &title_movie(&format!("inject-fault:{stage}"), 4),
            json!({}),
        );
        let healthy = api.render_token(
            &uid,
            &format!("beside-{stage}"),
            &title_movie(&format!("beside the {stage}"), 3),
            json!({}),
        );
        let beside = std::thread::spawn({
            let (base, path) = (env.server().url.clone(), format!("/render/{healthy}.mp4"));
            move || watch(&Api::new(&base, None), &path)
        });
        let started = Instant::now();
        let seen = watch(&api, &format!("/render/{faulty}.mp4"));
        let elapsed = started.elapsed();
        eprintln!("{stage}: {seen:?} in {} ms", elapsed.as_millis());
        match &seen {
            Seen::Error(500, code) if code == "render_failed" => {}
            // A 200 is answered once there are bytes to send; its body is
            // then cut wherever the failure finds the reader (before its
            // first byte, when the muxer fails right after the init
            // segment).
            Seen::Cut(bytes) => eprintln!("{stage}: the body was cut after {bytes} bytes"),
            other => panic!("{stage}: {other:?}"),
        }
        assert!(
            elapsed < Duration::from_secs(5),
            "{stage}: the viewer waited {elapsed:?}"
        );
        let status = status_of(&api, &faulty);
        assert_eq!(status["state"], "failed", "{stage}: {status}");
        assert_eq!(
            status["error"]["code"], "render_failed",
            "{stage}: {status}"
        );
        assert!(
            status["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{stage}: {status}"
        );
        match beside.join().expect("the viewer beside") {
            Seen::Whole(body) => assert!(body.len() > 1000, "{stage}: {} bytes", body.len()),
            other => panic!("{stage}: the render beside it: {other:?}"),
        }
        api.wait_done(&healthy, "mp4", 10);
        assert_eq!(
            files_under(&env.data_dir().join("renders")).len(),
            n + 1,
            "{stage}: only the renders beside are cached"
        );
    }
}

#[test]
fn without_the_variable_the_hook_is_only_a_title() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("no-faults");
    let token = api.render_token(&uid, "m", &title_movie("inject-fault:muxer", 1), json!({}));
    match watch(&api, &format!("/render/{token}.mp4")) {
        Seen::Whole(body) => assert!(body.len() > 1000, "{} bytes", body.len()),
        other => panic!("{other:?}"),
    }
    api.wait_done(&token, "mp4", 10);
}
