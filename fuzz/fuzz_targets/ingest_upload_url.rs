//! The Ingest API's signed upload URL as a client sends it back: any bytes,
//! split at the first NUL, as the `<id>` path segment and the query. An
//! accepted query has exactly one `expires` and one `signature`, which
//! print back to what was parsed (the URL the server prints for them reads
//! back the same); an accepted id is a lowercase UUID.
#![no_main]

#[path = "../../server/src/shotstack/ingest/signed_url.rs"]
mod signed_url;

use libfuzzer_sys::fuzz_target;
use signed_url::{hex, is_source_id, parse_query, signed_message, PATH};

fuzz_target!(|data: &[u8]| {
    let (id, query) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let id = String::from_utf8_lossy(id);
    if is_source_id(&id) {
        assert_eq!(id.len(), 36);
        assert!(!id.contains('/') && !id.contains('.'));
    }
    let query = String::from_utf8_lossy(query);
    match parse_query(&query) {
        Ok(q) => {
            assert_eq!(query.matches("expires=").count(), 1, "{query}");
            assert_eq!(query.matches('&').count(), 1, "{query}");
            let sig = hex(&q.signature);
            assert!(query.to_ascii_lowercase().contains(&sig));
            assert!(query.contains(&format!("expires={}", q.expires)) || query.contains("expires=0"));
            assert!(signed_message(&id, q.expires).ends_with(&q.expires.to_string()));
            // The URL the server prints for it reads back to the same.
            let url = format!("{PATH}{id}?expires={}&signature={sig}", q.expires);
            let (_, printed) = url.rsplit_once('?').expect("a query");
            assert_eq!(parse_query(printed).as_ref(), Ok(&q));
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
