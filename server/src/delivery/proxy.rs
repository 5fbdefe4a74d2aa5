//! Viewers of a render another node of the cluster owns are served by
//! that node: the request goes there as it came (Range and conditionals
//! included) and its answer streams back unchanged, so one render serves
//! every viewer however the load balancer spread them.
//!
//! The forwarded request carries [`HOP`]: a node never forwards a request
//! that was forwarded to it, so two nodes that disagree for a moment about
//! the owner answer 503 (try again) rather than pass a viewer back and
//! forth. If the owner stops mid-body, the stream ends in an error and the
//! viewer's connection is cut: a body that looks complete is complete.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;

/// The header of a request one node forwards to another.
pub const HOP: &str = "clipstream-hop";

/// How long reaching the owner may take: it is on the cluster's network,
/// so a slow connect means it is gone (its lease then runs out).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the owner may send nothing before the viewer's connection is
/// cut: a render sends a fragment every second or two, so a minute of
/// silence is an owner that hangs.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The request headers that decide what the owner answers.
const FORWARDED: &[&str] = &[
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "accept",
    "user-agent",
];

/// The answer headers the viewer needs; hop-by-hop ones are the
/// connection's own.
const RETURNED: &[&str] = &[
    "content-type",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "cache-control",
    "retry-after",
    "vary",
];

/// Whether `req` was forwarded by another node.
pub fn is_forwarded(req: &HttpRequest) -> bool {
    req.headers().contains_key(HOP)
}

pub struct Forwarder {
    client: reqwest::Client,
}

/// The owner could not be reached: nothing was sent to the viewer yet.
#[derive(Debug, thiserror::Error)]
#[error("the node at {url} could not be reached: {reason}")]
pub struct Unreachable {
    pub url: String,
    pub reason: String,
}

impl Forwarder {
    /// The owners' URLs are the operator's configuration
    /// (`cluster.advertise_url`), on the cluster's private network: the
    /// private-address guard of user-given URLs does not apply.
    pub fn new() -> Result<Forwarder, reqwest::Error> {
        Ok(Forwarder {
            client: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("clipstream/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    /// Sends `req` to the node at `base` and streams its answer back.
    pub async fn forward(
        &self,
        req: &HttpRequest,
        base: &str,
    ) -> Result<HttpResponse, Unreachable> {
        if base.is_empty() {
            return Err(Unreachable {
                url: base.to_owned(),
                reason: "the owner has no address on record".to_owned(),
            });
        }
        let target = format!(
            "{}{}",
            base.trim_end_matches('/'),
            req.uri()
                .path_and_query()
                .map_or(req.path(), |p| p.as_str())
        );
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut out = self.client.request(method, &target).header(HOP, "1");
        for name in FORWARDED {
            for value in req.headers().get_all(*name) {
                out = out.header(*name, value.as_bytes());
            }
        }
        let answer = out.send().await.map_err(|e| Unreachable {
            url: base.to_owned(),
            reason: crate::net::guard::error_chain(&e),
        })?;
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = HttpResponse::build(status);
        for name in RETURNED {
            for value in answer.headers().get_all(*name) {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value.as_bytes()),
                ) {
                    response.append_header((n, v));
                }
            }
        }
        // The owner's Content-Length (`content_length()` is the size of
        // the body read here, 0 for HEAD).
        let length: Option<u64> = answer
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if req.method() == actix_web::http::Method::HEAD {
            let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
            return Ok(match length {
                Some(len) => response.no_chunking(len).streaming(empty),
                None => response.finish(),
            });
        }
        let body = idle_bounded(answer.bytes_stream());
        Ok(match length {
            Some(len) => response.no_chunking(len).streaming(body),
            None => response.streaming(body),
        })
    }
}

/// The owner's body, cut (with an error, so the viewer's connection is
/// cut too) when it breaks off or sends nothing for [`IDLE_TIMEOUT`]: a
/// partial body must not pass for a whole one.
fn idle_bounded(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin + 'static,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match tokio::time::timeout(IDLE_TIMEOUT, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((
                Err(std::io::Error::other(format!(
                    "the owner's answer broke off: {e}"
                ))),
                None,
            )),
            Err(_) => Some((
                Err(std::io::Error::other("the owner sent nothing for a minute")),
                None,
            )),
        }
    })
}
