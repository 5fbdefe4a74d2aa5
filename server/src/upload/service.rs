//! The uploads of render requests: recorded with the request, each run in
//! the background once its output is in the cache (rendered for it, or
//! by a viewer who got there first: the same video is never rendered
//! twice), at most `upload.workers` at once, a transient failure tried
//! again with backoff up to `upload.max_attempts`, and picked up again
//! after a restart. An upload's failure is its own: the render, its
//! viewers and the other uploads go on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clipstream_actors::engine::edit::Format;
use clipstream_actors::engine::plan::Deliverable;
use clipstream_storage::{
    Error as StoreError, RenderRequest, Store, UploadState, UploadTask as Record,
};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::context::{Context, Payload};
use super::send;
use super::task::{self, Task};
use super::UploadError;
use crate::cluster;
use crate::config::Upload as UploadConfig;
use crate::delivery::{DeliveryError, Renders};
use crate::metrics::Metrics;

pub struct Uploads {
    store: Store,
    renders: Arc<Renders>,
    metrics: Arc<Metrics>,
    cx: Context,
    /// Uploads being sent at once.
    slots: Semaphore,
    /// Tasks with a runner, so that a task asked for twice runs once.
    running: Mutex<HashSet<String>>,
    /// Held while a request's tasks are recorded and started, and while a
    /// runner records its task's end: a request asking again for a task
    /// finds it running or ended, never in between.
    gate: tokio::sync::Mutex<()>,
}

/// Why a task could not even be read back (a record from a newer or
/// damaged version): it fails rather than running with a guess.
fn unreadable(e: serde_json::Error) -> String {
    format!("the upload task could not be read: {e}")
}

impl Uploads {
    pub fn new(
        store: Store,
        renders: Arc<Renders>,
        metrics: Arc<Metrics>,
        config: Arc<UploadConfig>,
    ) -> Result<Arc<Uploads>, reqwest::Error> {
        Ok(Arc::new(Uploads {
            store,
            renders,
            metrics,
            slots: Semaphore::new(config.workers.max(1)),
            cx: Context::new(config)?,
            running: Mutex::new(HashSet::new()),
            gate: tokio::sync::Mutex::new(()),
        }))
    }

    /// Records the tasks of a render request of `request`'s token, as the
    /// token's uploads, and starts those not already done or underway.
    pub async fn submit(
        self: &Arc<Self>,
        request: &RenderRequest,
        tasks: &[Task],
    ) -> Result<(), DeliveryError> {
        let mut records = Vec::with_capacity(tasks.len());
        for t in tasks {
            let what = deliverable(&t.extension);
            let written = serde_json::to_value(t).map_err(|e| {
                StoreError::Corrupt(format!("an upload task could not be written: {e}"))
            })?;
            // The same token and the same task as written (credentials
            // included: a corrected password is a new task).
            let id_source = format!(
                "{}\n{}",
                request.token,
                clipstream_storage::renders::canonical_json(&written)
            );
            let id = blake3::hash(id_source.as_bytes()).to_hex()[..32].to_owned();
            let mut record = Record::new(
                &id,
                &request.token,
                &request.project,
                t.destination.kind(),
                &t.extension,
                written,
            );
            // The video it would send now: one already sent is not sent
            // again, another one is.
            record.content = Some(self.renders.output_digest(&request.token, what)?);
            records.push(record);
        }
        let _gate = self.gate.lock().await;
        for record in self.store.put_upload_tasks(&request.token, records).await? {
            self.spawn(record);
        }
        Ok(())
    }

