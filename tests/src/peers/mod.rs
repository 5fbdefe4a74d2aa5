//! Real servers of the protocols uploads speak, started by the tests on
//! loopback: each starts its process on a free port with a temporary
//! directory, waits until it answers, and stops it when dropped.

pub mod apis;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder `scripts/peers.sh` installs the peers into (it runs once
/// per test process; it is quick when they are there).
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .expect("run scripts/peers.sh");
        assert!(
            out.status.success(),
            "scripts/peers.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// A free loopback port (bound, then released for the peer to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

pub mod azurite;
pub mod ftp;
pub mod nginx;
pub mod postgres;
pub mod receiver;
pub mod seaweedfs;
pub mod tls;

/// Whether the tests run as root (the effective uid, the third field of
/// `Uid:`, without a libc binding): some servers refuse root, others
/// need a `user` directive then.
pub(crate) fn as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Waits up to `within` for `child`, asked to stop already, to exit;
/// kills it if it has not.
pub(crate) fn reap(child: &mut std::process::Child, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
    }
}
