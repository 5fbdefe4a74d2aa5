//! Issue 21, CONTRACT section 13: several `clipstream serve` on one
//! PostgreSQL repository. Any node answers any request; one render per
//! video in the whole cluster, its viewers on other nodes served from the
//! node that renders it; background jobs are taken by whichever node is
//! free and taken over from a node that dies; `routingkey` keeps a job on
//! the nodes that serve it. Every cluster here is real: PostgreSQL, a
//! SeaweedFS bucket, nginx in front with the deployment example's rules
//! (`tests/src/cluster.rs`).

use std::time::{Duration, Instant};

use clipstream_tests::cluster::Cluster;
use clipstream_tests::media::{ffmpeg, upload};
use clipstream_tests::peers::receiver::Receiver;
use clipstream_tests::{json, Api};
use reqwest::Method;
use serde_json::{json, Value};

/// A title over a colour, `length` seconds, at the preview size.
fn movie(text: &str, length: f64) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": text },
                           "start": 0, "length": length } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

/// Short leases, so that a killed node's work moves on within seconds.
const FAST_LEASES: &[(&str, &str)] = &[
    ("CLIPSTREAM_CLUSTER_LEASE_SECS", "3"),
    ("CLIPSTREAM_CLUSTER_HEARTBEAT_SECS", "1"),
];

fn renders_started(cluster: &Cluster) -> u64 {
    ["viewer", "prerender", "resumed"]
        .iter()
        .map(|r| {
            cluster.metric_sum(&format!(
                "clipstream_renders_started_total{{reason=\"{r}\"}}"
            ))
        })
        .sum()
}

fn started_on(cluster: &Cluster, i: usize, reason: &str) -> u64 {
    cluster.node(i).metric(&format!(
        "clipstream_renders_started_total{{reason=\"{reason}\"}}"
    ))
}

fn running(cluster: &Cluster) -> Vec<usize> {
    (0..cluster.len())
        .filter(|&i| cluster.is_running(i))
        .collect()
}

fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    let status = r.status();
    let bytes = r.bytes().unwrap().to_vec();
    assert_eq!(status, 200, "{token}: {}", String::from_utf8_lossy(&bytes));
    bytes
}

fn decodes(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.mp4");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn post_render(api: &Api, uid: &str, body: Value) -> (u16, Value) {
    json(
        api.request(Method::POST, &format!("/v2/render/{uid}"))
            .json(&body)
            .send()
            .unwrap(),
    )
}

