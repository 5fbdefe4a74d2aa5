//! The studio (CONTRACT section 14): the browser UI of `web/`, bundled by
//! `scripts/web.sh` and compiled into the binary (see `build.rs`). `/` is
//! its page and `/studio/<file>` its script, styles and icons; every API
//! keeps its path.

use std::borrow::Cow;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use clipstream_storage::hex;
use rust_embed::RustEmbed;

use crate::http::entity::{respond_bytes, Meta};
use crate::http::error::ApiError;
use crate::http::resource;

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/studio"]
struct Files;

/// Only the studio's own files run or style the page: no inline script or
/// style, no other origin, no framing. Media and pictures come from this
/// server too: `blob:` for the asset previews, fetched with the key and
/// shown from memory (an <img> or <video> cannot send it), and `data:`
/// for CodeMirror's lint icons, which its stylesheet embeds.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
    font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Revalidated on every load (a 304 costs a round trip, no body), so a new
/// binary's studio is never mixed with an old cached script.
const CACHE_CONTROL: &str = "no-cache";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/", "GET, HEAD")
            .route(web::get().to(index))
            .route(web::head().to(index)),
    )
    .service(
        resource("/studio/{file:.*}", "GET, HEAD")
            .route(web::get().to(file))
            .route(web::head().to(file)),
    );
}

async fn index(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "index.html")
}

async fn file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    // index.html is the page at `/`, not a second address of it.
    if path.as_str() == "index.html" {
        return Err(ApiError::NoRoute(req.path().to_owned()));
    }
    serve(&req, &path)
}

fn serve(req: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    let Some(file) = Files::get(name) else {
        if Files::get("index.html").is_none() {
            return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "code": "studio_not_built",
                "message": "the studio was not built into this binary: run scripts/web.sh, then build again (scripts/serve.sh does both)",
            })));
        }
        return Err(ApiError::NoRoute(req.path().to_owned()));
    };
    let meta = Meta {
        len: file.data.len() as u64,
        etag: hex(&file.metadata.sha256_hash()),
        modified: file.metadata.last_modified().unwrap_or(0),
        content_type: content_type(name),
        cache_control: CACHE_CONTROL,
    };
    // A release binary's files are static: shared, not copied per request
    // (a debug build reads them from disk, owned).
    let bytes = match file.data {
        Cow::Borrowed(data) => Bytes::from_static(data),
        Cow::Owned(data) => Bytes::from(data),
    };
    let mut response = respond_bytes(req, &meta, &bytes);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// The type of a studio file by its extension; its text is UTF-8.
fn content_type(name: &str) -> String {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    match mime.type_() {
        mime_guess::mime::TEXT => format!("{}; charset=utf-8", mime.essence_str()),
        _ => mime.essence_str().to_owned(),
    }
}
