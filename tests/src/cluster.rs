//! A Clipstream cluster on loopback (issue 21): a throw-away PostgreSQL
//! database for the records, a SeaweedFS bucket for the blobs, n
//! `clipstream serve` nodes on them, each with its own data directory and
//! port, and nginx in front with the deployment example's rules
//! (`conf/deploy/nginx.conf`: a video's URLs hashed to one node, the rest
//! round robin).
//!
//! Nodes are numbered from 0: node `i` is `node{i}` in the cluster
//! (`cluster.node_id`), at `http://127.0.0.1:<its port>`, which is also
//! its `cluster.advertise_url`. Its port is fixed at the start, so a node
//! killed and restarted comes back at the same address, the one nginx
//! and the other nodes know.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::peers::free_port;
use crate::peers::nginx::Nginx;
use crate::peers::postgres::Postgres;
use crate::peers::seaweedfs::{self, SeaweedFs};
use crate::{binary, Api, Key, Server};

/// The bucket the nodes share.
pub const BUCKET: &str = "clipstream";

/// Where the nodes keep blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// One SeaweedFS bucket that every node shares (`storage.blobs =
    /// "s3"`): a real cluster.
    S3,
    /// Each node's own data directory (`storage.blobs = "files"`): only
    /// the records are shared, so media stored through one node is
    /// missing on the others. For one node, or for tests of the shared
    /// repository alone.
    Files,
}

/// One node: its settings and, while it runs, its process.
struct Node {
    server: Option<Server>,
    port: u16,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Node {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A running cluster; dropping it stops nginx, the nodes, SeaweedFS and
/// PostgreSQL (in that order: fields drop in declaration order).
pub struct Cluster {
    pub nginx: Nginx,
    nodes: Vec<Node>,
    /// An API key of one account, valid on every node (keys are records
    /// in the shared repository).
    pub key: Key,
    pub blobs: Blobs,
    pub seaweedfs: Option<SeaweedFs>,
    pub postgres: Postgres,
    /// The PostgreSQL database the nodes share, as a URL.
    pub database_url: String,
    /// The nodes' data directories (`<dir>/node<i>`) and logs
    /// (`<dir>/node<i>.log`).
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes on PostgreSQL and a SeaweedFS bucket, behind nginx.
    /// `extra_env` (`CLIPSTREAM_*` settings) goes to every node, over the
    /// cluster's own settings.
    pub fn start(n: usize, extra_env: &[(&str, &str)]) -> Cluster {
        Self::start_with(n, Blobs::S3, extra_env)
    }

    /// As [`Cluster::start`], with the blobs where `blobs` says.
    pub fn start_with(n: usize, blobs: Blobs, extra_env: &[(&str, &str)]) -> Cluster {
        Self::start_nodes(&vec![&[][..]; n], blobs, extra_env)
    }

    /// A node for each entry of `per_node`, each with those settings of
    /// its own over `extra_env` (say `CLIPSTREAM_CLUSTER_ROUTING_KEYS`).
    pub fn start_nodes(
        per_node: &[&[(&str, &str)]],
        blobs: Blobs,
        extra_env: &[(&str, &str)],
    ) -> Cluster {
        let n = per_node.len();
        assert!(n >= 1, "a cluster has a node at least");
        let dir = tempfile::tempdir().expect("temp dir");
        let postgres = Postgres::start();
        postgres.create_database("clipstream");
        let database_url = format!("postgres://postgres@127.0.0.1:{}/clipstream", postgres.port);
        let mut shared: Vec<(String, String)> = vec![
            ("CLIPSTREAM_STORAGE_REPOSITORY".into(), "postgres".into()),
            (
                "CLIPSTREAM_STORAGE_POSTGRES_URL".into(),
                database_url.clone(),
            ),
            // The nodes reach each other, and the tests' peers, on loopback.
            ("CLIPSTREAM_FETCH_ALLOW_PRIVATE".into(), "true".into()),
            ("CLIPSTREAM_UPLOAD_ALLOW_PRIVATE".into(), "true".into()),
        ];
        let seaweedfs = match blobs {
            Blobs::Files => {
                shared.push(("CLIPSTREAM_STORAGE_BLOBS".into(), "files".into()));
                None
            }
            Blobs::S3 => {
                let s3 = SeaweedFs::start();
                s3.create_bucket(BUCKET);
                shared.extend([
                    ("CLIPSTREAM_STORAGE_BLOBS".into(), "s3".into()),
                    ("CLIPSTREAM_STORAGE_S3_ENDPOINT".into(), s3.endpoint()),
                    ("CLIPSTREAM_STORAGE_S3_BUCKET".into(), BUCKET.into()),
                    ("CLIPSTREAM_STORAGE_S3_REGION".into(), "us-east-1".into()),
                    (
                        "CLIPSTREAM_STORAGE_S3_ACCESS_KEY_ID".into(),
                        seaweedfs::ACCESS_KEY.into(),
                    ),
                    (
                        "CLIPSTREAM_STORAGE_S3_SECRET_ACCESS_KEY".into(),
                        seaweedfs::SECRET_KEY.into(),
                    ),
                ]);
                Some(s3)
            }
        };
        // Later entries win (Command::envs sets them in order).
        shared.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );

        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                let mut env = vec![("CLIPSTREAM_CLUSTER_NODE_ID".to_owned(), format!("node{i}"))];
                env.extend(shared.iter().cloned());
                env.extend(
                    per_node[i]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
                Node {
                    server: None,
                    port: 0,
                    data_dir: dir.path().join(format!("node{i}")),
                    env,
                }
            })
            .collect();

        // The key, before any node runs: `keys create` then opens the
        // repository itself instead of asking a node's admin socket.
        let key = create_key(&nodes[0]);

        for node in &mut nodes {
            start_node(node);
        }
        let urls: Vec<String> = nodes.iter().map(Node::url).collect();
        let nginx = Nginx::start(&urls);
        Cluster {
            nginx,
            nodes,
            key,
            blobs,
            seaweedfs,
            postgres,
            database_url,
            dir,
        }
    }

