//! The harness of the end-to-end tests: the real `clipstream` binary,
//! started on a loopback port with its own temporary data directory, and a
//! small HTTP client that speaks to it.
//!
//! The binary is `target/debug/clipstream` (the README's test command
//! builds it first) or the one named by `CLIPSTREAM_TEST_BIN`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod cluster;
pub mod media;
pub mod peers;
pub mod pixop;
pub mod sdk;
pub mod webdriver;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::Value;

/// How long a server may take to say it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CLIPSTREAM_TEST_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/clipstream");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin clipstream` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs `clipstream ARGS` on `data_dir` to completion.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run clipstream")
}

/// An API key and secret, as `clipstream keys create` printed them.
#[derive(Debug, Clone)]
pub struct Key {
    pub account: String,
    pub key: String,
    pub secret: String,
}

/// Creates a key on `data_dir` (through the server when one runs on it);
/// with `account`, adds the key to that account.
pub fn create_key(data_dir: &Path, account: Option<&str>) -> Key {
    let mut args = vec!["keys", "create", "--json"];
    if let Some(account) = account {
        args.extend(["--account", account]);
    }
    created_key(&run_cli(data_dir, &args))
}

/// The key `clipstream keys create --json` printed (it must have
/// succeeded).
pub fn created_key(out: &std::process::Output) -> Key {
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("keys create prints JSON");
    let field = |k: &str| v[k].as_str().expect(k).to_owned();
    Key {
        account: field("account"),
        key: field("key"),
        secret: field("secret"),
    }
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Child,
    pub url: String,
    /// What the server wrote on stderr goes here, for post-mortems.
    pub log: PathBuf,
}

