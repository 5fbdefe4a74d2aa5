//! The Media service (`/media/v1`): uploads (multipart, streamed to the
//! blob store, size-limited), their ingestion with libavformat, and
//! downloads of originals and processed results with Range, ETag,
//! If-None-Match and HEAD (`crate::http::entity`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::media::pixop::{self as media, Facts, Scanning};
use clipstream_storage::{PixopMedia, PixopVideo, Store};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::auth::{self, Bearer};
use super::envelope::{date, ok, Exception};
use super::videos::{base, team_video};
use crate::cluster;
use crate::http::entity::{self, Meta};

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/upload/light/{id}", web::post().to(upload_light))
        .route("/upload/{id}", web::post().to(upload_full))
        .route("/download/{kind}/{id}", web::get().to(download))
        .route("/download/{kind}/{id}", web::head().to(download))
}

async fn upload_full(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Exception> {
    upload(req, caller, id.into_inner(), payload, false).await
}

async fn upload_light(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Exception> {
    upload(req, caller, id.into_inner(), payload, true).await
}

/// A file name as it may be shown and sent back in Content-Disposition:
/// its last path segment, printable, at most 255 bytes.
fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    while out.len() > 255 {
        out.pop();
    }
    if out.is_empty() {
        "media".to_owned()
    } else {
        out
    }
}

async fn upload(
    req: HttpRequest,
    caller: Bearer,
    id: String,
    payload: web::Payload,
    light: bool,
) -> Result<HttpResponse, Exception> {
    let video = team_video(&req, &caller, &id)?;
    if video.parent.is_some() {
        return Err(Exception::bad_request(
            "this is a processed video: media is uploaded to originals only",
        ));
    }
    if video.media.is_some() {
        return Err(Exception::conflict(
            "this video already has its media; make a new video for another file",
        ));
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(Exception::bad_request(
            "send the media as multipart/form-data with one file part",
        ));
    }
    let state = auth::state(&req)?;
    let limit = state.config.pixop.max_upload_bytes;
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut stored: Option<PixopMedia> = None;
    let bad_form = |e: actix_multipart::MultipartError| {
        Exception::bad_request(format!("the multipart body is malformed: {e}"))
    };
    let result: Result<(), Exception> = async {
        while let Some(field) = form.next().await {
            let mut field = field.map_err(bad_form)?;
            let disposition = field.content_disposition().cloned();
            let file_name = disposition
                .as_ref()
                .and_then(|d| d.get_filename())
                .map(clean_file_name);
            let Some(file_name) = file_name else {
                let name = disposition
                    .as_ref()
                    .and_then(|d| d.get_name())
                    .unwrap_or("")
                    .to_owned();
                return Err(Exception::bad_request(format!(
                    "the form part {name:?} is not a file; send one file part (with a filename)"
                )));
            };
            if stored.is_some() {
                return Err(Exception::bad_request(
                    "the form holds more than one file; send one per upload",
                ));
            }
            // Served back on download: only media types, so that a file
            // cannot come back as a page.
            let content_type = field
                .content_type()
                .map(|m| m.essence_str().to_ascii_lowercase())
                .filter(|t| t.starts_with("video/") || t == "application/mxf")
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let mut writer = state.store.new_body(limit).await?;
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(bad_form)?;
                writer.write(&chunk).await?;
            }
            if writer.size() == 0 {
                return Err(Exception::bad_request("the file part is empty"));
            }
            let blob = state.store.commit_pixop_body(writer).await?;
            stored = Some(PixopMedia {
                blob: blob.id,
                size: blob.size,
                hash: blob.hash,
                file_name,
                content_type,
                modified: clipstream_storage::unix_now(),
            });
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(m) = &stored {
            state.store.remove_pixop_blob(&m.blob).await;
        }
        return Err(e);
    }
    let media = stored.ok_or_else(|| Exception::bad_request("the form holds no file part"))?;
    let now = clipstream_storage::unix_now_ms();
    let upload = json!({
        "uploadState": { "updatedAt": date(now), "uploadStatus": "DONE" },
        "hasFinishedUploading": true,
        "fileName": media.file_name,
        "fileSize": media.size,
        "fileType": media.content_type,
        "fileContainerName": Value::Null,
    });
    let blob = media.blob.clone();
    let mut taken = false;
    let updated = state
        .store
        .update_pixop_video(&id, |v| {
            // Two uploads at once: the first to land keeps its file.
            taken = v.media.is_some();
            if !taken {
                v.media = Some(media.clone());
                v.light = light;
                v.upload = Some(upload.clone());
                v.ingestion = Some(ingestion(now, "INGESTING", 0.0, None, None));
            }
        })
        .await?;
    if taken || updated.is_none() {
        state.store.remove_pixop_blob(&blob).await;
        return Err(match updated {
            None => Exception::not_found("video", &id),
            Some(_) => Exception::conflict("this video already has its media"),
        });
    }
    actix_web::rt::spawn(ingest(state.store.clone(), id.clone(), blob, light));
    let base = base(&req)?;
    Ok(ok(json!({
        "projectId": video.project,
        "videoId": id,
        "checkIngestProgressUrl": format!("{base}/videos/v1/check-ingest-video-progress/{id}"),
        "processVideoUrl": format!("{base}/videos/v1/process-video/{id}"),
    })))
}

fn ingestion(
    at_ms: u64,
    status: &str,
    percent: f64,
    metadata: Option<Value>,
    error: Option<String>,
) -> Value {
    let available = metadata.is_some();
    let mut v = json!({
        "ingestionState": {
            "updatedAt": date(at_ms),
            "ingestionStatus": status,
            "videoMetadataAvailable": available,
            "videoMetadataCommitted": available,
            "processingProgressPercent": percent,
        },
        "metadata": metadata,
        // Quality assessment (metrics and subjective scores) is not done
        // by this server: said as null, never made up.
        "qualityAssessment": Value::Null,
    });
    if let Some(error) = error {
        v["error"] = json!(error);
    }
    v
}

fn scanning_json(s: Scanning) -> Value {
    let (kind, order) = match s {
        Scanning::Progressive => ("progressive", Value::Null),
        Scanning::TopFieldFirst => ("interlaced", json!("top_field")),
        Scanning::BottomFieldFirst => ("interlaced", json!("bottom_field")),
        Scanning::Interlaced => ("interlaced", Value::Null),
        Scanning::Unknown => ("unknown", Value::Null),
    };
    json!({ "scanningType": kind, "interlacedFieldOrder": order })
}

pub fn metadata_json(f: &Facts) -> Value {
    json!({
        "containerName": f.container_name,
        "longContainerName": f.long_container_name,
        "codecName": f.codec_name,
        "longCodecName": f.long_codec_name,
        "pixelFormat": {
            "name": f.pixel_format,
            "chromaSubsampling": f.chroma.as_ref().map(|c| json!({ "yuv": c.yuv, "bits": c.bits })),
        },
        "frameWidth": f.width,
        "frameHeight": f.height,
        "scanning": {
            "metadata": scanning_json(f.scanning),
            "heuristics": f.heuristics.map(scanning_json),
        },
        "averageFramerate": f.average_fps,
        "durationInMillis": f.duration_ms,
        "totalFrames": f.total_frames,
        "size": f.size,
        "videoStreamSize": f.video_stream_size,
        "bitrate": f.bit_rate,
        "storageAspectRatio": format!("{}:{}", f.storage_aspect.0, f.storage_aspect.1),
        "displayAspectRatio": format!("{}:{}", f.display_aspect.0, f.display_aspect.1),
    })
}

/// Runs `work` on a blocking thread, writing its progress (percent, from
/// the shared counter it updates) into the video's record while it runs.
pub async fn with_progress<T: Send + 'static>(
    store: &Store,
    id: &str,
    work: impl FnOnce(Arc<AtomicU32>) -> T + Send + 'static,
    mut record: impl FnMut(&mut PixopVideo, f64),
) -> Option<T> {
    let percent = Arc::new(AtomicU32::new(0));
    let mut handle = tokio::task::spawn_blocking({
        let percent = percent.clone();
        move || work(percent)
    });
    let mut shown = 0;
    loop {
        tokio::select! {
            done = &mut handle => return done.ok(),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                let now = percent.load(Ordering::Relaxed);
                if now != shown {
                    shown = now;
                    let result = store
                        .update_pixop_video(id, |v| record(v, f64::from(now)))
                        .await;
                    if let Err(e) = result {
                        tracing::warn!(video = id, error = %e, "could not record progress");
                    }
                }
            }
        }
    }
}

