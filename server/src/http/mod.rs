//! The HTTP layer's shared pieces: state, authentication, errors, bodies,
//! names and entity serving. Routes live in `crate::routes`.

pub mod auth;
pub mod body;
pub mod entity;
pub mod error;
pub mod names;
pub mod state;
pub mod throttle;

use actix_web::{web, HttpRequest, Resource};

use error::ApiError;

/// A resource whose unmatched methods answer a JSON 405 naming `allow`.
pub fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<&'static str, _>(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        })
    }))
}

/// JSON errors for what actix-web's extractors refuse, and for unknown
/// routes, so that no error leaves the server as plain text.
pub fn json_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        let message = e.to_string();
        let param = field_named(&message).unwrap_or("query").to_owned();
        ApiError::bad_param(param, message).into()
    }))
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::bad_param("path", e.to_string()).into()),
    );
}

pub fn not_found() -> actix_web::Route {
    web::to(|req: HttpRequest| async move {
        Err::<&'static str, _>(ApiError::NoRoute(req.path().to_owned()))
    })
}

/// The base of the absolute URLs given out in answer to `req`:
/// `server.public_url` when set (a proxy in front knows the public name),
/// else the scheme and host the request came in with.
pub fn base_url(req: &HttpRequest, config: &crate::config::Config) -> String {
    let configured = config.server.public_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// serde names a field between backticks: "missing field `chunk_count`".
fn field_named(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}