    /// How many nodes the cluster has (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A client of node `i` directly, with the cluster's key.
    pub fn node(&self, i: usize) -> Api {
        Api::new(&self.nodes[i].url(), Some(&self.key))
    }

    /// A client of the load balancer (nginx), with the cluster's key.
    pub fn lb(&self) -> Api {
        Api::new(&self.nginx.url(), Some(&self.key))
    }

    /// Node `i`'s base URL (and `cluster.advertise_url`).
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// Node `i`'s process; panics when it is not running.
    pub fn server(&self, i: usize) -> &Server {
        self.nodes[i].server.as_ref().expect("node running")
    }

    /// Whether node `i` runs (not killed, or restarted since).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].server.is_some()
    }

    /// Kills node `i` at once (SIGKILL): its claims stay in the
    /// repository until their lease runs out.
    pub fn kill(&mut self, i: usize) {
        if let Some(server) = self.nodes[i].server.take() {
            server.kill();
        }
    }

    /// Starts node `i` again (killing it first if it runs), on the same
    /// data directory and port.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let node = &mut self.nodes[i];
        let env = node.env();
        let server = Server::start_on(&node.data_dir, &format!("127.0.0.1:{}", node.port), &env);
        node.server = Some(server);
    }

    /// The sum of a `/metrics` counter or gauge (its name with labels, as
    /// printed) over the running nodes.
    pub fn metric_sum(&self, name: &str) -> u64 {
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .map(|i| self.node(i).metric(name))
            .sum()
    }

    /// `clipstream ARGS` with node `i`'s settings and data directory (the
    /// command asks the node's admin socket when the node runs).
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        cli(&self.nodes[i], args)
    }

    /// Every node's log and nginx's, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let log =
                std::fs::read_to_string(node.data_dir.with_extension("log")).unwrap_or_default();
            out.push_str(&format!("--- node{i} ---\n{log}\n"));
        }
        out.push_str(&format!("--- nginx ---\n{}\n", self.nginx.log()));
        out
    }
}

/// Starts `node` on a free port; a start that fails (the port, picked
/// free, taken since by a test running beside it) is tried again on a
/// new port, three times at most.
fn start_node(node: &mut Node) {
    let mut logs = Vec::new();
    for _ in 0..3 {
        node.port = free_port();
        let mut env = node.env.clone();
        env.retain(|(k, _)| k != "CLIPSTREAM_CLUSTER_ADVERTISE_URL");
        env.push(("CLIPSTREAM_CLUSTER_ADVERTISE_URL".into(), node.url()));
        node.env = env;
        let env = node.env();
        match Server::try_start_on(&node.data_dir, &format!("127.0.0.1:{}", node.port), &env) {
            Ok(server) => {
                node.server = Some(server);
                return;
            }
            Err(log) => logs.push(log),
        }
    }
    panic!(
        "node {} did not start in three tries:\n{}",
        node.data_dir.display(),
        logs.join("\n---\n")
    );
}

fn cli(node: &Node, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(&node.data_dir)
        .envs(node.env())
        .output()
        .expect("run clipstream")
}

fn create_key(node: &Node) -> Key {
    crate::created_key(&cli(node, &["keys", "create", "--json"]))
}
