//! The cluster scenario (issue 21): Clipstream nodes sharing one
//! PostgreSQL repository and one SeaweedFS bucket, as a cluster runs, each
//! node pinned to a core of its own (`taskset`) with one render worker, so
//! that a node stands for a one-core machine. PostgreSQL and SeaweedFS
//! run unpinned, and their CPU time is reported beside the nodes'.
//!
//! (a) Throughput: K distinct cold background renders (`"prerender":
//! true`, a NAME each) of the 10 s 720p template, submitted round robin
//! to the nodes (as the load balancer sends API requests), timed until
//! every one's `/status` says `done`: renders per minute of one node
//! against two.
//! (b) Latency: a 60 s 720p render asked for with `"parallel": 2` on two
//! nodes against `"parallel": 1`, from the GET of `/render/<token>.mp4`
//! to its last byte; each on a new template (a new copy of the background
//! clip), so no segment of it is cached anywhere.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clipstream_tests::peers::postgres::Postgres;
use clipstream_tests::peers::seaweedfs::{self, SeaweedFs};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::{self, Size, CLIP_SECS, P720};
use crate::personalised;
use crate::procfs;
use crate::servers::{movie_name, Owned, BINARY};
use crate::stats::Samples;
use crate::{runs, Result};

/// The bucket every node of every configuration shares (each
/// configuration under a prefix of its own).
const BUCKET: &str = "bench";
/// The size of both scenarios' renders.
const SIZE: Size = P720;
/// A render longer than this is a failure, not a measurement.
const RENDER_DEADLINE: Duration = Duration::from_secs(1800);
/// How often the pending renders' `/status` is asked (light next to a
/// render, fine next to the seconds measured).
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Targets of issue 21.
pub const THROUGHPUT_TARGET: f64 = 1.8;
pub const LATENCY_TARGET: f64 = 0.6;

/// The nodes' binary: the release build, or `CLIPSTREAM_BENCH_BIN` (to
/// try another branch's build without building it in release here).
fn binary() -> String {
    std::env::var("CLIPSTREAM_BENCH_BIN").unwrap_or_else(|_| BINARY.to_owned())
}

/// PostgreSQL and SeaweedFS, started once for the whole scenario.
struct Peers {
    postgres: Postgres,
    s3: SeaweedFs,
}

impl Peers {
    fn start() -> Result<Peers> {
        // The peers' own start panics with their log when they cannot
        // start: as an error here, so that the benchmark says so and
        // exits.
        let started = std::panic::catch_unwind(|| {
            let postgres = Postgres::start();
            // 64 volumes of 64 MiB: every run's renders and segments stay
            // in the bucket (about 7 MiB per 10 s render).
            let s3 = SeaweedFs::start_with_volumes(64);
            s3.create_bucket(BUCKET);
            Peers { postgres, s3 }
        });
        started.map_err(|e| {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("PostgreSQL or SeaweedFS did not start: {why}").into()
        })
    }

    /// CPU seconds used so far: PostgreSQL's (every backend), SeaweedFS's.
    fn cpu(&self) -> Result<(f64, f64)> {
        Ok((
            procfs::tree_cpu_seconds(self.postgres.pid())?,
            procfs::tree_cpu_seconds(self.s3.pid())?,
        ))
    }
}

/// One configuration of the cluster: its database, its prefix in the
/// bucket, the nodes' settings, and (once set up) a key and a project.
struct Site {
    name: &'static str,
    dir: PathBuf,
    env: Vec<(String, String)>,
    key: (String, String),
    project: String,
    client: Client,
    names: u64,
}

/// A running node, stopped (SIGTERM) when dropped.
struct Node {
    process: Owned,
    url: String,
}