/// After a restart: ingestions it cut off run again (their file is
/// stored); processing jobs it cut off are failed with a message saying
/// so, and the client asks again. Returns how many videos were touched.
pub async fn resume(store: &Store) -> Result<usize, clipstream_storage::Error> {
    let mut touched = 0;
    for video in store.all_pixop_videos()? {
        touched += resume_one(store, video, false).await?;
    }
    Ok(touched)
}

/// Takes up video `id` of a node that stopped: its ingestion runs again
/// here, its processing job is failed (as after a restart).
pub async fn take_over(store: Store, id: String) {
    match store.pixop_video(&id) {
        Ok(Some(video)) => {
            if let Err(e) = resume_one(&store, video, true).await {
                tracing::error!(video = %id, error = %e, "a Pixop job could not be taken over");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(video = %id, error = %e, "a Pixop job to take over could not be read")
        }
    }
}

/// What [`resume`] does for one video; `taken` when this node already
/// holds its jobs (taken over), else jobs a live node holds are left.
async fn resume_one(
    store: &Store,
    video: PixopVideo,
    taken: bool,
) -> Result<usize, clipstream_storage::Error> {
    let mut touched = 0;
    let elsewhere = |kind: &'static str| {
        let id = video.id.clone();
        async move { !taken && cluster::held_elsewhere(store, kind, &id).await }
    };
    {
        let status = |part: &Option<Value>, state: &str, key: &str| {
            part.as_ref()
                .and_then(|p| p[state][key].as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        if status(&video.ingestion, "ingestionState", "ingestionStatus") == "INGESTING"
            && !elsewhere(cluster::PIXOP_INGEST).await
        {
            if let Some(media) = &video.media {
                actix_web::rt::spawn(ingest(
                    store.clone(),
                    video.id.clone(),
                    media.blob.clone(),
                    video.light,
                ));
                touched += 1;
            }
        }
        let processing = status(&video.processing, "processingState", "processingStatus");
        if (processing == "QUEUED" || processing == "PROCESSING")
            && !elsewhere(cluster::PIXOP_PROCESS).await
        {
            let now = clipstream_storage::unix_now_ms();
            store
                .update_pixop_video(&video.id, |v| {
                    if let Some(p) = v.processing.as_mut() {
                        // The percentage reached stays: not 100% done.
                        let reached = p["processingState"]["processingProgressPercent"]
                            .as_f64()
                            .unwrap_or(0.0);
                        p["processingState"] = json!({
                            "updatedAt": date(now),
                            "processingStatus": "FAILED",
                            "processingProgressPercent": reached,
                        });
                        p["error"] = json!(
                            "the server restarted during the job; ask for the processing again"
                        );
                    }
                })
                .await?;
            touched += 1;
        }
    }
    Ok(touched)
}

/// Reads the uploaded media's facts into the video's ingestion, unless
/// another node of the cluster does.
pub(super) async fn ingest(store: Store, id: String, blob: String, light: bool) {
    if let Some(epoch) = cluster::hold(&store, cluster::PIXOP_INGEST, &id).await {
        ingest_held(store.clone(), id.clone(), blob, light).await;
        cluster::release(&store, cluster::PIXOP_INGEST, &id, epoch).await;
    }
}

async fn ingest_held(store: Store, id: String, blob: String, light: bool) {
    let path: PathBuf = match store.pixop_blob_path(&blob).await {
        Ok(path) => path,
        Err(e) => {
            finish_ingest(&store, &id, Err(e.to_string())).await;
            return;
        }
    };
    let src = format!("video {id}");
    let facts = with_progress(
        &store,
        &id,
        move |percent| {
            media::ingest(&path, &src, !light, &mut |share| {
                percent.store((share * 100.0) as u32, Ordering::Relaxed)
            })
        },
        |v, p| {
            let now = clipstream_storage::unix_now_ms();
            v.ingestion = Some(ingestion(now, "INGESTING", p, None, None));
        },
    )
    .await;
    let result = match facts {
        Some(Ok(facts)) => Ok(facts),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the ingestion stopped unexpectedly".to_owned()),
    };
    finish_ingest(&store, &id, result).await;
}

async fn finish_ingest(store: &Store, id: &str, result: Result<Facts, String>) {
    let now = clipstream_storage::unix_now_ms();
    let outcome = store
        .update_pixop_video(id, |v| {
            v.ingestion = Some(match &result {
                Ok(facts) => {
                    if let Some(upload) = v.upload.as_mut() {
                        upload["fileContainerName"] = json!(facts.long_container_name);
                    }
                    ingestion(now, "INGESTED", 100.0, Some(metadata_json(facts)), None)
                }
                Err(e) => {
                    // The percentage reached stays: not 100% done.
                    let reached = v
                        .ingestion
                        .as_ref()
                        .and_then(|i| i["ingestionState"]["processingProgressPercent"].as_f64())
                        .unwrap_or(0.0);
                    ingestion(now, "FAILED", reached, None, Some(e.clone()))
                }
            });
        })
        .await;
    if let Err(e) = outcome {
        tracing::error!(video = id, error = %e, "could not record an ingestion");
    }
}

/// The facts of an ingested video, when its ingestion is done.
pub fn ingested(video: &PixopVideo) -> Option<&Value> {
    let ingestion = video.ingestion.as_ref()?;
    (ingestion["ingestionState"]["ingestionStatus"] == "INGESTED").then(|| &ingestion["metadata"])
}

async fn download(
    req: HttpRequest,
    caller: Bearer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Exception> {
    let (kind, id) = path.into_inner();
    let video = team_video(&req, &caller, &id)?;
    let media = match kind.as_str() {
        "original" if video.parent.is_none() => video
            .media
            .clone()
            .ok_or_else(|| Exception::conflict("this video has no media yet: upload it first"))?,
        "original" => {
            return Err(Exception::bad_request(
                "this is a processed video: download it at /media/v1/download/processed/{id}",
            ))
        }
        "processed" if video.parent.is_some() => {
            let status = &video
                .processing
                .as_ref()
                .map(|p| p["processingState"]["processingStatus"].clone());
            match (&video.media, status) {
                (Some(m), Some(s)) if s == "DONE" => m.clone(),
                _ => {
                    return Err(Exception::conflict(
                        "this video is not processed yet: poll its checkProgressUrl",
                    ))
                }
            }
        }
        "processed" => {
            return Err(Exception::bad_request(
                "this is an original video: download its processed videos by their own ids",
            ))
        }
        other => return Err(Exception::not_found("download kind", other)),
    };
    let state = auth::state(&req)?;
    let file = state
        .store
        .open_pixop_blob(&media.blob)
        .await?
        .ok_or_else(|| Exception::internal("the video's media file is missing"))?;
    let meta = Meta {
        len: media.size,
        etag: media.hash.clone(),
        modified: media.modified,
        content_type: media.content_type.clone(),
        cache_control: "private, no-cache",
    };
    let mut response = entity::respond(&req, &meta, file)
        .await
        .map_err(Exception::internal)?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        media
            .file_name
            .replace(|c: char| !c.is_ascii() || c == '\\', "_")
    );
    if let Ok(value) = header::HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
