//! The Shotstack API's untrusted text: any bytes, split at the first NUL,
//! as an `x-api-key` header value and as the probe's percent-encoded
//! `{url}` path segment. An accepted key is the header's own text split
//! once; an accepted URL is http(s) with a host, came from one segment,
//! and is stable when parsed again (what the fetcher parses).
#![no_main]

#[path = "../../server/src/shotstack/parse.rs"]
mod parse;

use libfuzzer_sys::fuzz_target;
use parse::{probe_url, split_key};

fuzz_target!(|data: &[u8]| {
    let (header, segment) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    if let Some((key, secret)) = split_key(&header) {
        assert!(!key.is_empty() && !secret.is_empty());
        assert!(!key.contains(':'));
        assert_eq!(format!("{key}:{secret}"), header.trim());
    }
    let segment = String::from_utf8_lossy(segment);
    match probe_url(&segment) {
        Ok(url) => {
            assert!(!segment.contains('/'));
            assert!(matches!(url.scheme(), "http" | "https"));
            assert!(url.host().is_some());
            let again = url::Url::parse(url.as_str()).expect("an accepted URL parses again");
            assert_eq!(again, url);
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
