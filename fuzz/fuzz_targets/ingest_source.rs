//! The Ingest API's `POST sources` body: any bytes. An accepted request
//! fetches an http(s) URL, calls back to one, asks for at most
//! `MAX_RENDITIONS` renditions within the size limits, and each rendition
//! reads back the same from the JSON kept with the source (what a restart
//! reads); a refusal names where, and says why.
#![no_main]

// The server uses more of the module than the target does.
#[allow(dead_code)]
#[path = "../../server/src/shotstack/ingest/request.rs"]
mod request;

use libfuzzer_sys::fuzz_target;
use request::{parse_source, stored_rendition, SizeLimits, MAX_RENDITIONS};

const LIMITS: SizeLimits = SizeLimits {
    video: (3840, 2160),
    image: (4096, 4096),
};

fuzz_target!(|data: &[u8]| {
    match parse_source(data, LIMITS) {
        Ok(request) => {
            assert!(matches!(request.url.scheme(), "http" | "https"));
            if let Some(callback) = &request.callback {
                assert!(matches!(callback.scheme(), "http" | "https"));
            }
            assert!(request.renditions.len() <= MAX_RENDITIONS);
            for rendition in &request.renditions {
                let again = stored_rendition(&rendition.raw, LIMITS)
                    .expect("an accepted rendition reads back");
                assert_eq!(&again, rendition);
                assert!(rendition.quality.is_none_or(|q| (1..=100).contains(&q)));
                let (w, h) = LIMITS.image;
                assert!(rendition.width.is_none_or(|x| x <= w.max(LIMITS.video.0)));
                assert!(rendition.height.is_none_or(|x| x <= h.max(LIMITS.video.1)));
            }
        }
        Err(refusal) => assert!(!refusal.message.is_empty()),
    }
});
