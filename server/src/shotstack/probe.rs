//! `GET /edit/{stage}/probe/{url}`: media facts of a URL in FFprobe's JSON
//! shape (`-show_streams -show_format`), under `response.metadata` as
//! Shotstack answers and its SDKs' examples read. The URL is downloaded
//! through the same private-address guard and limits as every render's
//! sources (`fetch.*`), read with libavformat, and deleted.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::media::probe::{probe, Facts};
use clipstream_actors::FetchError;
use serde::Serialize;

use super::auth::ApiKey;
use super::envelope::{ok, Failure};
use super::parse::probe_url;
use crate::delivery::Renders;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::net::guard::Guard;

pub async fn get(
    req: HttpRequest,
    key: ApiKey,
    state: web::Data<AppState>,
    renders: web::Data<Arc<Renders>>,
) -> Result<HttpResponse, Failure> {
    let raw = req
        .uri()
        .path()
        .split_once("/probe/")
        .map(|(_, tail)| tail)
        .unwrap_or_default();
    let url = probe_url(raw).map_err(bad_url)?;
    // Probes store nothing, so the account only names who asked.
    tracing::info!(account = %key.0 .0, %url, "probe");
    // A file hosted for this account is read where it is stored, not
    // fetched over HTTP from this very server.
    if let Some(path) = hosted_path(&state, &key, &url).await? {
        let src = url.to_string();
        return answer(path, None, src).await;
    }
    // Checked here too, before any connection, so that a refused address is
    // told apart from a source that failed by its type, not by words.
    let guard = Guard {
        allow_private: state.config.fetch.allow_private,
        exempt: Vec::new(),
    };
    guard
        .check_url(&url)
        .map_err(|reason| bad_url(format!("{url} is not probed: {reason}")))?;
    let src = url.to_string();
    let (dir, path) = renders.download(&src).await.map_err(fetch_failure)?;
    answer(path, Some(dir), src).await
}

/// The local body of `url` when it is a file hosted for the account.
async fn hosted_path(
    state: &AppState,
    key: &ApiKey,
    url: &url::Url,
) -> Result<Option<std::path::PathBuf>, Failure> {
    let store = &state.store;
    let Some((id, _)) = clipstream_storage::hosted::parse_hosted_path(url.path()) else {
        return Ok(None);
    };
    let Ok(file) = store.hosted_file_of(&key.0 .0, id) else {
        return Ok(None);
    };
    let asset = store
        .hosted_asset_at(&file.project, url.as_str())
        .map_err(ApiError::from)?;
    match asset {
        Some(asset) => Ok(Some(
            store
                .body_local_path(&asset)
                .await
                .map_err(ApiError::from)?,
        )),
        None => Ok(None),
    }
}

/// Reads the facts of `path` (removing `dir`, a download, after).
async fn answer(
    path: std::path::PathBuf,
    dir: Option<tempfile::TempDir>,
    src: String,
) -> Result<HttpResponse, Failure> {
    let name = src.clone();
    let facts = web::block(move || {
        let facts = probe(&path, &name);
        drop(dir);
        facts
    })
    .await
    .map_err(|e| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the probe stopped: {e}"),
        )
    })?
    .map_err(|e| {
        Failure::new(StatusCode::BAD_REQUEST, "not_media", e.to_string()).with_param("url")
    })?;
    Ok(ok(
        "Created",
        Response {
            metadata: metadata(&facts, &src),
        },
    ))
}

fn bad_url(message: String) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, "invalid_url", message).with_param("url")
}

fn fetch_failure(e: FetchError) -> Failure {
    match e {
        FetchError::Permanent { .. } => {
            Failure::new(StatusCode::BAD_REQUEST, "source_unavailable", e.to_string())
        }
        FetchError::Transient { .. } => {
            Failure::new(StatusCode::BAD_GATEWAY, "source_unreachable", e.to_string())
        }
    }
    .with_param("url")
}

#[derive(Serialize)]
struct Response {
    metadata: Metadata,
}

/// FFprobe's JSON: numbers where it prints numbers, strings where it
/// prints strings (durations, rates, sizes); a value FFmpeg does not know
/// is left out.
#[derive(Serialize)]
struct Metadata {
    streams: Vec<Stream>,
    format: Format,
}

#[derive(Serialize)]
struct Stream {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    codec_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    codec_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r_frame_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    avg_frame_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bit_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Tags>,
}

#[derive(Serialize)]
struct Tags {
    rotate: String,
}

#[derive(Serialize)]
struct Format {
    filename: String,
    nb_streams: u32,
    format_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bit_rate: Option<String>,
}

/// FFprobe prints seconds with six decimals.
fn secs(s: f64) -> String {
    format!("{s:.6}")
}

fn metadata(facts: &Facts, src: &str) -> Metadata {
    let streams = facts
        .streams
        .iter()
        .map(|s| Stream {
            index: s.index,
            codec_name: s.codec_name,
            codec_type: s.codec_type,
            width: s.width,
            height: s.height,
            sample_rate: s.sample_rate.map(|r| r.to_string()),
            channels: s.channels,
            r_frame_rate: s.r_frame_rate.clone(),
            avg_frame_rate: s.avg_frame_rate.clone(),
            duration: s.duration.map(secs),
            bit_rate: s.bit_rate.map(|b| b.to_string()),
            tags: s.rotate.map(|r| Tags {
                rotate: r.to_string(),
            }),
        })
        .collect();
    let f = &facts.format;
    Metadata {
        streams,
        format: Format {
            filename: src.to_owned(),
            nb_streams: f.nb_streams,
            format_name: f.format_name.clone(),
            duration: f.duration.map(secs),
            size: f.size.map(|s| s.to_string()),
            bit_rate: f.bit_rate.map(|b| b.to_string()),
        },
    }
}
