//! The time JWTs are issued and checked by.
//!
//! Debug builds read an offset in seconds from the file named by
//! `CLIPSTREAM_TEST_PIXOP_CLOCK_FILE` on every call (not `CLIPSTREAM_PIXOP_*`,
//! which is the `[pixop]` settings section), so an end-to-end test can
//! move the server's token clock forward or back while it runs (expiry,
//! not-before). Release builds ignore the variable: their clock is the
//! system's.

pub fn now_secs() -> i64 {
    let real = clipstream_storage::unix_now() as i64;
    real.saturating_add(offset())
}

#[cfg(debug_assertions)]
fn offset() -> i64 {
    let Some(path) = std::env::var_os("CLIPSTREAM_TEST_PIXOP_CLOCK_FILE") else {
        return 0;
    };
    // A missing or unreadable file is no offset: the test has not set one.
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0)
}

#[cfg(not(debug_assertions))]
fn offset() -> i64 {
    0
}