#[test]
fn a_project_made_through_one_node_is_used_at_once_through_another() {
    let cluster = Cluster::start(3, &[]);
    let uid = cluster.node(0).create_project("shared");
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=160x90",
            "-frames:v",
            "1",
        ],
        &logo,
    );
    upload(&cluster.node(0), &uid, "logo.png", &logo);
    let mut with_logo = movie("Hello", 1.0);
    with_logo["timeline"]["tracks"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({ "clips": [ { "asset": { "type": "image", "src": "logo.png" },
                                    "start": 0, "length": 1.0 } ] }),
        );
    let token = cluster
        .node(0)
        .render_token(&uid, "hello", &with_logo, json!({}));
    // Node 3 reads the movie, the asset's bytes and renders at once.
    let (status, body) = json(cluster.node(2).get(&format!("/v1/sdl/{uid}/hello")));
    assert_eq!(status, 200, "{body}");
    let r = cluster.node(2).get(&format!("/v1/data/{uid}/logo.png"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().to_vec(), std::fs::read(&logo).unwrap());
    let before = video(&cluster.node(2), &token);
    decodes(&before);
    // Node 1 serves the same bytes from the bucket, and remembers which
    // output the token has; a change made through node 3 shows on node
    // 1's next GET all the same.
    assert_eq!(video(&cluster.node(0), &token), before);
    assert_eq!(renders_started(&cluster), 1);
    with_logo["timeline"]["tracks"][0]["clips"][0]["asset"]["text"] = json!("Changed");
    let (status, _) = json(
        cluster
            .node(2)
            .put(&format!("/v1/sdl/{uid}/hello"), with_logo.to_string()),
    );
    assert!(status == 200 || status == 201, "{status}");
    let after = video(&cluster.node(2), &token);
    assert!(after != before, "the change shows on node 3");
    let deadline = Instant::now() + Duration::from_secs(10);
    while video(&cluster.node(0), &token) != after {
        assert!(Instant::now() < deadline, "node 1 never served the change");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sixty_viewers_over_three_nodes_share_one_render() {
    let cluster = Cluster::start(3, &[]);
    let uid = cluster.lb().create_project("crowd");
    let token = cluster
        .lb()
        .render_token(&uid, "crowd", &movie("Crowd", 6.0), json!({}));
    // Twenty on each node, as a load balancer without affinity would
    // spread them, and a few more through nginx.
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..66)
            .map(|i| {
                let api = if i < 60 {
                    cluster.node(i % 3)
                } else {
                    cluster.lb()
                };
                let token = token.clone();
                s.spawn(move || video(&api, &token))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        renders_started(&cluster),
        1,
        "one render in the whole cluster"
    );
    assert!(bodies.iter().all(|b| *b == bodies[0]), "identical bodies");
    decodes(&bodies[0]);
    // Later viewers of every node get the cached bytes, with Range.
    for i in 0..3 {
        let r = cluster
            .node(i)
            .anonymous()
            .request(Method::GET, &format!("/render/{token}.mp4"))
            .header("range", "bytes=100-199")
            .send()
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().unwrap().to_vec(), bodies[0][100..200].to_vec());
    }
    assert_eq!(renders_started(&cluster), 1);
}

#[test]
fn background_jobs_are_shared_by_the_nodes_and_each_runs_once() {
    let cluster = Cluster::start(3, &[("CLIPSTREAM_RENDER_WORKERS", "1")]);
    let api = cluster.lb();
    let uid = api.create_project("jobs");
    let (status, body) = json(api.put(
        &format!("/v1/sdl/{uid}/job"),
        movie("{{N}}", 1.0).to_string(),
    ));
    assert_eq!(status, 201, "{body}");
    let tokens: Vec<String> = (0..20)
        .map(|n| {
            let (status, body) = post_render(
                &api,
                &uid,
                json!({ "movie": "job", "params": { "N": format!("Job {n}") }, "prerender": true }),
            );
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().unwrap().to_owned()
        })
        .collect();
    for token in &tokens {
        cluster.node(1).wait_done(token, "mp4", 120);
    }
    let per_node: Vec<u64> = running(&cluster)
        .into_iter()
        .map(|i| started_on(&cluster, i, "prerender"))
        .collect();
    assert_eq!(
        per_node.iter().sum::<u64>(),
        20,
        "each job ran once: {per_node:?}"
    );
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "the jobs were shared: {per_node:?}"
    );
}

#[test]
fn a_routing_key_keeps_a_job_on_its_nodes() {
    let cluster = Cluster::start_nodes(
        &[
            &[],
            &[("CLIPSTREAM_CLUSTER_ROUTING_KEYS", "[\"gpu\"]")],
            &[],
        ],
        clipstream_tests::cluster::Blobs::S3,
        &[],
    );
    let api = cluster.node(0);
    let uid = api.create_project("routed");
    let (status, _) = json(api.put(&format!("/v1/sdl/{uid}/r"), movie("{{N}}", 1.0).to_string()));
    assert_eq!(status, 201);
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "r", "params": { "N": "x" }, "routingkey": "nope" }),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["param"], "routingkey", "{body}");
    assert!(body["message"].as_str().unwrap().contains("gpu"), "{body}");
    for n in 0..4 {
        let (status, body) = post_render(
            &api,
            &uid,
            json!({ "movie": "r", "params": { "N": format!("{n}") },
                    "routingkey": "gpu", "prerender": true }),
        );
        assert_eq!(status, 200, "{body}");
        api.wait_done(body["token"].as_str().unwrap(), "mp4", 60);
    }
    // A viewer of a routed token on another node is served by node 2.
    let (_, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "r", "params": { "N": "viewer" }, "routingkey": "gpu" }),
    );
    decodes(&video(&cluster.node(2), body["token"].as_str().unwrap()));
    let started =
        |i: usize| started_on(&cluster, i, "viewer") + started_on(&cluster, i, "prerender");
    assert_eq!((started(0), started(1), started(2)), (0, 5, 0));
}

