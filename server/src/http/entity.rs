//! Serving a stored entity (an asset now, a cached render later) with the
//! HTTP semantics viewers and caches rely on: strong ETag, Last-Modified,
//! HEAD, a single byte range (206/416), If-None-Match / If-Modified-Since
//! (304), If-Match / If-Unmodified-Since (412) and If-Range.
//!
//! Header parsing is actix-web's typed headers; this module owns only the
//! decision (RFC 9110 section 13.2.2 order) and streaming the chosen bytes.

use std::io::SeekFrom;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, ByteRangeSpec, ContentRange, ContentRangeSpec, EntityTag, Header, HttpDate, IfMatch,
    IfModifiedSince, IfNoneMatch, IfRange, IfUnmodifiedSince, Range,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// Read size when streaming a body: large enough for few syscalls, small
/// enough that many concurrent downloads stay cheap.
const READ_BUF: usize = 64 * 1024;

/// Piece size of a body sent from memory (see [`respond_bytes`]). actix
/// copies pieces into a connection's write buffer until it holds 32 KiB,
/// and replaces a buffer grown past 128 KiB with a fresh one after each
/// flush: pieces must stay well under that, or every piece costs a large
/// allocation (an mmap and its page faults) — 128 KiB pieces halved the
/// rate of 500 concurrent full GETs.
const SEND_CHUNK: usize = 64 * 1024;

/// What is known about an entity before its body is read.
#[derive(Debug, Clone)]
pub struct Meta {
    pub len: u64,
    /// The opaque part of a strong ETag (without quotes).
    pub etag: String,
    /// Seconds since the Unix epoch.
    pub modified: u64,
    pub content_type: String,
    pub cache_control: &'static str,
}

/// What the request asks for, once its preconditions are checked.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    NotModified,
    PreconditionFailed,
    Full,
    /// Inclusive byte range.
    Partial(u64, u64),
    Unsatisfiable,
}

impl Meta {
    fn etag(&self) -> EntityTag {
        EntityTag::new_strong(self.etag.clone())
    }

    fn last_modified(&self) -> HttpDate {
        (UNIX_EPOCH + Duration::from_secs(self.modified)).into()
    }

    fn answer(&self, req: &HttpRequest) -> Answer {
        let etag = self.etag();
        let modified = UNIX_EPOCH + Duration::from_secs(self.modified);
        // actix parses an absent list header as an empty list, so presence
        // is checked first.
        let has = |name| req.headers().contains_key(name);
        if has(header::IF_MATCH) {
            let holds = match IfMatch::parse(req) {
                Ok(IfMatch::Any) => true,
                Ok(IfMatch::Items(tags)) => tags.iter().any(|t| t.strong_eq(&etag)),
                Err(_) => false,
            };
            if !holds {
                return Answer::PreconditionFailed;
            }
        } else if let Ok(IfUnmodifiedSince(date)) = IfUnmodifiedSince::parse(req) {
            if modified > SystemTime::from(date) {
                return Answer::PreconditionFailed;
            }
        }
        if has(header::IF_NONE_MATCH) {
            let matched = match IfNoneMatch::parse(req) {
                Ok(IfNoneMatch::Any) => true,
                Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&etag)),
                Err(_) => false,
            };
            if matched {
                return Answer::NotModified;
            }
        } else if let Ok(IfModifiedSince(date)) = IfModifiedSince::parse(req) {
            if modified <= SystemTime::from(date) {
                return Answer::NotModified;
            }
        }
        if req.method() != Method::GET || !self.if_range_holds(req, &etag) {
            return Answer::Full;
        }
        match Range::parse(req) {
            Ok(Range::Bytes(specs)) => self.select(&specs),
            // An unparseable or non-byte Range is ignored (RFC 9110 14.2).
            _ => Answer::Full,
        }
    }

    fn if_range_holds(&self, req: &HttpRequest, etag: &EntityTag) -> bool {
        if !req.headers().contains_key(header::IF_RANGE) {
            return true;
        }
        match IfRange::parse(req) {
            Ok(IfRange::EntityTag(tag)) => tag.strong_eq(etag),
            Ok(IfRange::Date(date)) => {
                SystemTime::from(date) == SystemTime::from(self.last_modified())
            }
            Err(_) => false,
        }
    }

    /// One range is served as asked. Several are answered with the whole
    /// entity, which RFC 9110 allows and every player handles; players ask
    /// for one range at a time.
    fn select(&self, specs: &[ByteRangeSpec]) -> Answer {
        match specs {
            [one] => match one.to_satisfiable_range(self.len) {
                Some((start, end)) => Answer::Partial(start, end),
                None => Answer::Unsatisfiable,
            },
            _ if specs
                .iter()
                .all(|s| s.to_satisfiable_range(self.len).is_none()) =>
            {
                Answer::Unsatisfiable
            }
            _ => Answer::Full,
        }
    }

    fn validators(&self, builder: &mut HttpResponseBuilder) {
        builder
            .insert_header(header::ETag(self.etag()))
            .insert_header(header::LastModified(self.last_modified()))
            .insert_header((header::CACHE_CONTROL, self.cache_control))
            .insert_header((header::ACCEPT_RANGES, "bytes"));
    }
}

/// The response once its head is decided: finished (no body to send), or
/// `len` bytes of the entity from `start` to follow the head.
enum Prepared {
    Finished(HttpResponse),
    Body {
        builder: HttpResponseBuilder,
        start: u64,
        len: u64,
    },
}

