//! The Shotstack-compatible API (CONTRACT section 7, seed
//! `shotstack-api-v1.txt`): Edit, Serve and Ingest under
//! `/{api}/{stage}/` with `{stage}` `v1` or `stage`, authenticated by
//! `x-api-key`, answering in Shotstack's envelope, so that Shotstack's own
//! SDKs work unchanged. A surface of its own over the same core (storage,
//! fetcher, render pipeline) as the ImpossibleFX routes in `crate::routes`.
//!
//! Everything of an account lives in its ordinary project named
//! `shotstack` (`hosting::PROJECT`), so the ImpossibleFX API sees the same
//! templates and files. Hosted files (render outputs, ingested sources)
//! are served at `/hosted/<id>/<filename>` (`routes::hosted`).
//!
//! The Edit API is `probe`, `render` and `templates` (over `edit_input`),
//! the Serve API `serve`, the Ingest API `ingest`; `callback` calls back
//! for renders and sources alike.

pub mod auth;
pub mod callback;
mod edit_input;
pub mod envelope;
pub mod hosting;
pub mod ingest;
pub mod parse;
mod probe;
pub mod render;
mod serve;
mod templates;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use envelope::Failure;

/// The stages Shotstack's SDKs are pointed at: `v1` (production) and
/// `stage` (sandbox). Both reach the same server here.
const STAGES: [&str; 2] = ["v1", "stage"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The Ingest API's signed upload URLs, outside the stages: they carry
    // their own credentials.
    ingest::configure_public(cfg);
    for stage in STAGES {
        for api in ["edit", "serve", "ingest"] {
            let mut scope = web::scope(&format!("/{api}/{stage}"));
            if api == "edit" {
                // The segment is read raw from the request's path (see
                // `probe::get`); `.+` so that an unencoded URL is told so
                // rather than answered 404.
                scope = scope
                    .route("/probe/{url:.+}", web::get().to(probe::get))
                    .route("/render", web::post().to(render::create))
                    .route("/render/{id}", web::get().to(render::get))
                    // Before `/templates/{id}`, whose resource would
                    // otherwise answer this path's POST with a 405.
                    .route("/templates/render", web::post().to(templates::render))
                    .route("/templates", web::post().to(templates::create))
                    .route("/templates", web::get().to(templates::list))
                    .route("/templates/{id}", web::get().to(templates::get))
                    .route("/templates/{id}", web::put().to(templates::update))
                    .route("/templates/{id}", web::delete().to(templates::delete));
            }
            if api == "serve" {
                scope = serve::routes(scope);
            }
            if api == "ingest" {
                scope = ingest::routes(scope);
            }
            cfg.service(scope.default_service(web::to(no_route)));
        }
    }
    // Any other stage under the three APIs: Shotstack's 404, in its envelope.
    for api in ["edit", "serve", "ingest"] {
        cfg.service(web::scope(&format!("/{api}")).default_service(web::to(unknown_stage)));
    }
}

async fn no_route(req: HttpRequest) -> Result<&'static str, Failure> {
    Err(Failure::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint {} {}", req.method(), req.path()),
    ))
}

async fn unknown_stage(req: HttpRequest) -> Result<&'static str, Failure> {
    let stage = req.path().split('/').nth(2).unwrap_or_default().to_owned();
    Err(Failure::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no stage {stage:?} here; the stages are v1 and stage"),
    )
    .with_param("stage"))
}
