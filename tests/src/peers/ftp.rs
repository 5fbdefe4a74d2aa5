//! An FTP server (pyftpdlib) on loopback with a temporary home, for the
//! ftp upload tests. It logs what happened to a file the tests read:
//! connections, commands (without their secrets), logins, files received.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long pyftpdlib may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The server: logs events one a line; prints its port once listening.
/// `auth_failed_timeout` is pyftpdlib's pause after a wrong password
/// (3 s), which only slows the tests down.
///
/// With a read limit (bytes per second) it takes files that slowly, so
/// that a test can cut an upload midway.
///
/// With a certificate it is an FTPS server (RFC 4217, explicit `AUTH
/// TLS`) that takes no login and opens no data connection without TLS
/// (`tls_control_required`, `tls_data_required`), and it logs each TLS
/// handshake that completes: `tls control`, `tls data`. Every server logs
/// how each password came: `password tls` or `password plain` (a plain
/// server's passwords come in plain text, the only way it takes them).
const SCRIPT: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

home, log_path, masquerade, certfile, keyfile, read_limit = sys.argv[1:7]
users = sys.argv[7:]
log = open(log_path, "a", buffering=1)
authorizer = DummyAuthorizer()
for i in range(0, len(users), 3):
    authorizer.add_user(users[i], users[i + 1], home, perm=users[i + 2])

if certfile:
    from pyftpdlib.handlers import TLS_FTPHandler, TLS_DTPHandler

    class Data(TLS_DTPHandler):
        def handle_ssl_established(self):
            log.write("tls data\n")

    class Base(TLS_FTPHandler):
        tls_control_required = True
        tls_data_required = True
        dtp_handler = Data
        def handle_ssl_established(self):
            log.write("tls control\n")

    Base.certfile = certfile
    Base.keyfile = keyfile
elif read_limit:
    from pyftpdlib.handlers import ThrottledDTPHandler

    class Slow(ThrottledDTPHandler):
        pass

    Slow.read_limit = int(read_limit)

    class Base(FTPHandler):
        dtp_handler = Slow
else:
    Base = FTPHandler

class Handler(Base):
    auth_failed_timeout = 0
    def on_connect(self):
        log.write("connect\n")
    def pre_process_command(self, line, cmd, arg):
        shown = arg if cmd in ("STOR", "RNFR", "RNTO", "MKD", "DELE", "TYPE", "AUTH", "PBSZ", "PROT") else ""
        log.write(("cmd %s %s" % (cmd, shown or "")).rstrip() + "\n")
        if cmd == "PASS":
            secure = getattr(self, "_ssl_established", False)
            log.write("password %s\n" % ("tls" if secure else "plain"))
        return super().pre_process_command(line, cmd, arg)
    def on_login(self, username):
        log.write("login %s\n" % username)
    def on_login_failed(self, username, password):
        log.write("failed %s\n" % username)
    def on_file_received(self, file):
        log.write("received %s\n" % file)
    def on_incomplete_file_received(self, file):
        log.write("incomplete %s\n" % file)

Handler.authorizer = authorizer
if masquerade:
    Handler.masquerade_address = masquerade
server = FTPServer(("127.0.0.1", 0), Handler)
server.max_cons = 64
print(server.address[1], flush=True)
server.serve_forever()
"#;

/// Every permission of pyftpdlib: list, read, write, rename, delete,
/// make directories…
pub const ALL: &str = "elradfmwMT";

/// A running pyftpdlib. Dropping it kills the process.
pub struct FtpServer {
    child: Child,
    pub port: u16,
    /// The user with every permission, and their password.
    pub user: String,
    pub password: String,
    dir: tempfile::TempDir,
}

impl FtpServer {
    /// A server with one user (`uploader`) who may do anything.
    pub fn start() -> FtpServer {
        Self::start_with(None, &[])
    }

    /// A server whose PASV replies name `masquerade` instead of its own
    /// address (as one behind NAT does, or a hostile one), with extra
    /// users `(name, password, permissions)`.
    pub fn start_with(masquerade: Option<&str>, extra_users: &[(&str, &str, &str)]) -> FtpServer {
        Self::spawn(masquerade, extra_users, None, 0)
    }

    /// An FTPS server with the certificate `cert` (and its `key`): TLS
    /// on the control connection before any login, and on every data
    /// connection (`PROT P`).
    pub fn start_tls(cert: &Path, key: &Path) -> FtpServer {
        Self::spawn(None, &[], Some((cert, key)), 0)
    }

    /// A plain server that reads files at `bytes_per_sec` at most.
    pub fn start_slow(bytes_per_sec: u32) -> FtpServer {
        Self::spawn(None, &[], None, bytes_per_sec)
    }

    fn spawn(
        masquerade: Option<&str>,
        extra_users: &[(&str, &str, &str)],
        tls: Option<(&Path, &Path)>,
        read_limit: u32,
    ) -> FtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("ftp home");
        let log = dir.path().join("events.log");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let user = "uploader".to_owned();
        let password = "ftp-pass-7".to_owned();
        let mut command = Command::new("python3");
        command
            .arg("-c")
            .arg(SCRIPT)
            .arg(&home)
            .arg(&log)
            .arg(masquerade.unwrap_or(""))
            .arg(tls.map(|(cert, _)| cert.as_os_str()).unwrap_or_default())
            .arg(tls.map(|(_, key)| key.as_os_str()).unwrap_or_default())
            .arg(if read_limit > 0 {
                read_limit.to_string()
            } else {
                String::new()
            })
            .args([&user, &password, ALL])
            .env("PYTHONPATH", super::dir().join("python"))
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (name, pass, perm) in extra_users {
            command.args([name, pass, perm]);
        }
        let mut child = command.spawn().expect("start python3 (pyftpdlib)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.trim().parse::<u16>().is_ok() => line.trim().parse().unwrap_or(0),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pyftpdlib did not start: {}",
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
                );
            }
        };
        FtpServer {
            child,
            port,
            user,
            password,
            dir,
        }
    }

    /// `127.0.0.1:port`, as an ftp task's `host`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The users' home: what is in it is what was uploaded.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Every file in the home, as paths relative to it.
    pub fn files(&self) -> Vec<String> {
        let home = self.home();
        let mut files: Vec<String> = crate::files_under(&home)
            .iter()
            .filter_map(|p| p.strip_prefix(&home).ok().map(Path::to_path_buf))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    /// What happened, in order: `connect`, `cmd STOR name`, `login user`,
    /// `failed user`, `password tls|plain`, `tls control`, `tls data`,
    /// `received /abs/path`, ….
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("events.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The commands received (`cmd PASV`, `cmd STOR x`, …), without `cmd `.
    pub fn commands(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| e.strip_prefix("cmd ").map(str::to_owned))
            .collect()
    }

    /// How many times a command (its name alone) was received.
    pub fn count(&self, command: &str) -> usize {
        self.commands()
            .iter()
            .filter(|c| c.split(' ').next() == Some(command))
            .count()
    }

    /// Events of one kind (`login`, `failed`, `connect`, …).
    pub fn events_of(&self, kind: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.split(' ').next() == Some(kind))
            .collect()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
