//! HLS for iPhones (CONTRACT sections 5 and 12): iOS Safari plays
//! progressive MP4 only from servers that answer ranges with a known total
//! length, but plays HLS natively. The playlist lists every segment of the
//! MP4 render (CONTRACT section 12: the plan knows each one's exact length
//! before anything is rendered) after an `#EXT-X-MAP` of its init segment,
//! and ends with `#EXT-X-ENDLIST` from the first request, so a player can
//! seek at once. Segment `n` is the MP4's fragments of render segment `n`
//! (fragments never span two), served as soon as the render has them. One
//! render feeds both.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use clipstream_actors::engine::edit::Format;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_actors::segments::Segment as Seg;
use clipstream_storage::Segment;

use crate::delivery::{Lookup, Renders};
use crate::http::entity::{self, Meta};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The render behind a playlist: the MP4 one.
const EXT: Deliverable = Deliverable::Movie(Format::Mp4);

/// `GET /render/<token>.m3u8`.
pub async fn playlist(renders: &Arc<Renders>, token: &str) -> Result<HttpResponse, ApiError> {
    // The first request starts the render, as a GET of the MP4 does.
    drop(renders.lookup(token, EXT).await?);
    let (segments, fps) = renders.mp4_segments(token)?;
    let seconds = |frames: i64| frames as f64 / fps;
    let target = segments
        .iter()
        .map(|s| seconds(s.frames))
        .fold(1.0, f64::max)
        .ceil() as u64;
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}"
    );
    let _ = writeln!(
        text,
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0,PRECISE=YES"
    );
    let _ = writeln!(text, "#EXT-X-MAP:URI=\"{token}/init.mp4\"");
    for s in &segments {
        let _ = writeln!(
            text,
            "#EXTINF:{:.5},\n{token}/{}.m4s",
            seconds(s.frames),
            s.index
        );
    }
    text.push_str("#EXT-X-ENDLIST\n");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/vnd.apple.mpegurl"))
        .insert_header((header::CACHE_CONTROL, renders.cache_control))
        .body(text))
}

/// What a name under the token asks for.
#[derive(Clone, Copy)]
enum Piece {
    Init,
    Segment(usize),
}

fn piece(name: &str) -> Option<Piece> {
    if name == "init.mp4" {
        return Some(Piece::Init);
    }
    Some(Piece::Segment(name.strip_suffix(".m4s")?.parse().ok()?))
}

/// Where the fragments of render segment `segment` are among `pieces`
/// (the init segment, then each fragment with its seconds of video):
/// their offset and length, once the fragment after them (or the end)
/// shows they are all there.
fn span(pieces: &[Segment], fps: f64, segment: Seg, complete: bool) -> Option<(u64, u64)> {
    let (first, end) = (segment.first, segment.first + segment.frames);
    let mut at = 0.0;
    let mut from: Option<u64> = None;
    let mut to = 0;
    for fragment in pieces.iter().skip(1) {
        let start = (at * fps).round() as i64;
        at += fragment.seconds;
        if start >= end {
            return from.map(|f| (f, to - f));
        }
        if start >= first {
            from.get_or_insert(fragment.offset);
            to = fragment.offset + fragment.len;
        }
    }
    if complete {
        return from.map(|f| (f, to - f));
    }
    None
}

