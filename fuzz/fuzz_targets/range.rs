//! Range and conditional-request handling of served entities (assets and
//! cached renders): any Range, If-Range, If-Match, If-None-Match,
//! If-Modified-Since and If-Unmodified-Since values, against any length.
//! The answer must be a coherent response: a 206 is one range inside the
//! entity with a matching Content-Range and exactly that many body bytes.
//!
//! The server is a binary crate, so its entity module is included here by
//! path; it depends only on actix-web and tokio.
#![no_main]

#[path = "../../server/src/http/entity.rs"]
#[allow(dead_code)]
mod entity;

use actix_web::body::MessageBody;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use libfuzzer_sys::fuzz_target;

const HEADERS: [&str; 6] = [
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let len = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let head = data[2] & 1 == 1;
    let text = String::from_utf8_lossy(&data[3..]);
    let mut req = if head {
        TestRequest::default().method(Method::HEAD)
    } else {
        TestRequest::get()
    };
    // One header value per line, in HEADERS order.
    for (name, value) in HEADERS.iter().zip(text.split('\n')) {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(value) {
            req = req.insert_header((*name, value));
        }
    }
    let req = req.to_http_request();
    let meta = entity::Meta {
        len,
        etag: "abc".into(),
        modified: 1_700_000_000,
        content_type: "video/mp4".into(),
        cache_control: "public",
    };
    let body = std::io::Cursor::new(vec![7u8; len as usize]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let response = rt
        .block_on(entity::respond(&req, &meta, body))
        .expect("respond");
    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 206 | 304 | 412 | 416),
        "status {status}"
    );
    let content_range = response
        .headers()
        .get("content-range")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.into_body();
    let size = match body.size() {
        actix_web::body::BodySize::Sized(n) => n,
        actix_web::body::BodySize::None => 0,
        actix_web::body::BodySize::Stream => panic!("unsized body"),
    };
    match status {
        206 => {
            let cr = content_range.expect("a 206 has Content-Range");
            let spec = cr.strip_prefix("bytes ").expect("bytes unit");
            let (range, total) = spec.split_once('/').expect("a / total");
            assert_eq!(total.parse::<u64>().expect("total"), len);
            let (a, b) = range.split_once('-').expect("first-last");
            let (a, b): (u64, u64) = (a.parse().expect("first"), b.parse().expect("last"));
            assert!(a <= b && b < len, "{cr} for {len}");
            assert_eq!(size, b - a + 1, "{cr}");
        }
        200 => assert_eq!(size, len),
        416 => assert_eq!(
            content_range.as_deref(),
            Some(format!("bytes */{len}").as_str())
        ),
        _ => {}
    }
    if !head && status == 206 {
        let bytes = rt
            .block_on(actix_web::body::to_bytes(body))
            .unwrap_or_else(|_| panic!("body"));
        assert_eq!(bytes.len() as u64, size);
    }
});