    /// At start: runs again every upload the last process left pending.
    pub fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let pending = self.store.unfinished_upload_tasks()?;
        let n = pending.len();
        for record in pending {
            self.spawn(record);
        }
        Ok(n)
    }

    fn spawn(self: &Arc<Self>, record: Record) {
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if !running.insert(record.id.clone()) {
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            let (id, token) = (record.id.clone(), record.token.clone());
            let held = format!("{token}/{id}");
            let Some(epoch) = cluster::hold(&this.store, cluster::UPLOAD, &held).await else {
                this.let_go(&id);
                return;
            };
            this.run_held(record).await;
            cluster::release(&this.store, cluster::UPLOAD, &held, epoch).await;
        });
    }

    /// Starts again upload `key` (`token/id`) of a node that stopped.
    pub fn take_over(self: &Arc<Self>, key: &str) {
        let Some((token, id)) = key.split_once('/') else {
            return;
        };
        match self.store.upload_task(token, id) {
            Ok(Some(record)) if !record.state.is_final() => self.spawn(record),
            Ok(_) => {}
            Err(e) => tracing::error!(%key, error = %e, "an upload to take over could not be read"),
        }
    }

    /// Runs `record`'s task, which this node holds, to its end.
    async fn run_held(self: &Arc<Self>, record: Record) {
        let this = self.clone();
        {
            let (id, token) = (record.id.clone(), record.token.clone());
            let span =
                tracing::info_span!("upload", token = %record.token, id = %id, kind = %record.kind);
            // A task of its own, so that a panic in a sender ends this
            // upload as failed and nothing else.
            let runner = tokio::spawn(this.clone().run(record).instrument(span.clone()));
            match runner.await {
                Ok(Ok(())) => {}
                // Its token or project was deleted meanwhile: nothing to
                // send, nothing to record.
                Ok(Err(StoreError::TokenNotFound)) => this.let_go(&id),
                // Its record could not be written (the store is failing):
                // it runs again at the next start.
                Ok(Err(e)) => {
                    span.in_scope(
                        || tracing::error!(error = %e, "an upload's state could not be recorded"),
                    );
                    this.let_go(&id);
                }
                Err(e) => {
                    span.in_scope(|| tracing::error!(error = %e, "an upload panicked"));
                    let ended = match this.store.upload_task(&token, &id) {
                        Ok(Some(mut record)) if !record.state.is_final() => {
                            let why =
                                "the upload failed inside the server; its log has the details";
                            this.end(&mut record, Err(why.to_owned())).await
                        }
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    };
                    if ended.is_err() {
                        this.let_go(&id);
                    }
                }
            }
        }
    }

    /// The task has no runner any more.
    fn let_go(&self, id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// One task, to its end.
    async fn run(self: Arc<Self>, mut record: Record) -> Result<(), StoreError> {
        let task: Task = match record.task.clone().map(serde_json::from_value) {
            Some(Ok(task)) => task,
            Some(Err(e)) => return self.end(&mut record, Err(unreadable(e))).await,
            None => {
                let why = "the upload's definition was lost".to_owned();
                return self.end(&mut record, Err(why)).await;
            }
        };
        if let Err(invalid) = task::check_again(&task, &self.cx.own()) {
            let why = format!(
                "{}: {} (the server's settings changed since the upload was asked)",
                invalid.path, invalid.message
            );
            return self.end(&mut record, Err(why)).await;
        }
        let what = deliverable(&task.extension);
        let config = self.cx.config.clone();
        let max_attempts = config.max_attempts.max(1);
        loop {
            // Attempts cut off by restarts count too.
            if record.attempts >= max_attempts {
                let last = record.error.clone().unwrap_or_else(|| "interrupted".into());
                let why = format!("{last} (gave up after {} attempts)", record.attempts);
                return self.end(&mut record, Err(why)).await;
            }
            let (content, file) = match self.output(&record.id, &record.token, what).await {
                Ok(sent) => sent,
                Err(why) => return self.end(&mut record, Err(why)).await,
            };
            let _slot = self.slots.acquire().await;
            record.state = UploadState::Uploading;
            record.attempts += 1;
            record.content = Some(content);
            self.store.put_upload_task(&record, true).await?;
            tracing::info!(
                attempt = record.attempts,
                bytes = file.bytes.len(),
                "upload started"
            );
            let limit = attempt_limit(&config, file.bytes.len());
            let outcome =
                match tokio::time::timeout(limit, send::send(&task.destination, &self.cx, &file))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(UploadError::Transient(format!(
                    "the destination took longer than {} s for {} bytes (upload.min_bytes_per_sec)",
                    limit.as_secs(),
                    file.bytes.len()
                ))),
                };
            let kind = task.destination.kind();
            match outcome {
                Ok(result) => {
                    self.count(kind, "done");
                    tracing::info!(attempt = record.attempts, "upload done");
                    return self.end(&mut record, Ok(result)).await;
                }
                Err(UploadError::Transient(why)) if record.attempts < max_attempts => {
                    self.count(kind, "retry");
                    let wait = backoff(&config, record.attempts);
                    tracing::warn!(attempt = record.attempts, error = %why, wait_ms = wait.as_millis() as u64, "upload failed; trying again");
                    record.state = UploadState::Queued;
                    record.error = Some(why);
                    self.store.put_upload_task(&record, false).await?;
                    drop(_slot);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    self.count(kind, "failed");
                    let why = match &e {
                        UploadError::Transient(why) => {
                            format!("{why} (gave up after {} attempts)", record.attempts)
                        }
                        UploadError::Refused(why) => why.clone(),
                    };
                    tracing::warn!(attempt = record.attempts, error = %why, "upload failed");
                    return self.end(&mut record, Err(why)).await;
                }
            }
        }
    }

    /// The output to send and its content digest, waited for; a render
    /// that cannot run yet (the queue is full) is asked again later.
    async fn output(
        &self,
        id: &str,
        token: &str,
        what: Deliverable,
    ) -> Result<(String, Payload), String> {
        let content_type = match what {
            Deliverable::Movie(format) => format.content_type(),
            Deliverable::Poster | Deliverable::Thumbnail => Format::Jpg.content_type(),
        };
        // A full queue for half an hour is a failure.
        let mut busy_tries = 0u32;
        loop {
            match self.renders.finished(token, what).await {
                Ok((content, Ok(open))) => {
                    let file = Payload {
                        bytes: open.bytes.clone(),
                        content_type,
                        id: id.to_owned(),
                    };
                    return Ok((content, file));
                }
                Ok((_, Err(failure))) => {
                    return Err(format!("the render failed: {}", failure.message))
                }
                Err(DeliveryError::Busy { retry_after_secs }) if busy_tries < 360 => {
                    busy_tries += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after_secs.max(1))).await;
                }
                Err(e) => return Err(format!("the output cannot be rendered: {e}")),
            }
        }
    }

    /// Records a task's end (its credentials go with it), then lets go of
    /// it, under the gate.
    async fn end(
        &self,
        record: &mut Record,
        outcome: Result<Map<String, Value>, String>,
    ) -> Result<(), StoreError> {
        let _gate = self.gate.lock().await;
        record.finish(outcome);
        let written = self.store.put_upload_task(record, true).await;
        self.let_go(&record.id);
        written
    }

    fn count(&self, kind: &'static str, outcome: &'static str) {
        self.metrics
            .upload_attempts
            .get_or_create(&vec![("type", kind), ("outcome", outcome)])
            .inc();
    }

    /// The token's uploads as its status shows them: type, state, the
    /// result when done, the error when failed; never a credential.
    pub fn statuses(&self, token: &str) -> Result<Vec<Value>, StoreError> {
        Ok(self
            .store
            .uploads_of(token)?
            .into_iter()
            .map(|r| {
                let mut entry = Map::new();
                entry.insert("type".into(), json!(r.kind));
                entry.insert("extension".into(), json!(r.extension));
                entry.insert("state".into(), json!(r.state));
                entry.insert("attempts".into(), json!(r.attempts));
                if r.state == UploadState::Done {
                    entry.extend(r.result);
                }
                if let Some(error) = r.error {
                    entry.insert("error".into(), json!(error));
                }
                Value::Object(entry)
            })
            .collect())
    }

    /// Parses a request's `upload` with this server's settings.
    pub fn parse(&self, upload: &Value) -> Result<Vec<Task>, task::Invalid> {
        task::parse(upload, &self.cx.own())
    }
}

/// The output an upload task's extension names (checked at request time).
fn deliverable(extension: &str) -> Deliverable {
    Deliverable::Movie(Format::from_extension(extension).unwrap_or(Format::Mp4))
}

/// How long one attempt may take: a minute, plus the file at
/// `min_bytes_per_sec`.
fn attempt_limit(config: &UploadConfig, len: usize) -> Duration {
    let rate = config.min_bytes_per_sec.max(1);
    Duration::from_secs(60 + len as u64 / rate)
}

/// `retry_backoff_ms` doubled per attempt made, at most `max_backoff_secs`.
fn backoff(config: &UploadConfig, attempts: u32) -> Duration {
    let base = Duration::from_millis(config.retry_backoff_ms);
    let doubled = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    doubled.min(Duration::from_secs(config.max_backoff_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut c = crate::config::Config::load(&Default::default())
            .unwrap()
            .upload;
        c.retry_backoff_ms = 1000;
        c.max_backoff_secs = 5;
        let waits: Vec<u64> = (1..=5).map(|n| backoff(&c, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }
}
