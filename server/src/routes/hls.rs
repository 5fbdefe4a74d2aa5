//! HLS for iPhones (CONTRACT section 5): iOS Safari plays progressive MP4
//! only from servers that answer ranges with a known total length, but
//! plays HLS natively. The playlist lists the very fragments of the MP4
//! render as `.m4s` segments after an `#EXT-X-MAP` of its init segment; it
//! is an `EVENT` playlist that grows while the render runs and ends with
//! `#EXT-X-ENDLIST` when it is done. One render feeds both.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use clipstream_actors::engine::edit::Format;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::Segment;

use crate::delivery::{Lookup, Renders};
use crate::http::entity::{self, Meta};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The render behind a playlist: the MP4 one.
const EXT: Deliverable = Deliverable::Movie(Format::Mp4);

/// `GET /render/<token>.m3u8`.
pub async fn playlist(
    state: &AppState,
    renders: &Arc<Renders>,
    token: &str,
) -> Result<HttpResponse, ApiError> {
    let wait = Duration::from_secs(state.config.render.range_wait_secs);
    let (segments, complete) = match renders.lookup(token, EXT).await?.1 {
        Lookup::Cached(open) => (open.entry.segments.clone(), true),
        Lookup::Live(live, _viewer) => {
            // A playlist with at least one segment: players give up on an
            // empty one.
            let snap = tokio::time::timeout(wait, live.wait_for(|s| s.segments.len() >= 2))
                .await
                .map_err(|_| ApiError::RangeTimeout)?;
            if let (Some(error), true) = (snap.error, snap.segments.len() < 2) {
                return Err(ApiError::Render(error));
            }
            (snap.segments, snap.complete)
        }
    };
    if segments.len() < 2 {
        return Err(ApiError::NoRoute(format!("/render/{token}.m3u8")));
    }
    let target = segments[1..]
        .iter()
        .map(|s| s.seconds)
        .fold(state.config.render.fragment_secs, f64::max)
        .ceil()
        .max(1.0) as u64
        // Fragments to come may run a little over the configured length.
        + u64::from(!complete);
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}"
    );
    // A growing EVENT playlist would have players join at its live edge;
    // a personalised video is watched from its first second.
    let _ = writeln!(
        text,
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0,PRECISE=YES"
    );
    let _ = writeln!(text, "#EXT-X-MAP:URI=\"{token}/init.mp4\"");
    for (i, s) in segments[1..].iter().enumerate() {
        let _ = writeln!(text, "#EXTINF:{:.3},\n{token}/{i}.m4s", s.seconds);
    }
    if complete {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/vnd.apple.mpegurl"))
        .insert_header((
            header::CACHE_CONTROL,
            if complete {
                renders.cache_control
            } else {
                "no-cache"
            },
        ))
        .body(text))
}

/// `init.mp4` is piece 0; `N.m4s` is fragment N, piece N + 1.
fn piece(name: &str) -> Option<usize> {
    if name == "init.mp4" {
        return Some(0);
    }
    name.strip_suffix(".m4s")?
        .parse::<usize>()
        .ok()?
        .checked_add(1)
}

/// `GET /render/<token>/<name>`: the init segment or a fragment, an
/// entity of its own (ranges, ETag, 304) once it exists.
pub async fn segment(
    req: &HttpRequest,
    state: &AppState,
    renders: &Arc<Renders>,
    token: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NoRoute(format!("/render/{token}/{name}"));
    let index = piece(name).ok_or_else(not_found)?;
    let content_type = if index == 0 {
        "video/mp4"
    } else {
        "video/iso.segment"
    };
    let (output, found) = renders.lookup(token, EXT).await?;
    let (bytes, modified) = match found {
        Lookup::Cached(open) => {
            let seg: Segment = *open.entry.segments.get(index).ok_or_else(not_found)?;
            let bytes = open.bytes.slice(
                (seg.offset as usize).min(open.bytes.len())
                    ..((seg.offset + seg.len) as usize).min(open.bytes.len()),
            );
            (bytes, open.entry.created)
        }
        Lookup::Live(live, _viewer) => {
            let wait = Duration::from_secs(state.config.render.range_wait_secs);
            let snap = tokio::time::timeout(wait, live.wait_for(|s| s.segments.len() > index))
                .await
                .map_err(|_| ApiError::RangeTimeout)?;
            let Some(seg) = snap.segments.get(index).copied() else {
                return Err(match snap.error {
                    Some(error) => ApiError::Render(error),
                    None => not_found(),
                });
            };
            // A fragment is about a second of media: read whole.
            let bytes = live
                .read(seg.offset, seg.len)
                .await
                .map_err(clipstream_storage::Error::from)?;
            (bytes, clipstream_storage::unix_now())
        }
    };
    let meta = Meta {
        len: bytes.len() as u64,
        // A segment of one content is always the same bytes.
        etag: format!("{}-{index}", output.digest),
        modified,
        content_type: content_type.into(),
        cache_control: renders.cache_control,
    };
    Ok(entity::respond_bytes(req, &meta, &bytes))
}
