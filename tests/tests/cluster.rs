//! Issue 21, CONTRACT section 13: several `clipstream serve` on one
//! PostgreSQL repository. Any node answers any request; one render per
//! video in the whole cluster, its viewers on other nodes served from the
//! node that renders it; background jobs are taken by whichever node is
//! free and taken over from a node that dies; `routingkey` keeps a job on
//! the nodes that serve it.

use std::time::{Duration, Instant};

use clipstream_tests::peers::postgres::Postgres;
use clipstream_tests::{create_key, json, Api, Key, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// Nodes on one throw-away PostgreSQL database, each with its own data
/// directory.
struct Nodes {
    _pg: Postgres,
    _dirs: tempfile::TempDir,
    env: Vec<(String, String)>,
    dirs: Vec<std::path::PathBuf>,
    nodes: Vec<Option<Server>>,
    key: Key,
}

impl Nodes {
    fn start(n: usize, extra: &[(&str, &str)]) -> Nodes {
        Self::start_each(&vec![extra; n])
    }

    /// One node per entry, with that entry's extra settings.
    fn start_each(extras: &[&[(&str, &str)]]) -> Nodes {
        let pg = Postgres::start();
        pg.create_database("clipstream");
        let dirs = tempfile::tempdir().unwrap();
        let env = vec![
            (
                "CLIPSTREAM_STORAGE_REPOSITORY".to_owned(),
                "postgres".to_owned(),
            ),
            (
                "CLIPSTREAM_STORAGE_POSTGRES_URL".to_owned(),
                pg.url_of("clipstream"),
            ),
            ("CLIPSTREAM_CLUSTER_LEASE_SECS".to_owned(), "3".to_owned()),
            (
                "CLIPSTREAM_CLUSTER_HEARTBEAT_SECS".to_owned(),
                "1".to_owned(),
            ),
        ];
        let mut nodes = Nodes {
            _pg: pg,
            dirs: Vec::new(),
            _dirs: dirs,
            env,
            nodes: Vec::new(),
            key: Key {
                account: String::new(),
                key: String::new(),
                secret: String::new(),
            },
        };
        for (i, extra) in extras.iter().enumerate() {
            let dir = nodes._dirs.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            nodes.dirs.push(dir);
            let server = nodes.launch(i, extra);
            nodes.nodes.push(Some(server));
        }
        // Keys are records of the shared repository: made through one
        // node, valid on all.
        nodes.key = create_key(&nodes.dirs[0], None);
        nodes
    }

    fn launch(&self, i: usize, extra: &[(&str, &str)]) -> Server {
        let id = format!("node{i}");
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("CLIPSTREAM_CLUSTER_NODE_ID", &id));
        env.extend_from_slice(extra);
        Server::start_with(&self.dirs[i], &env)
    }

    fn api(&self, i: usize) -> Api {
        let server = self.nodes[i].as_ref().expect("a live node");
        Api::new(&server.url, Some(&self.key))
    }

    fn kill(&mut self, i: usize) {
        if let Some(server) = self.nodes[i].take() {
            server.kill();
        }
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some())
    }

    /// A counter summed over the live nodes.
    fn metric_sum(&self, name: &str) -> u64 {
        self.live().map(|i| self.api(i).metric(name)).sum()
    }
}

/// A title over a colour, `length` seconds, at the preview size.
fn movie(text: &str, length: f64) -> Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": text },
                           "start": 0, "length": length } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

fn renders_started(nodes: &Nodes) -> u64 {
    ["viewer", "prerender", "resumed"]
        .iter()
        .map(|r| {
            nodes.metric_sum(&format!(
                "clipstream_renders_started_total{{reason=\"{r}\"}}"
            ))
        })
        .sum()
}

