//! `GET /metrics`: Prometheus scrapes it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};

use crate::delivery::Renders;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::resource("/metrics", "GET").route(web::get().to(metrics)));
}

/// How long a reading of the render cache's size is reused: reading it
/// scans every cached render's record, and dashboards scrape every few
/// seconds.
const CACHE_SIZE_TTL: Duration = Duration::from_secs(5);

/// The last reading of the render cache's size and when it was taken (one
/// server per process).
static CACHE_SIZE: Mutex<Option<(Instant, (u64, u64))>> = Mutex::new(None);

fn cache_size(state: &AppState) -> clipstream_storage::Result<(u64, u64)> {
    let now = Instant::now();
    // A poisoned lock only means another scrape panicked mid-update; the
    // reading in it is still a reading.
    let mut last = CACHE_SIZE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, size)) = *last {
        if now.duration_since(at) < CACHE_SIZE_TTL {
            return Ok(size);
        }
    }
    let size = state.store.render_cache_size()?;
    *last = Some((now, size));
    Ok(size)
}

async fn metrics(renders: web::Data<Arc<Renders>>, state: web::Data<AppState>) -> HttpResponse {
    renders.count_states();
    match cache_size(&state) {
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