impl Node {
    fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

impl Site {
    /// A new database `name` and prefix `name/`, and a key made on it
    /// before any node runs.
    fn new(peers: &Peers, work: &Path, name: &'static str) -> Result<Site> {
        let url = peers.postgres.create_database(name);
        let dir = std::path::absolute(work.join(format!("cluster-{name}")))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let env: Vec<(String, String)> = [
            ("CLIPSTREAM_STORAGE_REPOSITORY", "postgres".to_owned()),
            ("CLIPSTREAM_STORAGE_POSTGRES_URL", url),
            ("CLIPSTREAM_STORAGE_BLOBS", "s3".to_owned()),
            ("CLIPSTREAM_STORAGE_S3_ENDPOINT", peers.s3.endpoint()),
            ("CLIPSTREAM_STORAGE_S3_BUCKET", BUCKET.to_owned()),
            ("CLIPSTREAM_STORAGE_S3_REGION", "us-east-1".to_owned()),
            (
                "CLIPSTREAM_STORAGE_S3_ACCESS_KEY_ID",
                seaweedfs::ACCESS_KEY.to_owned(),
            ),
            (
                "CLIPSTREAM_STORAGE_S3_SECRET_ACCESS_KEY",
                seaweedfs::SECRET_KEY.to_owned(),
            ),
            ("CLIPSTREAM_STORAGE_S3_PREFIX", format!("{name}/")),
            // The nodes reach each other on loopback.
            ("CLIPSTREAM_FETCH_ALLOW_PRIVATE", "true".to_owned()),
            // A node is a one-core machine: one render at a time, one
            // segment worker. A request's `parallel: N` still asks N − 1
            // other nodes for runs of segments: only the local workers are
            // capped.
            ("CLIPSTREAM_RENDER_WORKERS", "1".to_owned()),
            ("CLIPSTREAM_SEGMENTS_MAX_PARALLEL", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let out = Command::new(binary())
            .args(["keys", "create", "--json", "--data-dir"])
            .arg(dir.join("node0"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("CLIPSTREAM_CLUSTER_NODE_ID", "node0")
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "keys create on the cluster's database: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let created: Value = serde_json::from_slice(&out.stdout)?;
        let field = |k: &str| -> Result<String> {
            Ok(created[k]
                .as_str()
                .ok_or_else(|| format!("keys create: no {k}"))?
                .to_owned())
        };
        Ok(Site {
            name,
            key: (field("key")?, field("secret")?),
            dir,
            env,
            project: String::new(),
            client: Client::builder()
                .timeout(Duration::from_secs(600))
                .pool_max_idle_per_host(0)
                .build()?,
            names: 0,
        })
    }

    /// Starts `n` nodes, node `i` pinned to core `i`, each on a fresh
    /// data directory (only a cache: the records and media are shared);
    /// the first start also makes the project and stores the fixtures
    /// and the 10 s template.
    fn start(&mut self, n: usize, fixtures_dir: &Path) -> Result<Vec<Node>> {
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(self.start_node(i)?);
        }
        if self.project.is_empty() {
            let node = &nodes[0];
            let made = self.send(self.authed(Method::POST, node, "/v1/project/bench"))?;
            self.project = made["uid"]
                .as_str()
                .ok_or_else(|| format!("no uid in {made}"))?
                .to_owned();
            for name in ["clip720.mp4", "logo.png", "music.mp3"] {
                self.upload(node, name, std::fs::read(fixtures_dir.join(name))?)?;
            }
            self.put_movie(
                node,
                &movie_name(SIZE, CLIP_SECS),
                &fixtures::edit(SIZE, CLIP_SECS),
            )?;
        }
        Ok(nodes)
    }

    fn start_node(&self, i: usize) -> Result<Node> {
        let data_dir = self.dir.join(format!("node{i}"));
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        std::fs::create_dir_all(&data_dir)?;
        // The port is fixed before the start: it is also the address the
        // other nodes proxy to (`cluster.advertise_url`).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let mut child = Command::new("taskset")
            .args(["-c", &i.to_string(), &binary()])
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("CLIPSTREAM_CLUSTER_NODE_ID", format!("node{i}"))
            .env("CLIPSTREAM_CLUSTER_ADVERTISE_URL", &url)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = Owned(child);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(line) => {
                    if line?.starts_with("clipstream listening on ") {
                        break;
                    }
                }
                None => {
                    return Err(format!(
                        "node{i} of {} exited before listening; see {}",
                        self.name,
                        data_dir.with_extension("log").display()
                    )
                    .into())
                }
            }
        }
        // Keep draining stdout so the node never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Node { process, url })
    }

    fn authed(&self, method: Method, node: &Node, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", node.url))
            .basic_auth(&self.key.0, Some(&self.key.1))
    }

    fn send(&self, req: RequestBuilder) -> Result<Value> {
        crate::servers::send_json(req)
    }

    fn upload(&self, node: &Node, name: &str, body: Vec<u8>) -> Result<()> {
        let path = format!("/v1/data/{}/{name}", self.project);
        self.send(self.authed(Method::PUT, node, &path).body(body))
            .map(drop)
    }

    fn put_movie(&self, node: &Node, name: &str, edit: &Value) -> Result<()> {
        let path = format!("/v1/sdl/{}/{name}", self.project);
        self.send(
            self.authed(Method::PUT, node, &path)
                .header("content-type", "application/json")
                .body(edit.to_string()),
        )
        .map(drop)
    }

    /// A token of `movie` with a NAME never used before on this site (a
    /// distinct output), with `extra` fields in the request.
    fn token(&mut self, node: &Node, movie: &str, extra: Value) -> Result<String> {
        self.names += 1;
        let mut request =
            json!({ "movie": movie, "params": { "NAME": format!("Viewer{}", self.names) } });
        if let (Some(r), Some(e)) = (request.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        let path = format!("/v2/render/{}", self.project);
        let answer = self.send(
            self.authed(Method::POST, node, &path)
                .header("content-type", "application/json")
                .body(request.to_string()),
        )?;
        Ok(answer["token"]
            .as_str()
            .ok_or_else(|| format!("no token in {answer}"))?
            .to_owned())
    }

    /// The `state` of `token`'s `/status` (any node answers for all):
    /// `Err` when its render failed.
    fn state(&self, node: &Node, token: &str) -> Result<String> {
        let status: Value = self
            .client
            .get(format!("{}/v2/render/{token}/status", node.url))
            .send()?
            .json()?;
        match status["state"].as_str() {
            Some("failed") => Err(format!("the render of {token} failed: {status}").into()),
            Some(s) => Ok(s.to_owned()),
            None => Err(format!("no state in {token}'s status: {status}").into()),
        }
    }

    /// Waits until `token` is `done`.
    fn settle(&self, node: &Node, token: &str) -> Result<()> {
        let deadline = Instant::now() + RENDER_DEADLINE;
        while self.state(node, token)? != "done" {
            if Instant::now() > deadline {
                return Err(format!("{token} not done in {RENDER_DEADLINE:?}").into());
            }
            std::thread::sleep(POLL_EVERY);
        }
        Ok(())
    }

    /// A new 60 s template over a new copy of the background clip (other
    /// bytes, so other segment keys: nothing of it is cached).
    fn new_template(&mut self, node: &Node, fixtures_dir: &Path) -> Result<String> {
        self.names += 1;
        let n = self.names;
        let mut clip = std::fs::read(fixtures_dir.join(SIZE.clip()))?;
        // An MP4 `free` box, which players skip.
        clip.extend_from_slice(&[0, 0, 0, 16]);
        clip.extend_from_slice(b"free");
        clip.extend_from_slice(&n.to_be_bytes());
        let clip_name = format!("copy{n}-{}", SIZE.clip());
        self.upload(node, &clip_name, clip)?;
        let movie = format!("long-{n}");
        self.put_movie(node, &movie, &personalised::edit(SIZE, &clip_name))?;
        Ok(movie)
    }
}

/// A `/metrics` counter of `node`, summed over its labels.
fn metric(client: &Client, node: &Node, name: &str) -> Result<f64> {
    let text = client.get(format!("{}/metrics", node.url)).send()?.text()?;
    Ok(text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// CPU seconds of each node so far.
fn nodes_cpu(nodes: &[Node]) -> Result<Vec<f64>> {
    nodes.iter().map(|n| procfs::cpu_seconds(n.pid())).collect()
}

/// One run of (a) or (b): its time and who spent what.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub wall: f64,
    /// CPU seconds of each node during the run.
    pub node_cpu: Vec<f64>,
    pub postgres_cpu: f64,
    pub s3_cpu: f64,
    /// Renders each node started (`clipstream_renders_started_total`).
    pub started: Vec<f64>,
}

impl Run {
    fn to_json(&self) -> Value {
        json!({
            "wall_s": self.wall, "node_cpu_s": self.node_cpu,
            "postgres_cpu_s": self.postgres_cpu, "seaweedfs_cpu_s": self.s3_cpu,
            "renders_started": self.started,
        })
    }
}

/// Measures `work` on `nodes`: its wall time comes from `work` itself.
fn measured(
    peers: &Peers,
    nodes: &[Node],
    client: &Client,
    work: impl FnOnce() -> Result<f64>,
) -> Result<Run> {
    let started_metric = "clipstream_renders_started_total";
    let started_before: Vec<f64> = nodes
        .iter()
        .map(|n| metric(client, n, started_metric))
        .collect::<Result<_>>()?;
    let cpu_before = nodes_cpu(nodes)?;
    let (pg_before, s3_before) = peers.cpu()?;
    let wall = work()?;
    let cpu_after = nodes_cpu(nodes)?;
    let (pg_after, s3_after) = peers.cpu()?;
    let started = nodes
        .iter()
        .zip(&started_before)
        .map(|(n, b)| Ok(metric(client, n, started_metric)? - b))
        .collect::<Result<_>>()?;
    Ok(Run {
        wall,
        node_cpu: cpu_after
            .iter()
            .zip(&cpu_before)
            .map(|(a, b)| a - b)
            .collect(),
        postgres_cpu: pg_after - pg_before,
        s3_cpu: s3_after - s3_before,
        started,
    })
}

/// (a) on `n` fresh nodes of `site`: `k` prerenders, round robin over the
/// nodes, until all are done.
fn throughput(
    peers: &Peers,
    site: &mut Site,
    n: usize,
    k: usize,
    fixtures_dir: &Path,
) -> Result<Run> {
    let nodes = site.start(n, fixtures_dir)?;
    let client = site.client.clone();
    let movie = movie_name(SIZE, CLIP_SECS);
    let run = measured(peers, &nodes, &client, || {
        let began = Instant::now();
        let mut pending = Vec::with_capacity(k);
        for i in 0..k {
            let token = site.token(&nodes[i % n], &movie, json!({ "prerender": true }))?;
            pending.push(token);
        }
        let deadline = began + RENDER_DEADLINE;
        let mut asked = 0usize;
        while !pending.is_empty() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} of {k} prerenders not done in {RENDER_DEADLINE:?}",
                    pending.len()
                )
                .into());
            }
            // Renders end in the order they were queued, about: ask the
            // oldest until it is done, then the next.
            while let Some(token) = pending.first() {
                asked += 1;
                if site.state(&nodes[asked % n], token)? != "done" {
                    break;
                }
                pending.remove(0);
            }
            if !pending.is_empty() {
                std::thread::sleep(POLL_EVERY);
            }
        }
        Ok(began.elapsed().as_secs_f64())
    })?;
    drop(nodes);
    Ok(run)
}

