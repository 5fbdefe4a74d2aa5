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
