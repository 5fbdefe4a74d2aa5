//! Structured logs with `tracing`, as text for people or JSON for
//! collectors (`log.format`), filtered by `log.level` or `RUST_LOG`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use tracing::{Level, Span};
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
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

/// Whether requests are traced at all: not when logs are above `info`,
/// where no request span would be recorded. The middleware gives every
/// request an id, a UUID from getrandom(2), which is a syscall per request.
pub fn request_spans() -> bool {
    tracing::span_enabled!(Level::INFO)
}

/// The root span of every request, as `tracing-actix-web` builds it, but
/// only when a subscriber would record it: its fields include the matched
/// route pattern, which actix finds by running each route's regex again —
/// a tenth of the CPU of a warm cached GET when logs are at `warn`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if tracing::span_enabled!(Level::INFO) {
            tracing_actix_web::root_span!(level = Level::INFO, request)
        } else {
            Span::none()
        }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
