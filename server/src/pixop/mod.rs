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
pub mod cancel;
pub mod clock;
pub mod envelope;
pub mod media;
pub mod parse;
pub mod plan;
pub mod process;
pub mod token;
pub mod videos;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use envelope::Exception;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(accounts::routes(web::scope("/accounts/v1")).default_service(web::to(no_route)));
    cfg.service(
        videos::routes(web::scope("/videos/v1"))
            .route(
                "/process-video/{id}",
                web::post().to(process::process_video),
            )
            .default_service(web::to(no_route)),
    );
    cfg.service(media::routes(web::scope("/media/v1")).default_service(web::to(no_route)));
}

async fn no_route(req: HttpRequest) -> Result<&'static str, Exception> {
    Err(Exception::new(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        format!("no endpoint {} {}", req.method(), req.path()),
    ))
}
