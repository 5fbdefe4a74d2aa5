//! Structured logs with `tracing`, as text for people or JSON for
//! collectors (`log.format`), filtered by `log.level` or `RUST_LOG`.

use tracing::Level;
use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

pub fn init(log: &Log) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (never in the binary) is harmless, so its error is not.
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Whether every request gets its own span: only when logs are at
/// `debug` or finer. The tracing middleware costs every request a UUID (a
/// getrandom(2) syscall) and a root span whose fields include the matched
/// route pattern, which actix finds by running each route's regex again:
/// at the default `info` a cached `bytes=0-1` ran at 0.39× nginx with it
/// and 0.77× without. What happens to a request is still logged at
/// `info` by the handlers that act (a project made, a render started).
pub fn request_spans() -> bool {
    tracing::enabled!(Level::DEBUG)
}
