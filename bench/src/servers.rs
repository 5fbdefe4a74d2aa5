//! The servers under test: the release `clipstream` on a fresh data
//! directory with the fixtures and templates stored in one project, and
//! nginx from its own config serving the same cached bytes as static files.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::fixtures::{self, Size};
use crate::Result;

pub const BINARY: &str = "target/release/clipstream";

/// A child process stopped when dropped.
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        // SIGTERM first, so servers shut down as in production.
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Clipstream {
    process: Owned,
    pub url: String,
    pub data_dir: PathBuf,
    project: String,
    key: (String, String),
    client: Client,
    names: AtomicU64,
    /// RSS once set up, before any render: what renders are measured above.
    pub idle_rss_mib: f64,
}

/// The movies stored: one per size and length of the standard template.
pub fn movie_name(size: Size, secs: u32) -> String {
    format!("std-{}-{secs}s", size.name)
}

impl Clipstream {
    /// Starts a server on `data_dir` (emptied first) with `env` settings,
    /// makes a key and a project, uploads the fixtures and stores the
    /// standard template for every `(size, secs)` in `movies`.
    pub fn start(
        data_dir: &Path,
        fixtures_dir: &Path,
        movies: &[(Size, u32)],
        env: &[(&str, &str)],
    ) -> Result<Clipstream> {
        if data_dir.exists() {
            std::fs::remove_dir_all(data_dir)?;
        }
        std::fs::create_dir_all(data_dir)?;
        let out = Command::new(BINARY)
            .args(["keys", "create", "--json", "--data-dir"])
            .arg(data_dir)
            .output()?;
        if !out.status.success() {
            return Err(format!("keys create: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let created: Value = serde_json::from_slice(&out.stdout)?;
        let field = |k: &str| -> Result<String> {
            Ok(created[k]
                .as_str()
                .ok_or_else(|| format!("keys create: no {k}"))?
                .to_owned())
        };
        let key = (field("key")?, field("secret")?);
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let mut child = Command::new(BINARY)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = Owned(child);
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(line) => {
                    if let Some(url) = line?.strip_prefix("clipstream listening on ") {
                        break url.to_owned();
                    }
                }
                None => return Err("clipstream exited before listening".into()),
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        let client = Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        let mut server = Clipstream {
            process,
            url,
            data_dir: data_dir.to_owned(),
            project: String::new(),
            key,
            client,
            names: AtomicU64::new(0),
            idle_rss_mib: 0.0,
        };
        server.project = server.api_json(
            server.authed(reqwest::Method::POST, "/v1/project/bench"),
            "uid",
        )?;
        for name in ["clip720.mp4", "clip1080.mp4", "logo.png", "music.mp3"] {
            let body = std::fs::read(fixtures_dir.join(name))?;
            let path = format!("/v1/data/{}/{name}", server.project);
            server.send(server.authed(reqwest::Method::PUT, &path).body(body))?;
        }
        for &(size, secs) in movies {
            let path = format!("/v1/sdl/{}/{}", server.project, movie_name(size, secs));
            let body = fixtures::edit(size, secs).to_string();
            server.send(
                server
                    .authed(reqwest::Method::PUT, &path)
                    .header("content-type", "application/json")
                    .body(body),
            )?;
        }
        server.idle_rss_mib = crate::procfs::rss_mib(server.pid())?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .basic_auth(&self.key.0, Some(&self.key.1))
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<Value> {
        send_json(req)
    }

    fn api_json(&self, req: reqwest::blocking::RequestBuilder, field: &str) -> Result<String> {
        let v = self.send(req)?;
        Ok(v[field]
            .as_str()
            .ok_or_else(|| format!("no {field} in {v}"))?
            .to_owned())
    }

    /// A NAME never used before in this run, so its render is cold.
    pub fn fresh_name(&self) -> String {
        format!("Viewer{}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// A token for `movie` with NAME = `name`.
    pub fn token(&self, movie: &str, name: &str) -> Result<String> {
        self.token_parallel(movie, name, 0)
    }

    /// A token for `movie` with NAME = `name` whose MP4 renders `parallel`
    /// segments at once (0: not given, the server's default).
    pub fn token_parallel(&self, movie: &str, name: &str, parallel: u32) -> Result<String> {
        let path = format!("/v2/render/{}", self.project);
        let mut request = json!({ "movie": movie, "params": { "NAME": name } });
        if parallel > 0 {
            request["parallel"] = json!(parallel);
        }
        let body = request.to_string();
        self.api_json(
            self.authed(reqwest::Method::POST, &path)
                .header("content-type", "application/json")
                .body(body),
            "token",
        )
    }

    pub fn video_url(&self, token: &str) -> String {
        format!("{}/render/{token}.mp4", self.url)
    }

    /// Whether the render of `token` is in the cache (`/status` says
    /// `done`).
    pub fn is_cached(&self, token: &str) -> Result<bool> {
        let status = self
            .client
            .get(format!("{}/v2/render/{token}/status", self.url))
            .send()?
            .text()?;
        Ok(status.contains("\"state\":\"done\""))
    }

    /// The cached render's file (to serve the same bytes from nginx): its
    /// name is the output's content key, which its URL gives as the ETag.
    pub fn cached_file(&self, token: &str) -> Result<PathBuf> {
        let head = self.client.head(self.video_url(token)).send()?;
        let etag = head
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("{token} is not cached: no ETag"))?
            .trim_matches('"')
            .to_owned();
        Ok(self.data_dir.join("renders").join(format!("{etag}.mp4")))
    }

    /// Waits until the server has finished with `token` (cached), so that
    /// its CPU count includes the render's last work.
    pub fn settle(&self, token: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while !self.is_cached(token)? {
            if std::time::Instant::now() > deadline {
                return Err(format!("{token} never reached the cache").into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits until no render is in progress (`clipstream_renders`, by
    /// state, all 0).
    pub fn idle(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while self.metric("clipstream_renders").unwrap_or(0.0) > 0.0 {
            if std::time::Instant::now() > deadline {
                return Err("renders still running after 300 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stores `body` as the project's asset `name`.
    pub fn upload(&self, name: &str, body: Vec<u8>) -> Result<()> {
        let path = format!("/v1/data/{}/{name}", self.project);
        self.send(self.authed(reqwest::Method::PUT, &path).body(body))
            .map(drop)
    }

    /// Stores `edit` as the project's movie `name`.
    pub fn put_movie(&self, name: &str, edit: &Value) -> Result<()> {
        let path = format!("/v1/sdl/{}/{name}", self.project);
        self.send(
            self.authed(reqwest::Method::PUT, &path)
                .header("content-type", "application/json")
                .body(edit.to_string()),
        )
        .map(drop)
    }

    /// A counter from `/metrics` (summed over its labels).
    pub fn metric(&self, name: &str) -> Result<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()?
            .text()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        if values.is_empty() {
            return Err(format!("no {name} in /metrics").into());
        }
        Ok(values.iter().sum())
    }
}

/// A loopback port free right now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Nginx {
    _process: Owned,
    pub url: String,
}

impl Nginx {
    /// nginx in the foreground from a config written under `dir`, serving
    /// `root` on a loopback port: as a static-file server is deployed
    /// (sendfile, keep-alive, no access log, a worker per core).
    pub fn start(dir: &Path, root: &Path) -> Result<Nginx> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes auto;\nworker_rlimit_nofile 8192;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
             keepalive_requests 1000000;\n  keepalive_timeout 65;\n\
             types {{ video/mp4 mp4; }}\n  default_type application/octet-stream;\n\
             client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {};\n  }}\n}}\n",
            root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .stderr(std::fs::File::create(dir.join("stderr.log"))?)
            .spawn()?;
        let process = Owned(child);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nginx did not listen; see {d}/stderr.log").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nginx {
            _process: process,
            url,
        })
    }
}

/// Sends an API request: its JSON answer (null when it has none), or an
/// error with the status and body of a failure.
pub(crate) fn send_json(req: reqwest::blocking::RequestBuilder) -> Result<Value> {
    let resp = req.send()?;
    let status = resp.status();
    let text = resp.text()?;
    if !status.is_success() {
        return Err(format!("{status}: {text}").into());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}
