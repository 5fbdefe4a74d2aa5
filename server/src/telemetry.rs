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

/// Request spans without the query string: a query may carry a
/// credential (the signature of an Ingest upload URL), and logs are read
/// by more people than hold credentials.
pub struct PathOnly;

impl tracing_actix_web::RootSpanBuilder for PathOnly {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        use tracing::field::Empty;
        // Put there by the middleware before this is called.
        let id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let info = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.host = %info.host(),
            http.client_ip = %info.realip_remote_addr().unwrap_or(""),
            http.target = %request.path(),
            http.status_code = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
            exception.details = Empty,
            request_id = %id,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
