//! `GET /metrics`: Prometheus scrapes it.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::delivery::Renders;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::resource("/metrics", "GET").route(web::get().to(metrics)));
}

async fn metrics(renders: web::Data<Arc<Renders>>, state: web::Data<AppState>) -> HttpResponse {
    renders.count_states();
    match state.store.render_cache_size() {
        Ok((bytes, entries)) => {
            let m = &renders.metrics;
            m.cache_size.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            m.cache_entries
                .set(i64::try_from(entries).unwrap_or(i64::MAX));
        }
        // The other figures are still worth a scrape; these keep their
        // last value.
        Err(e) => tracing::warn!(error = %e, "the render cache's size could not be read"),
    }
    HttpResponse::Ok()
        .insert_header((
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .insert_header(("cache-control", "no-store"))
        .body(renders.metrics.render())
}