/// (b) on `nodes`: a new 60 s template's render with `parallel`, through
/// node 0, from the GET to its last byte (then until it is `done`).
fn latency(
    peers: &Peers,
    site: &mut Site,
    nodes: &[Node],
    parallel: u32,
    fixtures_dir: &Path,
) -> Result<Run> {
    let movie = site.new_template(&nodes[0], fixtures_dir)?;
    let token = site.token(&nodes[0], &movie, json!({ "parallel": parallel }))?;
    let client = site.client.clone();
    let url = format!("{}/render/{token}.mp4", nodes[0].url);
    let site = &*site;
    measured(peers, nodes, &client, || {
        let arrival = runs::get(&client, &url)?;
        // Its commit to the bucket and the cluster's records comes after
        // the last byte: part of its cost, not of its time.
        site.settle(&nodes[0], &token)?;
        Ok(arrival.last_byte.as_secs_f64())
    })
}

/// Everything measured.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub reps: usize,
    pub renders: usize,
    pub one: Vec<Run>,
    pub two: Vec<Run>,
    pub parallel1: Vec<Run>,
    pub parallel2: Vec<Run>,
    /// Whether node 1 did any of (b)'s `parallel: 2` renders' work: a
    /// render started on it, or CPU beyond its idle heartbeat.
    pub helped: bool,
}

