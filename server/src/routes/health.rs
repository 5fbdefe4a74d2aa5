//! `GET /healthz`: the process answers and its store is readable.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::http::resource("/healthz", "GET, HEAD")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz)),
    );
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(json!({ "status": "ok", "cluster": state.config.cluster.name }))
}
