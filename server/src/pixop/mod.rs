//! The Pixop processing API (CONTRACT section 9, seed `pixop-api-v1.txt`):
//! the Accounts, Videos and Media services under `/accounts/v1`,
//! `/videos/v1` and `/media/v1`, authenticated by JWTs (`auth`), every
//! failure in the seed's `{"exception", "errorMessage"}` body
//! (`envelope`).
//!
//! A team is an ordinary account: its projects are the ones the
//! ImpossibleFX and Shotstack APIs of that account see. Users and teams are
//! made with `clipstream users create` (`crate::admin`).

pub mod accounts;
pub mod auth;
pub mod clock;
pub mod envelope;
pub mod parse;
pub mod videos;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use auth::Bearer;
use envelope::Exception;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(accounts::routes(web::scope("/accounts/v1")).default_service(web::to(no_route)));
    cfg.service(
        videos::routes(web::scope("/videos/v1"))
            .route("/process-video/{id}", web::post().to(process_video))
            .default_service(web::to(no_route)),
    );
    cfg.service(
        web::scope("/media/v1")
            .route("/upload/light/{id}", web::post().to(not_built_upload))
            .route("/upload/{id}", web::post().to(not_built_upload))
            .route(
                "/download/{kind}/{id}",
                web::route()
                    .method(actix_web::http::Method::GET)
                    .to(not_built_download),
            )
            .route(
                "/download/{kind}/{id}",
                web::route()
                    .method(actix_web::http::Method::HEAD)
                    .to(not_built_download),
            )
            .default_service(web::to(no_route)),
    );
}

async fn no_route(req: HttpRequest) -> Result<&'static str, Exception> {
    Err(Exception::new(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        format!("no endpoint {} {}", req.method(), req.path()),
    ))
}

// The media and processing endpoints authenticate and find the video
// first, so that their answers for a stranger or a wrong id are already
// the final ones; then they say what is not built.

async fn process_video(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<&'static str, Exception> {
    videos::team_video(&req, &caller, &id)?;
    Err(Exception::not_implemented(
        "processing (POST /videos/v1/process-video)",
    ))
}

async fn not_built_upload(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
) -> Result<&'static str, Exception> {
    videos::team_video(&req, &caller, &id)?;
    Err(Exception::not_implemented(
        "media upload and ingestion (POST /media/v1/upload)",
    ))
}

async fn not_built_download(
    req: HttpRequest,
    caller: Bearer,
    path: web::Path<(String, String)>,
) -> Result<&'static str, Exception> {
    let (kind, id) = path.into_inner();
    if kind != "original" && kind != "processed" {
        return Err(Exception::not_found("download kind", &kind));
    }
    videos::team_video(&req, &caller, &id)?;
    Err(Exception::not_implemented(
        "media download (GET /media/v1/download)",
    ))
}
