//! `GET /render/<token>.<ext>` (also under `/v2`): the video itself, no
//! credentials needed — the token is the capability (CONTRACT section 5).
//! And `GET /v2/render/<token>/status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::http::header::{self, ByteRangeSpec, ContentRange, ContentRangeSpec, Header, Range};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::edit::Format;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::renders::is_token_shaped;
use serde_json::json;

use crate::delivery::content_key::parse_output;
use crate::delivery::{proxy, Lookup, Renders};
use crate::http::entity::{self, Meta};
use crate::http::error::ApiError;
use crate::http::resource;
use crate::http::state::AppState;

/// `/v2/render/{x}` is both this GET and the render request's POST, so
/// the resource is made in `renders`; this module adds `/render/…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The viewers' routes, by far the most requests. A scope is matched by
    // its plain prefix and the rest of the path is split here: actix
    // matches a resource with a `{…}` segment by a regex, which was 8 % of
    // the server's CPU for small range requests of a cached render.
    cfg.service(web::scope("/render").default_service(web::to(viewer)));
    cfg.service(resource("/v2/render/{token}/status", "GET").route(web::get().to(status)));
}

/// `/render/<file>` (see [`split`]) and HLS's `/render/<token>/<segment>`.
async fn viewer(
    req: HttpRequest,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
) -> Result<HttpResponse, ApiError> {
    let rest = req.path().strip_prefix("/render/").unwrap_or_default();
    let segment = match rest.split_once('/') {
        None if !rest.is_empty() => None,
        Some((token, name)) if !token.is_empty() && !name.is_empty() && !name.contains('/') => {
            Some((token, name))
        }
        _ => return Err(ApiError::NoRoute(req.path().to_owned())),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: "GET, HEAD",
        });
    }
    let owner_gone = Instant::now() + renders.lease() + Duration::from_secs(2);
    loop {
        let answer = match segment {
            Some((token, name)) => super::hls::segment(&req, &state, &renders, token, name).await,
            None => serve(req.clone(), state.clone(), renders.clone(), rest.to_owned()).await,
        };
        if let Some(answer) = forwarded(&req, &renders, answer, owner_gone).await {
            return answer;
        }
    }
}

/// A viewer's answer, or its request sent to the node that renders what
/// it asked for (see `delivery::proxy`). `None`: that node could not be
/// reached, so ask again (its lease runs out by `owner_gone`, and the
/// render is then claimed here).
async fn forwarded(
    req: &HttpRequest,
    renders: &Renders,
    answer: Result<HttpResponse, ApiError>,
    owner_gone: Instant,
) -> Option<Result<HttpResponse, ApiError>> {
    let url = match &answer {
        Err(ApiError::Elsewhere { url, .. }) if !proxy::is_forwarded(req) => url.clone(),
        _ => return Some(answer),
    };
    match renders.forwarder.forward(req, &url).await {
        Ok(response) => Some(Ok(response)),
        Err(e) if Instant::now() < owner_gone => {
            tracing::info!(error = %e, "the render's owner did not answer; asking again");
            tokio::time::sleep(Duration::from_millis(500)).await;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the render's owner did not answer");
            Some(answer)
        }
    }
}

/// What a file name under `/render/` asks for.
enum Asked {
    Playlist,
    Render(Deliverable),
}

/// `<token>.<ext>`, `<token>-poster.jpg` or `<token>-thumb.jpg`.
fn split(file: &str) -> Result<(&str, Asked), ApiError> {
    let not_found = || ApiError::NoRoute(format!("/render/{file}"));
    let (token, asked) = if let Some(token) = file.strip_suffix("-poster.jpg") {
        (token, Asked::Render(Deliverable::Poster))
    } else if let Some(token) = file.strip_suffix("-thumb.jpg") {
        (token, Asked::Render(Deliverable::Thumbnail))
    } else {
        let (token, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
        let asked = match ext {
            "m3u8" => Asked::Playlist,
            _ => Asked::Render(Deliverable::Movie(
                Format::from_extension(ext).ok_or_else(not_found)?,
            )),
        };
        (token, asked)
    };
    if !is_token_shaped(token) {
        return Err(clipstream_storage::Error::TokenNotFound.into());
    }
    Ok((token, asked))
}

/// The format of the bytes of `what`.
fn format_of(what: Deliverable) -> Format {
    match what {
        Deliverable::Movie(format) => format,
        Deliverable::Poster | Deliverable::Thumbnail => Format::Jpg,
    }
}

/// `GET /v2/render/<file>`, as `/render/<file>`.
pub(super) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    let owner_gone = Instant::now() + renders.lease() + Duration::from_secs(2);
    loop {
        let answer = serve(req.clone(), state.clone(), renders.clone(), file.clone()).await;
        if let Some(answer) = forwarded(&req, &renders, answer, owner_gone).await {
            return answer;
        }
    }
}

