//! Issue 21, CONTRACT section 13: `parallel: N` in a cluster spreads one
//! render's segments over up to N nodes. The node that renders asks the
//! others for runs of segments, which they render into the segment store
//! every node shares (S3); the video is the same, byte for byte, as one
//! rendered by one node, and a node that dies mid-run costs time, never
//! the video.

use std::time::{Duration, Instant};

use clipstream_tests::cluster::Cluster;
use clipstream_tests::{json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

/// Every node: one render at a time (so a node busy with the render
/// takes none of its runs, and the others take them), one segment worker
/// of its own (the other runs are the cluster's), leases that run out
/// soon after a node dies.
const SETTINGS: &[(&str, &str)] = &[
    ("CLIPSTREAM_RENDER_WORKERS", "1"),
    ("CLIPSTREAM_SEGMENTS_MAX_PARALLEL", "1"),
    ("CLIPSTREAM_CLUSTER_LEASE_SECS", "3"),
    ("CLIPSTREAM_CLUSTER_HEARTBEAT_SECS", "1"),
];

/// A title over a colour, `length` seconds, at `resolution`.
fn movie(text: &str, length: f64, resolution: &str) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": text },
                           "start": 0, "length": length } ] } ] },
        "output": { "format": "mp4", "resolution": resolution }
    })
}

/// Stores `movie` in a new project and asks for a render of it with
/// `parallel`; returns the token.
fn token(api: &Api, movie: &Value, parallel: u32) -> String {
    let uid = api.create_project("parallel");
    let (status, body) = json(api.put(&format!("/v1/sdl/{uid}/m"), movie.to_string()));
    assert_eq!(status, 201, "{body}");
    let (status, body) = json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&json!({ "movie": "m", "params": {}, "parallel": parallel }))
            .send()
            .expect("POST render"),
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "{token}");
    r.bytes().expect("video").to_vec()
}

/// `movie` rendered by one node alone, one segment at a time.
fn alone(movie: &Value) -> Vec<u8> {
    let env = Env::with_settings(SETTINGS);
    let api = env.client();
    video(&api, &token(&api, movie, 1))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && blake3::hash(a) == blake3::hash(b)
}

fn runs(api: &Api, side: &str) -> u64 {
    api.metric(&format!("clipstream_segment_runs_total{{side=\"{side}\"}}"))
}

#[test]
fn parallel_three_spreads_a_render_over_three_nodes_and_makes_the_same_bytes() {
    let movie = movie("Spread over the cluster", 24.0, "preview");
    let reference = alone(&movie);
    let cluster = Cluster::start(3, SETTINGS);
    let api = cluster.node(0);
    let token = token(&api, &movie, 3);
    // A viewer of node 0: node 0 renders, the others help.
    let bytes = video(&api, &token);
    assert!(
        same(&bytes, &reference),
        "parallel over the cluster: {} bytes, alone: {}\n{}",
        bytes.len(),
        reference.len(),
        cluster.logs()
    );
    let served: Vec<u64> = (0..3).map(|i| runs(&cluster.node(i), "served")).collect();
    assert_eq!(served[0], 0, "node 0 took none of its own runs: {served:?}");
    assert!(
        served[1] + served[2] >= 1,
        "the other nodes rendered runs: {served:?}\n{}",
        cluster.logs()
    );
    assert!(
        runs(&api, "remote") >= 1,
        "node 0 used runs rendered elsewhere"
    );
    let rendering = (0..3)
        .filter(|&i| {
            cluster
                .node(i)
                .metric("clipstream_segments_total{outcome=\"rendered\"}")
                > 0
        })
        .count();
    assert!(
        rendering >= 2,
        "segments were rendered on {rendering} node(s)"
    );
}

#[test]
fn a_node_killed_mid_run_still_gives_the_whole_video() {
    // Long enough, and large enough, that a run takes a while.
    let movie = movie("A node dies", 30.0, "hd");
    let reference = alone(&movie);
    let mut cluster = Cluster::start(3, SETTINGS);
    let api = cluster.node(0);
    let token = token(&api, &movie, 3);
    let viewer = {
        let (api, token) = (cluster.node(0), token.clone());
        std::thread::spawn(move || video(&api, &token))
    };
    // The first helper seen with a run under way (taken, not served) dies.
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed = 'found: loop {
        for i in 1..3 {
            let node = cluster.node(i);
            if runs(&node, "taken") > runs(&node, "served") {
                break 'found i;
            }
        }
        assert!(
            !viewer.is_finished(),
            "the render ended before a helper took a run\n{}",
            cluster.logs()
        );
        assert!(
            Instant::now() < deadline,
            "no helper took a run\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    cluster.kill(killed);
    let bytes = viewer.join().expect("the viewer's request");
    assert!(
        same(&bytes, &reference),
        "with node {killed} killed mid-run: {} bytes, alone: {}\n{}",
        bytes.len(),
        reference.len(),
        cluster.logs()
    );
}
