//! nginx in front of Clipstream nodes on loopback, from the deployment
//! example `conf/deploy/nginx.conf` itself: its load-balancing rules
//! (videos hashed on their token, the rest round robin, unbuffered
//! streams and uploads) run as written; [`render`] changes only what ties
//! the file to a real machine (the `user`, `worker_processes`, `pid`, the
//! log paths, `listen`, the upstreams' `server` lines) and adds
//! temporary-file paths, so nginx runs as any user in a temporary
//! directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{as_root, free_port};

/// How long nginx may take to listen (a few milliseconds here).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The deployment example, `conf/deploy/nginx.conf`.
pub fn deploy_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/deploy/nginx.conf")
}

/// `conf` (an nginx.conf shaped like the deployment example) made to run
/// in `dir` on `127.0.0.1:listen`, in front of `upstreams`
/// (`http://127.0.0.1:PORT` or `127.0.0.1:PORT`): every upstream block
/// lists them all, with the parameters (`max_fails`, …) of its first
/// `server` line. Panics when a line it must change is missing, so a
/// reshaped example is noticed here, not by a test that misroutes.
pub fn render(conf: &str, dir: &Path, listen: u16, upstreams: &[String]) -> String {
    assert!(!upstreams.is_empty(), "nginx needs at least one upstream");
    let d = dir.display();
    let addresses: Vec<&str> = upstreams
        .iter()
        .map(|u| u.trim_start_matches("http://").trim_end_matches('/'))
        .collect();
    let mut out = vec!["daemon off;".to_owned()];
    let (mut in_upstream, mut upstream_servers_done) = (false, false);
    let mut seen = Seen::default();
    for line in conf.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        let word = t.split_whitespace().next().unwrap_or("");
        if word == "upstream" {
            in_upstream = true;
            upstream_servers_done = false;
            seen.upstreams += 1;
        } else if in_upstream && t.starts_with('}') {
            in_upstream = false;
        }
        match word {
            "user" => {
                // As root, nginx's workers would run as `nobody`, which
                // cannot enter the temporary directory; as anyone else
                // the directive is refused.
                if as_root() {
                    out.push(format!("{indent}user root;"));
                }
                seen.user = true;
            }
            "worker_processes" => out.push(format!("{indent}worker_processes 2;")),
            "pid" => out.push(format!("{indent}pid {d}/nginx.pid;")),
            "error_log" => out.push(format!("{indent}error_log {d}/error.log warn;")),
            "access_log" => out.push(format!("{indent}access_log {d}/access.log;")),
            "listen" => {
                out.push(format!("{indent}listen 127.0.0.1:{listen};"));
                seen.listen += 1;
            }
            "server" if in_upstream => {
                if !upstream_servers_done {
                    // `server HOST:PORT params...;`
                    let params = t
                        .trim_end_matches(';')
                        .split_whitespace()
                        .skip(2)
                        .collect::<Vec<_>>()
                        .join(" ");
                    for a in &addresses {
                        out.push(format!("{indent}server {a} {params};"));
                    }
                    upstream_servers_done = true;
                    seen.upstream_servers += 1;
                }
            }
            "http" if t.trim_end() == "http {" => {
                out.push(line.to_owned());
                for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                    out.push(format!("    {kind}_temp_path {d}/{kind}_temp;"));
                }
                seen.http = true;
            }
            _ => out.push(line.to_owned()),
        }
    }
    assert!(
        seen.user && seen.http && seen.listen == 1 && seen.upstreams > 0,
        "{} is not shaped as expected (user, http block, one listen, upstreams): {seen:?}",
        deploy_config_path().display()
    );
    assert_eq!(
        seen.upstream_servers, seen.upstreams,
        "every upstream block lists its servers"
    );
    out.join("\n") + "\n"
}

/// What [`render`] found.
#[derive(Debug, Default)]
struct Seen {
    user: bool,
    http: bool,
    listen: usize,
    upstreams: usize,
    upstream_servers: usize,
}

/// `nginx -t` on `conf` written in `dir` (a temporary directory of the
/// caller's): the output, success or not.
pub fn check(conf: &str, dir: &Path) -> std::process::Output {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    nginx(dir)
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run nginx -t (Debian's nginx-light)")
}

/// `nginx -p DIR -e DIR/error.log`: everything under `dir`, the log of
/// its start included (before the config names its own).
fn nginx(dir: &Path) -> Command {
    let mut c = Command::new("nginx");
    c.arg("-p").arg(dir).arg("-e").arg(dir.join("error.log"));
    c
}

/// A running nginx with the deployment example's rules, stopped on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    /// Starts nginx on a free loopback port in front of `upstreams` (the
    /// nodes' base URLs; the consistent hash places each on its ring by
    /// its address, so which node a video goes to depends on the ports,
    /// not on the order). The port is picked free and bound a moment
    /// later, when a test running beside it may have taken it: a start
    /// that exits at once is tried again on a new port, three times at
    /// most.
    pub fn start(upstreams: &[String]) -> Nginx {
        let mut exits = Vec::new();
        for _ in 0..3 {
            match Self::start_once(upstreams) {
                Ok(nginx) => return nginx,
                Err(exit) => exits.push(exit),
            }
        }
        panic!(
            "nginx exited at each of three starts:\n{}",
            exits.join("\n---\n")
        );
    }

    fn start_once(upstreams: &[String]) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let template =
            std::fs::read_to_string(deploy_config_path()).expect("conf/deploy/nginx.conf");
        let conf = render(&template, dir.path(), port, upstreams);
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = nginx(dir.path())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start nginx (Debian's nginx-light): {e}"));
        let mut nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited ({status}):\n{}", nginx.log()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within {START_TIMEOUT:?}:\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its error log and what it wrote on stderr.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        read("stderr.log") + &read("error.log")
    }

    /// Its access log (one line per request, nginx's combined format).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too; SIGKILL would
        // leave them running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        super::reap(&mut self.child, STOP_TIMEOUT);
    }
}
