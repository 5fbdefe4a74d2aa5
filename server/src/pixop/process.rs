//! `POST /videos/v1/process-video/{id}`: every field of the seed's request
//! checked (a 400 names the field and the values it takes), turned into a
//! libavfilter chain, an encoder and a muxer (`engine::media::pixop::Job`),
//! and run as a background job of the render queue. The result is a new
//! video of the project whose `parentId` is the source.
//!
//! Pixop's own algorithms map to named open equivalents where one exists,
//! and the answer's `openEquivalents` says which; where none does
//! (`pabsr1`, `dvres`, `clarityBoost`) the request is refused with a 400
//! saying so. The README's Pixop section lists every option with its
//! filter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use clipstream_actors::engine::media::pixop::{self as media, Job, Scanning};
use clipstream_storage::{PixopMedia, PixopVideo, Store};
use serde_json::{json, Value};

use super::auth::{self, Bearer};
use super::cancel::{shutting_down, Cancel};
use super::envelope::{date, ok, Exception};
use super::media::{ingested, with_progress};
use super::plan::{parse_request, plan, Plan, Source};
use super::videos::{base, team_video};
use crate::cluster;
use crate::delivery::Renders;

fn processing(
    at_ms: u64,
    status: &str,
    percent: f64,
    plan: Option<&Value>,
    error: Option<&str>,
) -> Value {
    let mut v = json!({
        "processingState": {
            "updatedAt": date(at_ms),
            "processingStatus": status,
            "processingProgressPercent": percent,
        },
    });
    if let Some(plan) = plan {
        v["processingParameters"] = plan.clone();
    }
    if let Some(error) = error {
        v["error"] = json!(error);
    }
    v
}

fn parameters_json(plan: &Plan) -> Value {
    json!({
        "sourceVideo": {
            "startPositionMilliseconds": plan.job.start_ms,
            "endPositionMilliseconds": plan.job.end_ms,
        },
        "targetVideo": {
            "preset": Value::Null,
            "container": { "name": plan.container, "properties": { "muxer": plan.job.muxer } },
            "codec": {
                "name": plan.codec,
                "properties": { "encoder": plan.job.encoder, "profile": plan.profile },
            },
            "pixelFormat": {
                "name": plan.pixel_format,
                "chromaSubsampling": { "yuv": plan.yuv, "bits": plan.bits },
            },
            "bitrate": plan.job.bit_rate,
            "frameWidth": plan.width,
            "frameHeight": plan.height,
            "frameRate": plan.fps,
            "scanning": match plan.job.interlaced {
                Some(Scanning::BottomFieldFirst) => "interlaced_bff",
                Some(_) => "interlaced_tff",
                None => "progressive",
            },
            "videoFilters": plan.filters.iter().map(|(name, filter)| json!({
                "name": name,
                "properties": { "libavfilter": filter },
            })).collect::<Vec<_>>(),
        },
    })
}

pub async fn process_video(
    req: HttpRequest,
    caller: Bearer,
    id: web::Path<String>,
    body: web::Bytes,
    renders: web::Data<Arc<Renders>>,
) -> Result<HttpResponse, Exception> {
    let source = team_video(&req, &caller, &id)?;
    let request = parse_request(&body).map_err(refusal)?;
    if source.parent.is_some() {
        return Err(Exception::bad_request(
            "this is a processed video: process its original instead",
        ));
    }
    let Some(media) = source.media.clone() else {
        return Err(Exception::conflict(
            "this video has no media yet: upload it first",
        ));
    };
    let metadata = ingested(&source).ok_or_else(|| {
        Exception::conflict("this video's ingestion has not finished: poll checkIngestProgressUrl")
    })?;
    let plan = plan(&request, &Source::of(metadata)).map_err(refusal)?;
    let state = auth::state(&req)?;
    let mut processed = PixopVideo::new(
        caller.0.team.id.clone(),
        &source.project,
        &caller.0.user.id,
        format!("{} (processed)", source.name).trim_start(),
    );
    processed.parent = Some(source.id.clone());
    let parameters = parameters_json(&plan);
    let now = clipstream_storage::unix_now_ms();
    processed.processing = Some(processing(now, "QUEUED", 0.0, Some(&parameters), None));
    let ticket = renders.background_worker(&processed.id).ok_or_else(|| {
        Exception::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "ServiceBusyException",
            "too many jobs are waiting; try again later",
        )
    })?;
    state.store.create_pixop_video(&processed).await?;
    let store = state.store.clone();
    let job_id = processed.id.clone();
    let cancel = Cancel::register(&processed.id);
    let file_name = {
        let stem = media
            .file_name
            .rsplit_once('.')
            .map_or(media.file_name.as_str(), |(s, _)| s);
        format!("{stem}-processed.{}", plan.extension)
    };
    let content_type = plan.content_type;
    let job = plan.job.clone();
    actix_web::rt::spawn(async move {
        // A fresh id: no other node can hold it; held so that another
        // node's restart leaves it alone and its death is noticed.
        let epoch = cluster::hold(&store, cluster::PIXOP_PROCESS, &job_id).await;
        let _held = epoch.map(|epoch| Held(store.clone(), job_id.clone(), epoch));
        let Some(_slot) = ticket.wait().await else {
            finish(
                &store,
                &job_id,
                Err("the job queue went away".into()),
                &parameters,
            )
            .await;
            return;
        };
        let result = run(
            &store,
            &job_id,
            &media,
            job,
            &parameters,
            file_name,
            content_type,
            cancel.flag.clone(),
        )
        .await;
        // The result's own facts, read like an upload's (light: no idet),
        // so that it is ingested when it is DONE.
        if let Ok(made) = &result {
            super::media::ingest(store.clone(), job_id.clone(), made.blob.clone(), true).await;
        }
        if result.is_err() && shutting_down() {
            return;
        }
        finish(&store, &job_id, result, &parameters).await;
        drop(cancel);
    });
    let base = base(&req)?;
    Ok(ok(json!({
        "sourceVideoId": source.id,
        "processedVideoId": processed.id,
        "projectId": source.project,
        "checkProgressUrl": format!("{base}/videos/v1/check-process-video-progress/{}", processed.id),
        "downloadMediaUrl": format!("{base}/media/v1/download/processed/{}", processed.id),
        "openEquivalents": plan.equivalents,
        "filterGraph": plan.job.filters,
    })))
}