/// The bytes of `<token>.<ext>` (or its poster, thumbnail or playlist):
/// from the cache, or from the render as it runs.
async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
    file: String,
) -> Result<HttpResponse, ApiError> {
    let (token, what) = match split(&file)? {
        (token, Asked::Playlist) => return super::hls::playlist(&renders, token).await,
        (token, Asked::Render(what)) => (token, what),
    };
    let format = format_of(what);
    let (output, live, _viewer) = match renders.lookup(token, what).await? {
        (output, Lookup::Cached(open)) => {
            let meta = Meta {
                len: open.entry.size,
                etag: output.digest.clone(),
                modified: open.entry.created,
                content_type: format.content_type().into(),
                cache_control: renders.cache_control,
            };
            let response = entity::respond_bytes(&req, &meta, &open.bytes);
            if req.method() == Method::GET {
                if let BodySize::Sized(sent) = response.body().size() {
                    renders.metrics.cache_bytes.inc_by(sent);
                }
            }
            return Ok(response);
        }
        (output, Lookup::Live(live, viewer)) => (output, live, viewer),
    };
    let range = match Range::parse(&req) {
        Ok(Range::Bytes(specs)) if specs.len() == 1 && req.method() == Method::GET => {
            Some(specs[0].clone())
        }
        _ => None,
    };
    let config = &state.config.render;
    if range.as_ref().is_some_and(needs_total) {
        // Safari plays only what it was told the length of: its first
        // `bytes=0-1` waits, bounded, for the render's end. Past the bound
        // it is answered like any other range.
        let wait = Duration::from_secs(config.total_wait_secs);
        let _ = tokio::time::timeout(wait, live.wait_for(|s| s.published)).await;
    }
    // Headers wait for the first bytes, so that a render that cannot start
    // (a missing or broken source) is still a clean JSON error. A still
    // image is one piece: it is answered once complete.
    let asked = std::time::Instant::now();
    let still = format.is_image();
    let wait = Duration::from_secs(config.range_wait_secs);
    let snap = tokio::time::timeout(
        wait,
        live.wait_for(|s| s.published || (s.len > 0 && !still)),
    )
    .await
    .map_err(|_| ApiError::RangeTimeout)?;
    renders
        .metrics
        .first_byte_seconds
        .observe(asked.elapsed().as_secs_f64());
    if let Some(error) = snap.error {
        return Err(ApiError::Render(error));
    }
    if snap.complete {
        // Committed while we waited: the cache answers now.
        return Box::pin(serve(req, state, renders, file)).await;
    }
    if snap.published {
        // Every byte is out and the length known: the spool file is the
        // entity, with all of its HTTP semantics.
        let meta = Meta {
            len: snap.len,
            etag: output.digest.clone(),
            modified: clipstream_storage::unix_now(),
            content_type: format.content_type().into(),
            cache_control: renders.cache_control,
        };
        let file = live
            .open_file()
            .await
            .map_err(clipstream_storage::Error::from)?;
        return Ok(entity::respond(&req, &meta, file)
            .await
            .map_err(clipstream_storage::Error::from)?);
    }
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if req.method() == Method::HEAD {
        return Ok(builder.finish());
    }
    match range {
        None | Some(ByteRangeSpec::From(0)) => Ok(builder.streaming(live.stream(0, None))),
        Some(spec) => match partial_while_rendering(&state, &live, spec, format).await? {
            Some(response) => Ok(response),
            // Complete by now: answer with the total length.
            None => Box::pin(serve(req, state, renders, file)).await,
        },
    }
}

/// Whether a 206 for `spec` is useless without the total length: Safari's
/// `bytes=0-1` probe, and a suffix range (the last N bytes).
fn needs_total(spec: &ByteRangeSpec) -> bool {
    matches!(spec, ByteRangeSpec::FromTo(0, 1) | ByteRangeSpec::Last(_))
}

/// A range asked during the render: answered once its bytes exist (within
/// `render.range_wait_secs`), with the total length still unknown; `None`
/// when every byte is out meanwhile (the total is known then).
async fn partial_while_rendering(
    state: &AppState,
    live: &Arc<crate::delivery::LiveRender>,
    spec: ByteRangeSpec,
    format: Format,
) -> Result<Option<HttpResponse>, ApiError> {
    let (start, last) = match spec {
        ByteRangeSpec::FromTo(a, b) if a <= b => (a, Some(b)),
        ByteRangeSpec::From(a) => (a, None),
        // A suffix needs the total length: wait for the end.
        _ => (u64::MAX, None),
    };
    let wait = Duration::from_secs(state.config.render.range_wait_secs);
    let need = last.map_or(start, |b| b);
    let snap = tokio::time::timeout(wait, live.wait_for(|s| s.len > need || s.published)).await;
    let snap = snap.map_err(|_| ApiError::RangeTimeout)?;
    if let Some(error) = snap.error {
        return Err(ApiError::Render(error));
    }
    if snap.published || snap.complete || start == u64::MAX {
        return Ok(None);
    }
    let end = last.map_or(snap.len, |b| (b + 1).min(snap.len));
    let mut builder = HttpResponse::PartialContent();
    builder
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(ContentRange(ContentRangeSpec::Bytes {
            range: Some((start, end - 1)),
            instance_length: None,
        }));
    Ok(Some(builder.body(SizedStream::new(
        end - start,
        live.stream(start, Some(end)),
    ))))
}

#[derive(serde::Deserialize)]
struct StatusQuery {
    /// Which render of the token: `mp4` (the default) or any other
    /// format's extension, `poster` or `thumb`.
    ext: Option<String>,
}

async fn status(
    renders: web::Data<Arc<Renders>>,
    uploads: web::Data<Arc<crate::upload::Uploads>>,
    token: web::Path<String>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let ext = query.ext.as_deref().unwrap_or("mp4");
    let what = parse_output(ext).ok_or_else(|| {
        ApiError::bad_param(
            "ext",
            format!("{ext:?} is not one of mp4, webm, gif, jpg, png, bmp, mp3, poster, thumb"),
        )
    })?;
    // Any issued token has a status; unknown ones are 404.
    let status = renders.status(&token, what)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "token": token.as_str(),
            "ext": ext,
            "state": status.state,
            "progress": (status.progress * 100.0).round() as u32,
            "error": status.error,
            "seconds_rendered": status.seconds.0,
            "seconds_reused": status.seconds.1,
            "size": status.size,
            "timings": status.timings,
            "uploads": uploads.statuses(&token)?,
        })))
}
