//! A render request's `upload`: any bytes as JSON, then as upload tasks.
//! Accepted tasks are ones the server can write down and read back to
//! the same tasks (what a restart reads), whose result known at once is
//! computed without panicking, and which pass the check the service
//! makes again before running them; a refusal names a field under
//! `upload`.
#![no_main]

#[path = "../../server/src/upload/task.rs"]
#[allow(dead_code)]
mod task;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use task::{check_again, parse, ServerCredentials, Task};

/// What the server holds: keys for two buckets on its own S3 host, and
/// auth secrets for Dropbox and Facebook, and a Mux token.
fn own() -> ServerCredentials<'static> {
    static BUCKETS: LazyLock<Vec<String>> =
        LazyLock::new(|| vec!["my-videos".to_owned(), "renders".to_owned()]);
    ServerCredentials {
        aws: true,
        aws_buckets: &BUCKETS,
        aws_s3host: "http://127.0.0.1:8333",
        dropbox_auth_secret: "dropbox-secret",
        youtube_auth_secret: "",
        facebook_auth_secret: "facebook-secret",
        facebook_endpoint: "https://graph.facebook.com",
        mux: true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match parse(&value, &own()) {
        Ok(tasks) => {
            assert!(!matches!(value, serde_json::Value::Array(ref a) if a.len() != tasks.len()));
            for t in tasks {
                let written = serde_json::to_value(&t).expect("a task is written");
                let read: Task = serde_json::from_value(written).expect("and read back");
                assert_eq!(read, t);
                // The service checks a kept task again before it runs:
                // one that was accepted passes.
                assert!(check_again(&read, &own()).is_ok(), "{read:?}");
                let _ = t.destination.known_at_once();
            }
        }
        Err(invalid) => {
            assert!(invalid.path.starts_with("upload"), "{}", invalid.path);
            assert!(!invalid.message.is_empty());
        }
    }
});