/// `GET /render/<token>/<name>`: the init segment or a segment, an
/// entity of its own (ranges, ETag, 304) once it exists; a segment the
/// render has not reached yet is waited for.
pub async fn segment(
    req: &HttpRequest,
    state: &AppState,
    renders: &Arc<Renders>,
    token: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NoRoute(format!("/render/{token}/{name}"));
    let asked = piece(name).ok_or_else(not_found)?;
    let (content_type, wanted, tag) = match asked {
        Piece::Init => ("video/mp4", None, "init".to_owned()),
        Piece::Segment(n) => {
            let (segments, fps) = renders.mp4_segments(token)?;
            let segment = *segments.get(n).ok_or_else(not_found)?;
            ("video/iso.segment", Some((segment, fps)), format!("s{n}"))
        }
    };
    let locate = |pieces: &[Segment], complete: bool| -> Option<(u64, u64)> {
        match wanted {
            None => pieces.first().map(|p| (p.offset, p.len)),
            Some((segment, fps)) => span(pieces, fps, segment, complete),
        }
    };
    // A far segment of a token not rendering yet: rendered alone first,
    // the whole render started after it, so that the two do not share the
    // cores while the player waits for its picture.
    if let (Piece::Segment(n), Some(_)) = (asked, wanted) {
        if n >= 2 && renders.is_cold(token, EXT)? {
            let wait = Duration::from_secs(state.config.render.range_wait_secs);
            let bytes = alone(renders, token, n, wait).await?;
            let (output, _) = renders.lookup(token, EXT).await?;
            let meta = alone_meta(renders, &output.digest, &tag, content_type, &bytes);
            return Ok(entity::respond_bytes(req, &meta, &bytes));
        }
    }
    let (output, found) = renders.lookup(token, EXT).await?;
    let (bytes, modified) = match found {
        Lookup::Cached(open) => {
            let (offset, len) = locate(&open.entry.segments, true).ok_or_else(not_found)?;
            let bytes = open.bytes.slice(
                (offset as usize).min(open.bytes.len())
                    ..((offset + len) as usize).min(open.bytes.len()),
            );
            (bytes, open.entry.created)
        }
        Lookup::Live(live, _viewer) => {
            let wait = Duration::from_secs(state.config.render.range_wait_secs);
            // A segment more than one ahead of the render is rendered on
            // its own now (and kept in the segment cache, where the render
            // finds it): a player seeking far gets its picture after about
            // one segment's render time.
            if let Some((segment, fps)) = wanted {
                let now = live.snapshot();
                let reached: f64 = now.segments.iter().skip(1).map(|s| s.seconds).sum();
                let reached = (reached * fps).round() as i64;
                let far = reached + segment.frames < segment.first;
                if far && locate(&now.segments, now.published).is_none() {
                    let Piece::Segment(n) = asked else {
                        return Err(not_found());
                    };
                    let bytes = alone(renders, token, n, wait).await?;
                    let meta = alone_meta(renders, &output.digest, &tag, content_type, &bytes);
                    return Ok(entity::respond_bytes(req, &meta, &bytes));
                }
            }
            let snap = tokio::time::timeout(
                wait,
                live.wait_for(|s| locate(&s.segments, s.published).is_some()),
            )
            .await
            .map_err(|_| ApiError::RangeTimeout)?;
            let Some((offset, len)) = locate(&snap.segments, snap.published || snap.complete)
            else {
                return Err(match snap.error {
                    Some(error) => ApiError::Render(error),
                    None => not_found(),
                });
            };
            let bytes = live
                .read(offset, len)
                .await
                .map_err(clipstream_storage::Error::from)?;
            (bytes, clipstream_storage::unix_now())
        }
    };
    let meta = Meta {
        len: bytes.len() as u64,
        // A segment of one content is always the same bytes.
        etag: format!("{}-{tag}", output.digest),
        modified,
        content_type: content_type.into(),
        cache_control: renders.cache_control,
    };
    Ok(entity::respond_bytes(req, &meta, &bytes))
}

/// Segment `n` of `token` rendered on its own now, within `wait`.
async fn alone(
    renders: &Renders,
    token: &str,
    n: usize,
    wait: Duration,
) -> Result<bytes::Bytes, ApiError> {
    tokio::time::timeout(wait, renders.mp4_segment_alone(token, n))
        .await
        .map_err(|_| ApiError::RangeTimeout)??
        .map_err(ApiError::Render)
}

/// The entity of a segment rendered on its own: tagged as the output's
/// segment, made now.
fn alone_meta(
    renders: &Renders,
    digest: &str,
    tag: &str,
    content_type: &'static str,
    bytes: &[u8],
) -> Meta {
    Meta {
        len: bytes.len() as u64,
        etag: format!("{digest}-{tag}"),
        modified: clipstream_storage::unix_now(),
        content_type: content_type.into(),
        cache_control: renders.cache_control,
    }
}