fn video(api: &Api, token: &str) -> Vec<u8> {
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "{token}");
    r.bytes().unwrap().to_vec()
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
    let nodes = Nodes::start(3, &[]);
    let uid = nodes.api(0).create_project("shared");
    let token = nodes
        .api(0)
        .render_token(&uid, "hello", &movie("Hello", 1.0), json!({}));
    let (status, body) = json(nodes.api(2).get(&format!("/v1/sdl/{uid}/hello")));
    assert_eq!(status, 200, "{body}");
    let before = video(&nodes.api(2), &token);
    decodes(&before);
    // Node 1 remembers which output the token has; a change made through
    // node 3 shows on node 1's next GET all the same.
    assert_eq!(video(&nodes.api(0), &token), before);
    let (status, _) = json(nodes.api(2).put(
        &format!("/v1/sdl/{uid}/hello"),
        movie("Changed", 1.0).to_string(),
    ));
    assert!(status == 200 || status == 201, "{status}");
    let after = video(&nodes.api(2), &token);
    assert_ne!(after, before);
    let deadline = Instant::now() + Duration::from_secs(10);
    while video(&nodes.api(0), &token) != after {
        assert!(Instant::now() < deadline, "node 1 never served the change");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sixty_viewers_over_three_nodes_share_one_render() {
    let nodes = Nodes::start(3, &[]);
    let uid = nodes.api(0).create_project("crowd");
    let token = nodes
        .api(0)
        .render_token(&uid, "crowd", &movie("Crowd", 3.0), json!({}));
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let api = nodes.api(i % 3);
                let token = token.clone();
                s.spawn(move || video(&api, &token))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        renders_started(&nodes),
        1,
        "one render in the whole cluster"
    );
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "60 identical bodies"
    );
    decodes(&bodies[0]);
}

#[test]
fn background_jobs_are_shared_by_the_nodes_and_each_runs_once() {
    let nodes = Nodes::start(3, &[("CLIPSTREAM_RENDER_WORKERS", "1")]);
    let api = nodes.api(0);
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
        nodes.api(1).wait_done(token, "mp4", 120);
    }
    let per_node: Vec<u64> = nodes
        .live()
        .map(|i| {
            nodes
                .api(i)
                .metric("clipstream_renders_started_total{reason=\"prerender\"}")
        })
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
    let nodes = Nodes::start_each(&[
        &[],
        &[("CLIPSTREAM_CLUSTER_ROUTING_KEYS", "[\"gpu\"]")],
        &[],
    ]);
    let api = nodes.api(0);
    let uid = api.create_project("routed");
    let (status, _) = json(api.put(&format!("/v1/sdl/{uid}/r"), movie("{{N}}", 1.0).to_string()));
    assert_eq!(status, 201);
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "r", "params": { "N": "x" }, "routingkey": "nope" }),
    );
    assert_eq!(status, 400, "{body}");
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
    decodes(&video(&nodes.api(2), body["token"].as_str().unwrap()));
    let started = |i: usize| {
        ["viewer", "prerender"]
            .iter()
            .map(|r| {
                nodes.api(i).metric(&format!(
                    "clipstream_renders_started_total{{reason=\"{r}\"}}"
                ))
            })
            .sum::<u64>()
    };
    assert_eq!((started(0), started(1), started(2)), (0, 5, 0));
}

#[test]
fn a_node_killed_mid_render_loses_its_job_to_another() {
    let mut nodes = Nodes::start(2, &[("CLIPSTREAM_RENDER_WORKERS", "1")]);
    let api = nodes.api(1);
    let uid = api.create_project("takeover");
    let (status, _) = json(api.put(
        &format!("/v1/sdl/{uid}/long"),
        movie("{{N}}", 60.0).to_string(),
    ));
    assert_eq!(status, 201);
    // Queued through node 2, taken by one of them; the other is killed
    // once it has begun if it is the one that took it.
    let (status, body) = post_render(
        &api,
        &uid,
        json!({ "movie": "long", "params": { "N": "survivor" }, "prerender": true }),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let owner = loop {
        let started: Vec<u64> = nodes
            .live()
            .map(|i| {
                nodes
                    .api(i)
                    .metric("clipstream_renders_started_total{reason=\"prerender\"}")
            })
            .collect();
        if let Some(i) = started.iter().position(|n| *n > 0) {
            break i;
        }
        assert!(Instant::now() < deadline, "nobody took the job");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    let (_, status) = json(nodes.api(owner).get(&format!("/v2/render/{token}/status")));
    assert_ne!(
        status["state"], "done",
        "the render was over before the kill: {status}"
    );
    nodes.kill(owner);
    let other = 1 - owner;
    nodes.api(other).wait_done(&token, "mp4", 180);
    assert_eq!(
        nodes
            .api(other)
            .metric("clipstream_renders_started_total{reason=\"prerender\"}"),
        1,
        "the survivor took the job over"
    );
    decodes(&video(&nodes.api(other), &token));
}