fn samples(runs: &[Run], f: impl Fn(&Run) -> f64) -> Samples {
    Samples(runs.iter().map(f).collect())
}

fn per_min(k: usize, r: &Run) -> f64 {
    k as f64 / (r.wall / 60.0)
}

impl Cluster {
    pub fn throughput_ratio(&self) -> Samples {
        samples(&self.two, |r| r.wall)
            .0
            .iter()
            .zip(&self.one)
            .map(|(two, one)| one.wall / two)
            .collect::<Vec<_>>()
            .into()
    }

    pub fn latency_ratio(&self) -> Samples {
        self.parallel2
            .iter()
            .zip(&self.parallel1)
            .map(|(two, one)| two.wall / one.wall)
            .collect::<Vec<_>>()
            .into()
    }

    /// The section of RESULTS.md (its heading included) and the rows of
    /// the targets table.
    pub fn markdown(&self, heading: &str, md: &mut String, targets: &mut String) -> Result<()> {
        let k = self.renders;
        writeln!(md, "\n## {heading}\n")?;
        writeln!(
            md,
            "Nodes of one cluster (issue 21): {which}, records in one \
             PostgreSQL 15 database, media in one SeaweedFS bucket, both started by the harness \
             on loopback (the tests' peers) and **not pinned**; each node pinned to a core of its \
             own (`taskset -c 0`, `taskset -c 1`) with `render.workers = 1` and \
             `segments.max_parallel = 1`, so that a node stands for a one-core machine. \
             **This machine has 2 cores shared with other work (builds, tests of other \
             sessions); PostgreSQL, SeaweedFS and the harness run on the same two cores as the \
             nodes: read the figures as one noisy run, not as a quiet machine's.** \
             {reps} repetition{s}; each repetition runs one node then two, or two then one, in \
             turn.\n",
            which = std::env::var("CLIPSTREAM_BENCH_BIN")
                .map_or("the release `clipstream serve`".to_owned(), |b| format!(
                    "`{b} serve`"
                )),
            reps = self.reps,
            s = if self.reps == 1 { "" } else { "s" },
        )?;
        writeln!(
            md,
            "**(a) Throughput.** {k} distinct cold background renders (`\"prerender\": true`, a \
             new NAME each, so {k} distinct outputs) of the 10 s 720p template, submitted round \
             robin to the nodes, timed from the first request until every `/status` says `done`. \
             Fresh nodes each run (an empty local cache; everything stored is in PostgreSQL and \
             the bucket). CPU: seconds each process used during the run, from `/proc` \
             (PostgreSQL with all its backends).\n"
        )?;
        writeln!(
            md,
            "| Rep | 1 node s | 1 node renders/min | 2 nodes s | 2 nodes renders/min | 2 / 1 | started per node (2 nodes) | node CPU s (1 / 2) | PostgreSQL CPU s (1 / 2) | SeaweedFS CPU s (1 / 2) |\n|---|---|---|---|---|---|---|---|---|---|"
        )?;
        let ratio = self.throughput_ratio();
        for (i, (one, two)) in self.one.iter().zip(&self.two).enumerate() {
            writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}× | {} | {:.1} / {} | {:.1} / {:.1} | {:.1} / {:.1} |",
                i + 1,
                one.wall,
                per_min(k, one),
                two.wall,
                per_min(k, two),
                ratio.0[i],
                two.started
                    .iter()
                    .map(|s| format!("{s:.0}"))
                    .collect::<Vec<_>>()
                    .join(" + "),
                one.node_cpu.iter().sum::<f64>(),
                two.node_cpu
                    .iter()
                    .map(|c| format!("{c:.1}"))
                    .collect::<Vec<_>>()
                    .join(" + "),
                one.postgres_cpu,
                two.postgres_cpu,
                one.s3_cpu,
                two.s3_cpu,
            )?;
        }
        writeln!(
            md,
            "| median | {} | {} | {} | {} | {}× | | | | |\n",
            samples(&self.one, |r| r.wall).show(1),
            samples(&self.one, |r| per_min(k, r)).show(1),
            samples(&self.two, |r| r.wall).show(1),
            samples(&self.two, |r| per_min(k, r)).show(1),
            ratio.show(2),
        )?;
        writeln!(
            md,
            "**(b) One render over two nodes.** A 60 s 720p render (section 7's template) \
             through node 0, `\"parallel\": 2` against `\"parallel\": 1` on the same two pinned \
             nodes (one segment worker each: `parallel: 2` is node 0's worker and runs of \
             segments asked of another node). Each render is of a new template (a new copy of the background clip: no segment \
             cached anywhere); seconds from the GET of `/render/<token>.mp4` to its last \
             byte.{}\n",
            if self.helped {
                ""
            } else {
                " **Node 1 did no part of these renders** (no render started on it, no CPU \
                 beyond its idle heartbeat): `parallel` across nodes was not in the build \
                 measured, and both requests rendered on node 0 alone."
            }
        )?;
        writeln!(
            md,
            "| Rep | `parallel: 1` s | `parallel: 2` s | 2 / 1 | node CPU s, `parallel: 1` | node CPU s, `parallel: 2` | PostgreSQL CPU s (1 / 2) | SeaweedFS CPU s (1 / 2) |\n|---|---|---|---|---|---|---|---|"
        )?;
        let lat = self.latency_ratio();
        let cpus = |r: &Run| {
            r.node_cpu
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        for (i, (one, two)) in self.parallel1.iter().zip(&self.parallel2).enumerate() {
            writeln!(
                md,
                "| {} | {:.2} | {:.2} | {:.2}× | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} |",
                i + 1,
                one.wall,
                two.wall,
                lat.0[i],
                cpus(one),
                cpus(two),
                one.postgres_cpu,
                two.postgres_cpu,
                one.s3_cpu,
                two.s3_cpu,
            )?;
        }
        writeln!(
            md,
            "| median | {} | {} | {}× | | | | |",
            samples(&self.parallel1, |r| r.wall).show(2),
            samples(&self.parallel2, |r| r.wall).show(2),
            lat.show(2),
        )?;
        target_row(
            targets,
            &format!("Cluster: {k} prerenders, renders/min of 2 pinned nodes ≥ 1.8× 1 node"),
            ratio.median(),
            THROUGHPUT_TARGET,
            false,
        )?;
        target_row(
            targets,
            "Cluster: 60 s 720p `parallel: 2` over 2 nodes ≤ 0.6× `parallel: 1`",
            lat.median(),
            LATENCY_TARGET,
            true,
        )?;
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        let runs = |v: &[Run]| v.iter().map(Run::to_json).collect::<Vec<_>>();
        json!({
            "reps": self.reps,
            "prerenders": self.renders,
            "one_node": runs(&self.one),
            "two_nodes": runs(&self.two),
            "throughput_ratio": self.throughput_ratio().to_json(),
            "parallel_1": runs(&self.parallel1),
            "parallel_2": runs(&self.parallel2),
            "latency_ratio": self.latency_ratio().to_json(),
            "node1_helped_parallel": self.helped,
        })
    }

    /// Prints the figures (for `--cluster-only`).
    pub fn print(&self) {
        let k = self.renders;
        for (name, runs) in [("1 node", &self.one), ("2 nodes", &self.two)] {
            eprintln!(
                "(a) {name}: {k} prerenders in {} s, {} renders/min",
                samples(runs, |r| r.wall).show(1),
                samples(runs, |r| per_min(k, r)).show(1)
            );
        }
        eprintln!(
            "(a) 2 nodes / 1 node: {}× (each rep: {:?}); target >= {THROUGHPUT_TARGET}x",
            self.throughput_ratio().show(2),
            self.throughput_ratio().0
        );
        eprintln!(
            "(b) 60 s 720p: parallel 1 {} s, parallel 2 {} s: {}× (each rep: {:?}); target <= {LATENCY_TARGET}x; node 1 helped: {}",
            samples(&self.parallel1, |r| r.wall).show(2),
            samples(&self.parallel2, |r| r.wall).show(2),
            self.latency_ratio().show(2),
            self.latency_ratio().0,
            self.helped
        );
    }
}