fn prepare(req: &HttpRequest, meta: &Meta) -> Prepared {
    let answer = meta.answer(req);
    let mut builder = HttpResponse::build(match answer {
        Answer::NotModified => StatusCode::NOT_MODIFIED,
        Answer::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        Answer::Full => StatusCode::OK,
        Answer::Partial(..) => StatusCode::PARTIAL_CONTENT,
        Answer::Unsatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
    });
    meta.validators(&mut builder);
    let (start, len) = match answer {
        Answer::NotModified | Answer::PreconditionFailed => {
            return Prepared::Finished(builder.finish())
        }
        Answer::Unsatisfiable => {
            builder.insert_header(ContentRange(ContentRangeSpec::Bytes {
                range: None,
                instance_length: Some(meta.len),
            }));
            return Prepared::Finished(builder.finish());
        }
        Answer::Full => (0, meta.len),
        Answer::Partial(start, end) => {
            builder.insert_header(ContentRange(ContentRangeSpec::Bytes {
                range: Some((start, end)),
                instance_length: Some(meta.len),
            }));
            (start, end - start + 1)
        }
    };
    builder.insert_header((header::CONTENT_TYPE, meta.content_type.as_str()));
    if req.method() == Method::HEAD {
        // actix-http writes the body's declared size as Content-Length and
        // sends no body for HEAD; an empty stream of that size avoids
        // reading the entity at all.
        let nothing = futures_util::stream::empty::<std::io::Result<Bytes>>();
        return Prepared::Finished(builder.body(SizedStream::new(len, nothing)));
    }
    Prepared::Body {
        builder,
        start,
        len,
    }
}

/// Answers `req` for the entity `meta` whose body `body` can be read and
/// positioned. HEAD gets the same headers as GET and no body.
pub async fn respond<R>(
    req: &HttpRequest,
    meta: &Meta,
    mut body: R,
) -> std::io::Result<HttpResponse>
where
    R: AsyncRead + AsyncSeek + Unpin + 'static,
{
    let (mut builder, start, len) = match prepare(req, meta) {
        Prepared::Finished(response) => return Ok(response),
        Prepared::Body {
            builder,
            start,
            len,
        } => (builder, start, len),
    };
    if start > 0 {
        body.seek(SeekFrom::Start(start)).await?;
    }
    let stream = ReaderStream::with_capacity(body.take(len), READ_BUF);
    Ok(builder.body(SizedStream::new(len, stream)))
}

/// As [`respond`], for an entity already in memory (`bytes` holds all
/// `meta.len` of it). The body is zero-copy slices, ready at once: a small
/// one leaves in the same write as the head.
pub fn respond_bytes(req: &HttpRequest, meta: &Meta, bytes: &Bytes) -> HttpResponse {
    let (mut builder, start, len) = match prepare(req, meta) {
        Prepared::Finished(response) => return response,
        Prepared::Body {
            builder,
            start,
            len,
        } => (builder, start, len),
    };
    // `prepare` only answers ranges inside `meta.len`, which is the length
    // of `bytes`; a mismatch is clamped rather than trusted.
    let end = (start + len).min(bytes.len() as u64) as usize;
    let body = bytes.slice((start as usize).min(end)..end);
    let len = body.len() as u64;
    // Pieces of SEND_CHUNK, so that actix copies into its write buffer a
    // piece at a time as the socket drains, not the whole entity at once.
    let pieces = (0..body.len())
        .step_by(SEND_CHUNK)
        .map(move |at| Ok::<_, std::io::Error>(body.slice(at..(at + SEND_CHUNK).min(body.len()))));
    builder.body(SizedStream::new(len, futures_util::stream::iter(pieces)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn meta() -> Meta {
        Meta {
            len: 1000,
            etag: "abc".into(),
            modified: 1_700_000_000,
            content_type: "video/mp4".into(),
            cache_control: "private",
        }
    }

    fn answer(headers: &[(&str, &str)]) -> Answer {
        let mut req = TestRequest::get();
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        meta().answer(&req.to_http_request())
    }

    #[test]
    fn ranges() {
        assert_eq!(answer(&[]), Answer::Full);
        assert_eq!(answer(&[("range", "bytes=0-1")]), Answer::Partial(0, 1));
        assert_eq!(
            answer(&[("range", "bytes=990-")]),
            Answer::Partial(990, 999)
        );
        assert_eq!(answer(&[("range", "bytes=-10")]), Answer::Partial(990, 999));
        assert_eq!(
            answer(&[("range", "bytes=500-5000")]),
            Answer::Partial(500, 999)
        );
        assert_eq!(answer(&[("range", "bytes=1000-")]), Answer::Unsatisfiable);
        assert_eq!(answer(&[("range", "bytes=0-1,5-6")]), Answer::Full);
        assert_eq!(answer(&[("range", "pages=1")]), Answer::Full);
        assert_eq!(answer(&[("range", "bytes=x-y")]), Answer::Full);
    }

    #[test]
    fn conditionals() {
        assert_eq!(answer(&[("if-none-match", "\"abc\"")]), Answer::NotModified);
        assert_eq!(
            answer(&[("if-none-match", "W/\"abc\"")]),
            Answer::NotModified
        );
        assert_eq!(answer(&[("if-none-match", "\"other\"")]), Answer::Full);
        assert_eq!(
            answer(&[("if-match", "\"other\"")]),
            Answer::PreconditionFailed
        );
        assert_eq!(
            answer(&[("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")]),
            Answer::NotModified
        );
        assert_eq!(
            answer(&[("if-modified-since", "Mon, 13 Nov 2023 22:13:20 GMT")]),
            Answer::Full
        );
        assert_eq!(
            answer(&[("range", "bytes=0-1"), ("if-range", "\"abc\"")]),
            Answer::Partial(0, 1)
        );
        assert_eq!(
            answer(&[("range", "bytes=0-1"), ("if-range", "\"old\"")]),
            Answer::Full
        );
    }
}
