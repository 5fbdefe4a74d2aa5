//! PostgreSQL 15 (Debian's `postgresql-15`): a throw-away cluster in a
//! temporary directory, listening on a free loopback port, for the
//! PostgreSQL repository's tests (issue 21).
//!
//! PostgreSQL refuses to run as root, and the tests usually run as root
//! in CI: the cluster's directory then belongs to the `postgres` user and
//! its programs run as that user (`runuser -u postgres --`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{as_root, free_port};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a fresh cluster may take to accept connections (~0.3 s here).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running PostgreSQL cluster, stopped and removed on drop. Its only
/// role is `postgres`, trusted without a password.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// Creates a cluster and starts it on a free port. The port is picked
    /// free and bound a moment later, when a test running beside it may
    /// have taken it: a start that exits at once is tried again on a new
    /// port, three times at most.
    pub fn start() -> Postgres {
        let mut exits = Vec::new();
        for _ in 0..3 {
            match Self::start_once() {
                Ok(server) => return server,
                Err(exit) => exits.push(exit),
            }
        }
        panic!(
            "PostgreSQL exited at each of three starts:\n{}",
            exits.join("\n---\n")
        );
    }

    fn start_once() -> Result<Postgres, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        if as_root() {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postgres: {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let out = program("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        if as_root() {
            Command::new("chown")
                .arg("postgres:")
                .arg(dir.path().join("postgres.log"))
                .status()
                .expect("run chown");
        }
        let child = program("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            // Its unix socket goes in the cluster's directory, not in
            // /var/run/postgresql (which may not exist).
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // A throw-away cluster: durability only slows the tests.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start postgres: {e}"));
        let mut server = Postgres { child, dir, port };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls `pg_isready` until the cluster accepts connections; an exit
    /// of the server is an `Err` with its log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("postgres exited ({status}):\n{}", self.log()));
            }
            let ready = Command::new(Path::new(BIN).join("pg_isready"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-t", "1"])
                .arg("-p")
                .arg(self.port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process (its backends are its children): the
    /// benchmark reads its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The connection string of database `postgres` (libpq key=value
    /// form, as tokio-postgres parses it).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The connection string of database `name`.
    pub fn url_of(&self, name: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={name}",
            self.port
        )
    }

    /// Creates an empty database `name` (letters, digits and `_`) and
    /// returns its connection string: one cluster serves several tests
    /// that each need a repository of their own.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "a plain database name: {name:?}"
        );
        let out = Command::new(Path::new(BIN).join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg(name)
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url_of(name)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // `pg_ctl stop -m immediate` signals the postmaster itself (the
        // child is `runuser`, which may not pass signals on), and waits
        // for it to go, within its own timeout.
        let _ = program("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["stop", "-m", "immediate", "-w", "-t", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        super::reap(&mut self.child, Duration::from_secs(10));
    }
}

/// A PostgreSQL program, run as `postgres` when the tests run as root.
fn program(name: &str) -> Command {
    let path = Path::new(BIN).join(name);
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}