impl From<Vec<f64>> for Samples {
    fn from(v: Vec<f64>) -> Samples {
        Samples(v)
    }
}

fn target_row(targets: &mut String, what: &str, r: f64, t: f64, at_most: bool) -> Result<()> {
    writeln!(
        targets,
        "| {what} | {r:.2} | {} |",
        crate::report::verdict(r, t, at_most)
    )?;
    Ok(())
}

/// Runs the scenario: `reps` repetitions of (a) with `k` renders, then of
/// (b). `say` reports progress.
pub fn run(
    work: &Path,
    fixtures_dir: &Path,
    reps: usize,
    k: usize,
    say: &dyn Fn(&str),
) -> Result<Cluster> {
    say("cluster: starting PostgreSQL and SeaweedFS");
    let peers = Peers::start()?;
    let mut one = Site::new(&peers, work, "one")?;
    let mut two = Site::new(&peers, work, "two")?;
    let mut c = Cluster {
        reps,
        renders: k,
        ..Cluster::default()
    };
    for rep in 0..reps {
        // Who goes first turns with each rep, so that drift within a rep
        // falls on both in turn.
        for turn in 0..2 {
            if (rep + turn) % 2 == 0 {
                say(&format!(
                    "cluster (a): 1 node, {k} prerenders, {}/{reps}",
                    rep + 1
                ));
                c.one
                    .push(throughput(&peers, &mut one, 1, k, fixtures_dir)?);
            } else {
                say(&format!(
                    "cluster (a): 2 nodes, {k} prerenders, {}/{reps}",
                    rep + 1
                ));
                c.two
                    .push(throughput(&peers, &mut two, 2, k, fixtures_dir)?);
            }
        }
    }
    drop((one, two));
    let mut site = Site::new(&peers, work, "parallel")?;
    let nodes = site.start(2, fixtures_dir)?;
    for rep in 0..reps {
        for turn in 0..2 {
            let parallel = if (rep + turn) % 2 == 0 { 1 } else { 2 };
            say(&format!(
                "cluster (b): 60 s, parallel {parallel}, {}/{reps}",
                rep + 1
            ));
            let r = latency(&peers, &mut site, &nodes, parallel, fixtures_dir)?;
            if parallel == 1 {
                c.parallel1.push(r);
            } else {
                c.parallel2.push(r);
            }
        }
    }
    // Node 1's idle cost (heartbeats, queue polls) over a render is a
    // fraction of a second; a run of segments is seconds.
    c.helped = c.parallel2.iter().any(|r| {
        r.started.get(1).is_some_and(|&s| s > 0.0) || r.node_cpu.get(1).is_some_and(|&s| s > 1.0)
    });
    Ok(c)
}