#[test]
fn a_node_killed_mid_render_loses_its_job_to_another() {
    let mut cluster = Cluster::start(
        2,
        &[&[("CLIPSTREAM_RENDER_WORKERS", "1")], FAST_LEASES].concat(),
    );
    let api = cluster.node(1);
    let uid = api.create_project("takeover");
    let (status, _) = json(api.put(
        &format!("/v1/sdl/{uid}/long"),
        movie("{{N}}", 60.0).to_string(),
    ));
    assert_eq!(status, 201);
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "long", "params": { "N": "survivor" }, "prerender": true }),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    // Killed once its render is a good way in, so that it stored segments.
    let deadline = Instant::now() + Duration::from_secs(60);
    let owner = loop {
        let owner = running(&cluster)
            .into_iter()
            .find(|&i| started_on(&cluster, i, "prerender") > 0);
        if let Some(owner) = owner {
            break owner;
        }
        assert!(Instant::now() < deadline, "nobody took the job");
        std::thread::sleep(Duration::from_millis(20));
    };
    loop {
        let (_, status) = json(api.get(&format!("/v2/render/{token}/status")));
        assert_ne!(
            status["state"], "done",
            "the render was over before the kill"
        );
        // A percentage.
        if status["progress"].as_f64().unwrap_or(0.0) >= 20.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got going: {status}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    cluster.kill(owner);
    let other = 1 - owner;
    cluster.node(other).wait_done(&token, "mp4", 180);
    assert_eq!(
        started_on(&cluster, other, "prerender"),
        1,
        "the survivor took the job over\n{}",
        cluster.logs()
    );
    assert!(
        cluster
            .node(other)
            .metric("clipstream_segments_total{outcome=\"reused\"}")
            > 0,
        "it went on from the segments the dead node stored"
    );
    let whole = video(&cluster.lb(), &token);
    decodes(&whole);
    assert_eq!(video(&cluster.node(other), &token), whole);
}

#[test]
fn an_upload_is_sent_by_one_node_and_taken_over_when_that_node_dies() {
    // The first delivery hangs (the destination took the connection and
    // never answers), the next succeeds.
    let receiver = Receiver::start(&[0, 200]);
    let mut cluster = Cluster::start(2, FAST_LEASES);
    let api = cluster.node(0);
    let uid = api.create_project("deliveries");
    let (status, _) = json(api.put(&format!("/v1/sdl/{uid}/m"), movie("Sent", 1.0).to_string()));
    assert_eq!(status, 201);
    let body = api.render_with_upload(
        &uid,
        "m",
        json!({}),
        json!({ "extension": "mp4", "destination": {
            "type": "http", "url": format!("{}/in/video.mp4", receiver.url),
            "filename": "video.mp4", "method": "PUT" } }),
    );
    let token = body["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.connections() < 1 {
        assert!(
            Instant::now() < deadline,
            "the upload never began\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Node 2 starting again finds the upload unfinished in the shared
    // repository, but node 1 holds it: it is left alone.
    cluster.restart(1);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(receiver.connections(), 1, "a live node's upload ran twice");
    // Node 1 dies mid-upload: node 2 takes the upload over.
    cluster.kill(0);
    let uploads = cluster.node(1).wait_uploads(&token, 120);
    assert_eq!(
        (&uploads[0]["state"], &uploads[0]["status"]),
        (&json!("done"), &json!(200)),
        "{uploads:?}"
    );
    assert_eq!(receiver.connections(), 2);
}