/// Gives up the job's hold in the cluster however the job ends.
struct Held(Store, String, i64);

impl Drop for Held {
    fn drop(&mut self) {
        if !self.0.cluster().shared() {
            return;
        }
        let (store, id, epoch) = (self.0.clone(), std::mem::take(&mut self.1), self.2);
        actix_web::rt::spawn(async move {
            cluster::release(&store, cluster::PIXOP_PROCESS, &id, epoch).await;
        });
    }
}

/// Runs the job; the processed media on success.
#[allow(clippy::too_many_arguments)]
async fn run(
    store: &Store,
    id: &str,
    source: &PixopMedia,
    job: Job,
    parameters: &Value,
    file_name: String,
    content_type: &str,
    cancelled: Arc<AtomicBool>,
) -> Result<PixopMedia, String> {
    let input = store
        .pixop_blob_path(&source.blob)
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::Builder::new()
        .prefix("pixop-")
        .tempdir_in(store.data_dir().join("tmp"))
        .map_err(|e| e.to_string())?;
    // Not the display name: a long upload name plus "-processed" passes
    // the file system's 255 bytes.
    let extension = file_name.rsplit_once('.').map_or("out", |(_, e)| e);
    let output = dir.path().join(format!("out.{extension}"));
    let started = {
        let now = clipstream_storage::unix_now_ms();
        let params = parameters.clone();
        store
            .update_pixop_video(id, |v| {
                v.processing = Some(processing(now, "PROCESSING", 0.0, Some(&params), None))
            })
            .await
            .map_err(|e| e.to_string())?
    };
    if started.is_none() {
        return Err("the video was deleted".into());
    }
    let out = output.clone();
    let params = parameters.clone();
    let done = with_progress(
        store,
        id,
        move |percent| {
            media::process(&input, &out, &job, &mut |share| {
                percent.store((share * 100.0) as u32, Ordering::Relaxed);
                !cancelled.load(Ordering::Relaxed)
            })
        },
        move |v, p| {
            let now = clipstream_storage::unix_now_ms();
            v.processing = Some(processing(
                now,
                "PROCESSING",
                p.min(99.0),
                Some(&params),
                None,
            ));
        },
    )
    .await
    .ok_or_else(|| "the job stopped unexpectedly".to_owned())?;
    done.map_err(|e| e.to_string())?;
    // The result into the blob store, streamed.
    let mut file = tokio::fs::File::open(&output)
        .await
        .map_err(|e| e.to_string())?;
    let mut writer = store.new_body(u64::MAX).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        use tokio::io::AsyncReadExt as _;
        let n = file.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        writer.write(&buf[..n]).await.map_err(|e| e.to_string())?;
    }
    let blob = store
        .commit_pixop_body(writer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(PixopMedia {
        blob: blob.id,
        size: blob.size,
        hash: blob.hash,
        file_name,
        content_type: content_type.to_owned(),
        modified: clipstream_storage::unix_now(),
    })
}

async fn finish(store: &Store, id: &str, result: Result<PixopMedia, String>, parameters: &Value) {
    let now = clipstream_storage::unix_now_ms();
    let blob = result.as_ref().ok().map(|m| m.blob.clone());
    let outcome = store
        .update_pixop_video(id, |v| match &result {
            Ok(media) => {
                v.upload = Some(json!({
                    "uploadState": { "updatedAt": date(now), "uploadStatus": "DONE" },
                    "hasFinishedUploading": true,
                    "fileName": media.file_name,
                    "fileSize": media.size,
                    "fileType": media.content_type,
                    "fileContainerName": Value::Null,
                }));
                v.media = Some(media.clone());
                v.processing = Some(processing(now, "DONE", 100.0, Some(parameters), None));
            }
            Err(e) => {
                // The percentage reached stays: a failure is not 100% done.
                let reached = v
                    .processing
                    .as_ref()
                    .and_then(|p| p["processingState"]["processingProgressPercent"].as_f64())
                    .unwrap_or(0.0);
                v.processing = Some(processing(
                    now,
                    "FAILED",
                    reached,
                    Some(parameters),
                    Some(e),
                ));
            }
        })
        .await;
    match outcome {
        Ok(Some(_)) => {}
        // Deleted meanwhile: its result goes too.
        Ok(None) => {
            if let Some(blob) = blob {
                store.remove_pixop_blob(&blob).await;
            }
        }
        Err(e) => tracing::error!(video = id, error = %e, "could not record a processing job"),
    }
    if let Err(e) = &result {
        tracing::warn!(video = id, error = %e, "a Pixop processing job failed");
    }
}

fn refusal(r: super::plan::Refusal) -> Exception {
    if r.field.is_empty() {
        Exception::bad_request(r.message)
    } else {
        Exception::bad_field(&r.field, r.message)
    }
}