/// Replaces the cluster section of `out/RESULTS.md` (or adds it before
/// the hand-written analysis) and its rows of the targets table, leaving
/// the rest of the report as its last full run wrote it; `results.json`
/// gets its `cluster` entry likewise.
pub fn splice(out: &Path, c: &Cluster, heading: &str) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let path = out.join("RESULTS.md");
    // No report yet (a fresh --out): the section alone, with its targets.
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut section = String::new();
    let mut rows = String::new();
    c.markdown(heading, &mut section, &mut rows)?;
    let date = crate::report::now_utc();
    let version = crate::report::versions(&binary())
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default();
    section.push_str(&format!(
        "\n(This section: `clipstream-bench --cluster-only --reps {}`, {date}, {version}; the \
         sections above are from the full run named in the header.)\n",
        c.reps
    ));
    let start = format!("\n## {heading}\n");
    let analysis = "\n## Analysis";
    let (before, after) = match (old.find(&start), old.find(analysis)) {
        (Some(s), Some(a)) if s < a => (&old[..s], &old[a..]),
        (None, Some(a)) => (&old[..a], &old[a..]),
        (Some(s), None) => (&old[..s], ""),
        _ => (old.as_str(), ""),
    };
    // The targets table: its rows are the lines starting with `| ` after
    // `## Targets`; the cluster's rows replace any earlier ones.
    let mut lines: Vec<String> = Vec::new();
    let mut in_targets = false;
    let mut placed = false;
    for line in before.lines() {
        if line.starts_with("## Targets") {
            in_targets = true;
        } else if in_targets && !line.starts_with('|') && !line.is_empty() {
            in_targets = false;
        }
        if in_targets && line.starts_with("| Cluster:") {
            continue;
        }
        if in_targets
            && line.is_empty()
            && lines.last().is_some_and(|l| l.starts_with('|'))
            && !placed
        {
            lines.extend(rows.lines().map(str::to_owned));
            placed = true;
        }
        lines.push(line.to_owned());
    }
    let mut md = lines.join("\n");
    if !placed {
        md.push_str("\n\n## Targets\n\n| Target | Clipstream / peer | Verdict |\n|---|---|---|\n");
        md.push_str(&rows);
    }
    md.push('\n');
    md.push_str(&section);
    // The hand-written analysis as it stands, as a full run writes it.
    match std::fs::read_to_string(out.join("analysis.md")) {
        Ok(analysis) => {
            md.push('\n');
            md.push_str(&analysis);
        }
        Err(_) => md.push_str(after),
    }
    std::fs::write(&path, md)?;
    let json_path = out.join("results.json");
    let mut json: Value = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    if let Some(o) = json.as_object_mut() {
        o.insert("cluster".to_owned(), c.to_json());
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
