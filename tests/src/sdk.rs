//! Shotstack's official SDKs, driven by the small scripts in `tests/sdk/`
//! (one per API area), which use them as Shotstack's documentation shows
//! and print one JSON line: what the SDK returned (`{"ok": …}`) or the
//! exception it raised (`{"exception": <class>, "status": <HTTP status>}`).
//! The SDKs come from `scripts/peers.sh` (PyPI and npm `shotstack-sdk`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::peers;

fn driver(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk").join(name)
}

fn run(mut cmd: Command) -> Value {
    let out = cmd.output().expect("run the SDK driver");
    assert!(
        out.status.success(),
        "the driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs `tests/sdk/<script>` (a `.py` file) with the Python SDK.
pub fn python(script: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(driver(script))
        .args(args)
        .env("PYTHONPATH", peers::dir().join("python"))
        .env("NO_PROXY", "127.0.0.1");
    run(cmd)
}

/// Runs `tests/sdk/<script>` (a `.js` file) with the Node SDK.
pub fn node(script: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new("node");
    cmd.arg(driver(script))
        .args(args)
        .env("NODE_PATH", peers::dir().join("node/node_modules"))
        .env("NO_PROXY", "127.0.0.1");
    run(cmd)
}