impl Server {
    /// Starts `clipstream serve` on `data_dir`, on a free loopback port.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// As [`Server::start`], with extra environment settings.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_on(data_dir, "127.0.0.1:0", env)
    }

    /// As [`Server::start_with`], listening on `listen` (a cluster's nodes
    /// must know each other's addresses before they start).
    pub fn start_on(data_dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        Self::try_start_on(data_dir, listen, env).unwrap_or_else(|log| {
            panic!("the server did not start; its log:\n{log}");
        })
    }

    /// As [`Server::start_on`]; a server that exits or does not say it
    /// listens within the start timeout is an `Err` with its log (a port
    /// picked free may have been taken since).
    pub fn try_start_on(
        data_dir: &Path,
        listen: &str,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let log = data_dir.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("server log file");
        let mut child = Command::new(binary())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start clipstream serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = loop {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("clipstream listening on ") {
                        break url.to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        };
        Ok(Server { child, url, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak, in KiB, from `/proc`.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Kills the server at once (SIGKILL): nothing it acknowledged may be lost.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the server to stop, as a service manager does (SIGTERM), and
    /// waits for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary data directory with one account's key, and a server on it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub key: Key,
    pub server: Option<Server>,
    /// The settings the server runs with, again after a restart.
    settings: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        Env::with_settings(&[])
    }

    /// A server started with extra environment variables: `CLIPSTREAM_*`
    /// settings, or others the server reads (`SSL_CERT_FILE`, …).
    pub fn with_settings(env: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = create_key(&dir.path().join("data"), None);
        let server = Some(Server::start_with(&dir.path().join("data"), env));
        let settings = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            dir,
            key,
            server,
            settings,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    /// A client with this env's key.
    pub fn client(&self) -> Api {
        Api::new(&self.server().url, Some(&self.key))
    }

    /// Stops the server (with SIGKILL) and runs `f` on the data directory.
    pub fn while_stopped<T>(&mut self, f: impl FnOnce(&Path) -> T) -> T {
        if let Some(server) = self.server.take() {
            server.kill();
        }
        let out = f(&self.data_dir());
        let settings: Vec<(&str, &str)> = self
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server = Some(Server::start_with(&self.data_dir(), &settings));
        out
    }

    /// Kills the server and starts it again on the same data.
    pub fn restart(&mut self) {
        self.while_stopped(|_| ());
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// A blocking HTTP client for the tests (no proxy, the given timeout).
/// Built with the whole workspace, reqwest carries the server's TLS
/// features, which want a crypto provider installed first.
pub fn http_client(timeout: Duration) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("http client")
}

/// An HTTP client for the API, with or without credentials.
pub struct Api {
    http: Client,
    base: String,
    auth: Option<(String, String)>,
}

impl Api {
    pub fn new(base: &str, key: Option<&Key>) -> Api {
        Api {
            http: http_client(Duration::from_secs(120)),
            base: base.to_owned(),
            auth: key.map(|k| (k.key.clone(), k.secret.clone())),
        }
    }

    pub fn with_auth(&self, key: &str, secret: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            auth: Some((key.to_owned(), secret.to_owned())),
        }
    }

    pub fn anonymous(&self) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            auth: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.auth {
            Some((key, secret)) => req.basic_auth(key, Some(secret)),
            None => req,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().expect("GET")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().expect("DELETE")
    }

    pub fn post(&self, path: &str) -> Response {
        self.request(Method::POST, path).send().expect("POST")
    }

    pub fn put(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> Response {
        self.request(Method::PUT, path)
            .body(body)
            .send()
            .expect("PUT")
    }

    /// Stores `movie` as dynamic movie `name` of project `uid` and asks for
    /// a render of it with `params`; returns the token.
    pub fn render_token(&self, uid: &str, name: &str, movie: &Value, params: Value) -> String {
        let (status, body) = json(self.put(&format!("/v1/sdl/{uid}/{name}"), movie.to_string()));
        assert_eq!(status, 201, "{body}");
        let (status, body) = json(
            self.request(Method::POST, &format!("/v2/render/{uid}"))
                .json(&serde_json::json!({ "movie": name, "params": params }))
                .send()
                .expect("POST render"),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a project and returns its uid.
    pub fn create_project(&self, name: &str) -> String {
        let (status, body) = json(self.post(&format!("/v1/project/{name}")));
        assert_eq!(status, 201, "{body}");
        body["uid"].as_str().expect("uid").to_owned()
    }

    /// Polls `/v2/render/<token>/status[?ext=…]` until the output is
    /// `done` (the last byte of a render is out a moment before it is in
    /// the cache), failing on `failed` or after `secs`; returns every
    /// state seen, in order.
    pub fn wait_done(&self, token: &str, ext: &str, secs: u64) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (status, body) = json(self.get(&format!("/v2/render/{token}/status?ext={ext}")));
            assert_eq!(status, 200, "{body}");
            let state = body["state"].as_str().expect("state").to_owned();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            match state.as_str() {
                "done" => return seen,
                "failed" => panic!("the render of {token}.{ext} failed: {body}"),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{token}.{ext} not done in {secs} s: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Api {
    /// Asks for a render of `movie` of project `uid` with `params` and the
    /// given `upload` (one task or a list); returns the whole answer
    /// (`token`, `uploads`).
    pub fn render_with_upload(
        &self,
        uid: &str,
        movie: &str,
        params: Value,
        upload: Value,
    ) -> Value {
        let (status, body) = json(
            self.request(Method::POST, &format!("/v2/render/{uid}"))
                .json(&serde_json::json!({ "movie": movie, "params": params, "upload": upload }))
                .send()
                .expect("POST render"),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A counter or gauge of `/metrics` (its name with labels, as
    /// printed), 0 when absent.
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.anonymous().get("/metrics").text().expect("metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// Polls the status of `token` until every entry of its `uploads` is
    /// `done` or `failed`, or `secs` pass (then it panics); returns the
    /// entries.
    pub fn wait_uploads(&self, token: &str, secs: u64) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, body) = json(self.get(&format!("/v2/render/{token}/status")));
            assert_eq!(status, 200, "{body}");
            let uploads = body["uploads"].as_array().expect("uploads").clone();
            if uploads
                .iter()
                .all(|u| matches!(u["state"].as_str(), Some("done" | "failed")))
            {
                return uploads;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the uploads of {token} not finished in {secs} s: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The status and JSON body of a response.
pub fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}, not JSON: {text:?}"));
    (status, body)
}

/// Asserts an error response: its status, its stable code, and that its
/// message is not empty.
pub fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "an error is JSON"
    );
    let (got, body) = json(response);
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Deterministic pseudo-random bytes, generated as they are read, so
/// large bodies never sit in the test's memory either.
pub struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    pub fn new(seed: u64, len: u64) -> Noise {
        Noise {
            state: seed | 1,
            left: len,
        }
    }

    fn next_byte(&mut self) -> u8 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
    }
}

impl std::io::Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            *b = self.next_byte();
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `len` bytes of [`Noise`] as a vector, for small bodies.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    std::io::Read::read_to_end(&mut Noise::new(seed, len as u64), &mut v).expect("noise");
    v
}

/// Sends `method target` over a raw connection, byte for byte. HTTP client
/// libraries normalise `..` and `%2E%2E` away, but an attacker's client
/// does not. Returns the status and the body.
pub fn raw_request(base: &str, method: &str, target: &str, key: Option<&Key>) -> (u16, String) {
    use base64::Engine;
    let encode = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(k) = key {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            encode(format!("{}:{}", k.key, k.secret))
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every file under `dir`, recursively (none when `dir` is missing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub use media::ffmpeg;

/// A small HTTP server on loopback that answers `GET path` with the bytes
/// given for it and 404 otherwise, for the first 200 connections: the
/// test's own stand-in for remote sources. Returns its base URL and how
/// many connections it has had.
pub fn serve_files(
    files: Vec<(String, Vec<u8>)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read_half);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("");
            let (status, body): (&str, &[u8]) = match files.iter().find(|(p, _)| p == path) {
                Some((_, bytes)) if line.starts_with("GET ") => ("200 OK", bytes),
                _ => ("404 Not Found", b"no"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    (url, hits)
}
