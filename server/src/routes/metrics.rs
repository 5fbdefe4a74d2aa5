//! `GET /metrics`: Prometheus scrapes it.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::delivery::Renders;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::resource("/metrics", "GET").route(web::get().to(metrics)));
}

async fn metrics(renders: web::Data<Arc<Renders>>) -> HttpResponse {
    renders.count_states();
    HttpResponse::Ok()
        .insert_header((
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .insert_header(("cache-control", "no-store"))
        .body(renders.metrics.render())
}
