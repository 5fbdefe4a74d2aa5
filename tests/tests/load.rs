//! Load (issue 5, item 6), bounded in count and time, on loopback only:
//! 500 concurrent viewers of a cached render, 100 viewers joining one cold
//! render (exactly one render runs), and 32 distinct cold renders queued
//! on 2 render workers (all complete, none fail). Each test prints its
//! figures (`LOAD ...` lines on stderr; RELIABILITY.md records them).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clipstream_tests::{Api, Env};
use serde_json::{json, Value};

fn movie(length: f64) -> Value {
    json!({
        "timeline": { "background": "#335577", "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "Hi {{NAME}}" }, "start": 0, "length": length } ] } ] },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

/// Latency percentile `p` (0–100) of sorted `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let i = ((samples.len() as f64 - 1.0) * p / 100.0).round() as usize;
    samples[i]
}

/// Runs `viewers` GETs of `path` at once (released together by a barrier);
/// returns each one's latency and body length, and the wall time.
fn crowd(api: &Api, viewers: usize, path: &str) -> (Vec<Duration>, Vec<usize>, Duration) {
    let barrier = Arc::new(Barrier::new(viewers + 1));
    let handles: Vec<_> = (0..viewers)
        .map(|_| {
            let api = api.anonymous();
            let path = path.to_owned();
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let r = api.get(&path);
                    assert_eq!(r.status(), 200);
                    let len = r.bytes().expect("body").len();
                    (started.elapsed(), len)
                })
                .expect("thread")
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let results: Vec<(Duration, usize)> = handles
        .into_iter()
        .map(|h| h.join().expect("viewer"))
        .collect();
    let wall = started.elapsed();
    let (mut latencies, lens): (Vec<Duration>, Vec<usize>) = results.into_iter().unzip();
    latencies.sort();
    (latencies, lens, wall)
}

fn metric(api: &Api, line_start: &str) -> String {
    let text = api.anonymous().get("/metrics").text().unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .to_owned()
}

/// The finished renders' counter once `n` have finished, or as it stands
/// after 30 s: a render's last byte is out, and its status `done`, a
/// moment before its job lets go and is counted.
fn finished(api: &Api, n: usize) -> String {
    let want = format!("clipstream_renders_finished_total{{outcome=\"done\"}} {n}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = api.anonymous().get("/metrics").text().unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("clipstream_renders_finished_total"))
            .unwrap_or("")
            .to_owned();
        if line == want || std::time::Instant::now() >= deadline {
            return line;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn five_hundred_concurrent_viewers_of_a_cached_render() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("load");
    let token = api.render_token(&uid, "m", &movie(5.0), json!({ "NAME": "cached" }));
    let path = format!("/render/{token}.mp4");
    let whole = api.anonymous().get(&path).bytes().unwrap().len();
    assert!(whole > 10_000);
    let (latencies, lens, wall) = crowd(&api, 500, &path);
    assert!(
        lens.iter().all(|&l| l == whole),
        "every viewer got it whole"
    );
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let (_, peak_kib) = env.server().memory_kib();
    eprintln!(
        "LOAD cached: 500 viewers × {whole} B in {:.2} s = {:.0} req/s, {:.1} MB/s; p50 {:.1} ms, p99 {:.1} ms; server peak RSS {} MiB",
        wall.as_secs_f64(),
        500.0 / wall.as_secs_f64(),
        (500 * whole) as f64 / wall.as_secs_f64() / 1e6,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        peak_kib / 1024
    );
    assert!(p99 < Duration::from_secs(20), "p99 {p99:?}");
}

#[test]
fn a_hundred_viewers_joining_one_cold_render_share_exactly_one_render() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("load");
    let token = api.render_token(&uid, "m", &movie(6.0), json!({ "NAME": "cold" }));
    let path = format!("/render/{token}.mp4");
    let (latencies, lens, wall) = crowd(&api, 100, &path);
    let whole = api.anonymous().get(&path).bytes().unwrap().len();
    assert!(
        lens.iter().all(|&l| l == whole),
        "every viewer got the whole render"
    );
    assert_eq!(
        metric(&api, "clipstream_cache_misses_total"),
        "clipstream_cache_misses_total 1",
        "exactly one render"
    );
    assert_eq!(
        finished(&api, 1),
        "clipstream_renders_finished_total{outcome=\"done\"} 1"
    );
    let (_, peak_kib) = env.server().memory_kib();
    eprintln!(
        "LOAD cold-join: 100 viewers of one 6 s render, all done in {:.2} s; p50 {:.2} s, p99 {:.2} s; 1 render; server peak RSS {} MiB",
        wall.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64(),
        percentile(&latencies, 99.0).as_secs_f64(),
        peak_kib / 1024
    );
}

#[test]
fn thirty_two_distinct_cold_renders_on_two_workers_all_complete() {
    let env = Env::with_settings(&[
        ("CLIPSTREAM_RENDER_WORKERS", "2"),
        ("CLIPSTREAM_RENDER_MAX_QUEUED", "64"),
    ]);
    let api = env.client();
    let uid = api.create_project("load");
    let tokens: Vec<String> = (0..32)
        .map(|i| {
            api.render_token(
                &uid,
                "m",
                &movie(3.0),
                json!({ "NAME": format!("viewer {i}") }),
            )
        })
        .collect();
    let barrier = Arc::new(Barrier::new(tokens.len() + 1));
    let handles: Vec<_> = tokens
        .iter()
        .map(|t| {
            let api = api.anonymous();
            let path = format!("/render/{t}.mp4");
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let r = api.get(&path);
                assert_eq!(r.status(), 200, "{path}");
                let len = r.bytes().unwrap().len();
                (started.elapsed(), len)
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .map(|h| {
            let (latency, len) = h.join().expect("render");
            assert!(len > 10_000);
            latency
        })
        .collect();
    let wall = started.elapsed();
    latencies.sort();
    // The last byte of a render is out a moment before it is in the cache
    // ("saving"), so each is polled to `done` rather than read once.
    for t in &tokens {
        api.anonymous().wait_done(t, "mp4", 30);
    }
    assert_eq!(
        finished(&api, 32),
        "clipstream_renders_finished_total{outcome=\"done\"} 32"
    );
    let (_, peak_kib) = env.server().memory_kib();
    eprintln!(
        "LOAD queued: 32 distinct 3 s renders on 2 workers in {:.1} s = {:.2} renders/s; latency p50 {:.1} s, p99 {:.1} s; 0 failed; server peak RSS {} MiB",
        wall.as_secs_f64(),
        32.0 / wall.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64(),
        percentile(&latencies, 99.0).as_secs_f64(),
        peak_kib / 1024
    );
    assert!(peak_kib < 1024 * 1024, "peak RSS {peak_kib} KiB");
}

/// Resident memory (KiB) of a server a second after its one 4 s 720p
/// render settled, and again `later` after that, with
/// `render.memory_idle_secs` at `idle_secs`.
fn memory_after_a_render(idle_secs: &str, later: Duration) -> (u64, u64) {
    let env = Env::with_settings(&[("CLIPSTREAM_RENDER_MEMORY_IDLE_SECS", idle_secs)]);
    let api = env.client();
    let uid = api.create_project("load");
    let mut hd = movie(4.0);
    hd["output"]["resolution"] = json!("hd");
    let token = api.render_token(&uid, "m", &hd, json!({ "NAME": "idle" }));
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert!(r.bytes().unwrap().len() > 10_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) =
            clipstream_tests::json(api.anonymous().get(&format!("/v2/render/{token}/status")));
        if status["state"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "the render never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (settled, _) = env.server().memory_kib();
    std::thread::sleep(later);
    let (after, _) = env.server().memory_kib();
    (settled, after)
}

#[test]
fn memory_renders_freed_goes_back_to_the_system_once_the_server_is_idle() {
    // What a render freed is kept for the next one, and given back once
    // the server has been idle for render.memory_idle_secs.
    let wait = Duration::from_secs(5);
    let (kept, still_kept) = memory_after_a_render("3600", wait);
    let (settled, given_back) = memory_after_a_render("3", wait);
    let kept_drop = kept.saturating_sub(still_kept);
    let idle_drop = settled.saturating_sub(given_back);
    eprintln!(
        "LOAD idle: RSS after a 4 s 720p render {} MiB, {} MiB given back once idle; without the idle trim {} MiB, {} MiB given back",
        settled / 1024,
        idle_drop / 1024,
        kept / 1024,
        kept_drop / 1024
    );
    assert!(
        idle_drop >= kept_drop + 8 * 1024,
        "idle for 3 s: {settled} → {given_back} KiB; never idle long enough: {kept} → {still_kept} KiB"
    );
}
