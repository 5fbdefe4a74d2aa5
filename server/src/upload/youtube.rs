//! Uploads to YouTube, Data API v3, as a resumable upload
//! (<https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol>):
//! a `POST` with the video's metadata opens an upload session and answers
//! its URL in `Location`; a `PUT` there sends the file. When that `PUT`
//! breaks off (a reset, a timeout, a 5xx), the session is asked how much
//! it has (`Content-Range: bytes */LENGTH`) and only the rest is sent, a
//! few times, before the attempt gives up and the service retries it from
//! the start. With a `playlistid`, the new video is then added to that
//! playlist.

use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use super::context::{Answer, Context, Payload, Sent};
use super::oauth::{bearer, Bearer, Provider};
use super::task::Youtube;
use super::UploadError;

/// Resumes of an interrupted `PUT` within one attempt.
const MAX_RESUMES: u32 = 4;
/// Tries of adding the uploaded video to its playlist: the upload itself
/// is not repeated for it, which would make a second video.
const PLAYLIST_TRIES: u32 = 3;

pub async fn send(d: &Youtube, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let bearer = bearer(cx, Provider::Google, d.oauth_access_token.as_deref()).await?;
    let api = Api {
        cx,
        base: cx.config.youtube_endpoint.trim_end_matches('/'),
        bearer: &bearer,
    };
    let session = api.open_session(d, file).await?;
    let video = api.upload(&session, d, file).await?;
    let Some(id) = video.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return Err(UploadError::Refused(format!(
            "YouTube took the video but answered without its id: {video}"
        )));
    };
    if let Some(playlist) = &d.playlistid {
        api.add_to_playlist(playlist, &id).await?;
    }
    let mut sent = Sent::new();
    sent.insert("id".into(), Value::String(id));
    Ok(sent)
}

/// The video's type: the task's, or the output's own.
fn mimetype<'a>(d: &'a Youtube, file: &'a Payload) -> &'a str {
    d.mimetype.as_deref().unwrap_or(file.content_type)
}

struct Api<'a> {
    cx: &'a Context,
    base: &'a str,
    bearer: &'a Bearer,
}

/// Where an upload stands after a `PUT` or a status query.
enum Progress {
    /// The video resource YouTube created.
    Done(Value),
    /// The session has this many bytes (the ones before the first not
    /// received).
    Received(usize),
}

impl Api<'_> {
    /// The metadata request: answers the session's upload URL.
    async fn open_session(&self, d: &Youtube, file: &Payload) -> Result<reqwest::Url, UploadError> {
        let url = format!(
            "{}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status&notifySubscribers={}",
            self.base, d.notify_subscribers
        );
        let mut snippet = json!({
            "title": d.title,
            "description": d.description,
            "categoryId": d.category,
        });
        if !d.tags.is_empty() {
            snippet["tags"] = json!(d.tags);
        }
        let body = json!({
            "snippet": snippet,
            "status": { "privacyStatus": d.status },
        });
        let request = self
            .cx
            .http
            .post(&url)
            .bearer_auth(&self.bearer.value)
            .header(CONTENT_TYPE, "application/json; charset=UTF-8")
            .header("X-Upload-Content-Length", file.bytes.len())
            .header("X-Upload-Content-Type", mimetype(d, file))
            .body(body.to_string());
        let response = self.cx.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let answer = Answer::read(response).await;
            return Err(self
                .failure("the upload request", status, &answer.text())
                .await);
        }
        // The session URL may in principle be relative to the request's.
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| response.url().join(l).ok());
        location.ok_or_else(|| {
            UploadError::Transient(
                "YouTube opened no upload session (no Location in its answer)".into(),
            )
        })
    }

    /// Sends the file to the session, resuming where it stopped when the
    /// connection breaks off.
    async fn upload(
        &self,
        session: &reqwest::Url,
        d: &Youtube,
        file: &Payload,
    ) -> Result<Value, UploadError> {
        let mut from = 0;
        let mut resumes = 0;
        loop {
            let error = match self.put(session, d, file, from).await {
                Ok(Progress::Done(video)) => return Ok(video),
                // The session kept less than was sent: send the rest.
                Ok(Progress::Received(n)) => {
                    UploadError::Transient(format!("YouTube kept {n} bytes of the upload"))
                }
                Err(e) => e,
            };
            if !matches!(error, UploadError::Transient(_)) || resumes == MAX_RESUMES {
                return Err(error);
            }
            resumes += 1;
            tokio::time::sleep(self.pause(resumes)).await;
            match self.status(session, file).await? {
                Progress::Done(video) => return Ok(video),
                Progress::Received(n) => from = n,
            }
            tracing::info!(from, resumes, "resuming a YouTube upload: {error}");
        }
    }

    /// The bytes from `from` on, with their `Content-Range` when the
    /// session already has the ones before.
    async fn put(
        &self,
        session: &reqwest::Url,
        d: &Youtube,
        file: &Payload,
        from: usize,
    ) -> Result<Progress, UploadError> {
        let len = file.bytes.len();
        let mut request = self
            .cx
            .http
            .put(session.clone())
            .bearer_auth(&self.bearer.value)
            .header(CONTENT_TYPE, mimetype(d, file));
        if from > 0 {
            request = request.header(CONTENT_RANGE, format!("bytes {from}-{}/{len}", len - 1));
        }
        let response = self.cx.send(request.body(file.bytes.slice(from..))).await?;
        self.progress(response, len).await
    }

    /// Asks the session how many bytes it has.
    async fn status(
        &self,
        session: &reqwest::Url,
        file: &Payload,
    ) -> Result<Progress, UploadError> {
        let response = self
            .cx
            .send(
                self.cx
                    .http
                    .put(session.clone())
                    .bearer_auth(&self.bearer.value)
                    .header(CONTENT_RANGE, format!("bytes */{}", file.bytes.len()))
                    .body(bytes::Bytes::new()),
            )
            .await?;
        self.progress(response, file.bytes.len()).await
    }

    /// A session's answer: the video when complete, `308 Resume
    /// Incomplete` with the `Range` it has otherwise.
    async fn progress(&self, response: Response, len: usize) -> Result<Progress, UploadError> {
        let status = response.status();
        if status.as_u16() == 308 {
            // `Range: bytes=0-N`; none when it has nothing yet.
            let received = match response.headers().get(RANGE) {
                None => 0,
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(|r| r.strip_prefix("bytes=0-"))
                    .and_then(|last| last.trim().parse::<usize>().ok())
                    .map(|last| last + 1)
                    .filter(|&n| n <= len)
                    .ok_or_else(|| {
                        UploadError::Transient(format!(
                            "YouTube's upload session answered an unreadable Range: {v:?}"
                        ))
                    })?,
            };
            return Ok(Progress::Received(received));
        }
        let answer = Answer::read(response).await;
        if status.is_success() {
            // The video exists from here on.
            return answer
                .json("YouTube's answer to the upload")
                .map(Progress::Done)
                .map_err(|e| e.after_upload("YouTube"));
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            // The session expired: the next attempt opens another.
            return Err(UploadError::Transient(format!(
                "YouTube's upload session is gone ({status})"
            )));
        }
        Err(self.failure("the upload", status, &answer.text()).await)
    }

    async fn add_to_playlist(&self, playlist: &str, video: &str) -> Result<(), UploadError> {
        let body = json!({
            "snippet": {
                "playlistId": playlist,
                "resourceId": { "kind": "youtube#video", "videoId": video },
            }
        });
        let mut tries = 0;
        let error = loop {
            tries += 1;
            let request = self
                .cx
                .http
                .post(format!(
                    "{}/youtube/v3/playlistItems?part=snippet",
                    self.base
                ))
                .bearer_auth(&self.bearer.value)
                .header(CONTENT_TYPE, "application/json; charset=UTF-8")
                .body(body.to_string());
            let sent = self.cx.send(request).await;
            let error = match sent {
                Err(e) => e,
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let answer = Answer::read(response).await;
                    self.failure(
                        "adding the video to its playlist",
                        answer.status,
                        &answer.text(),
                    )
                    .await
                }
            };
            if !matches!(error, UploadError::Transient(_)) || tries == PLAYLIST_TRIES {
                break error;
            }
            tokio::time::sleep(self.pause(tries)).await;
        };
        // Refused either way: a retry of the task would upload the video
        // a second time.
        Err(UploadError::Refused(format!(
            "the video {video} was uploaded, but not added to playlist {playlist}: {error}"
        )))
    }

    /// The pause before the `n`th resume or retry within an attempt, as
    /// the service's own backoff.
    fn pause(&self, n: u32) -> Duration {
        let c = &self.cx.config;
        Duration::from_millis(c.retry_backoff_ms.saturating_mul(1 << n.min(16)) / 2)
            .min(Duration::from_secs(c.max_backoff_secs))
    }

    /// What an error answer means; Google's errors are
    /// `{"error": {"code", "message", "errors": [{"reason", …}]}}`.
    async fn failure(&self, what: &str, status: StatusCode, text: &str) -> UploadError {
        let error = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("error").cloned());
        let reason = error
            .as_ref()
            .and_then(|e| e.pointer("/errors/0/reason"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let why = error
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        let message = if reason.is_empty() {
            format!("YouTube refused {what} ({status}): {why}")
        } else {
            format!("YouTube refused {what} ({status}, {reason}): {why}")
        };
        match status.as_u16() {
            401 => self.bearer.refused(message).await,
            // Google asks to back off and retry these.
            403 if matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded") => {
                UploadError::Transient(message)
            }
            400..=499 if status.as_u16() != 408 && status.as_u16() != 429 => {
                UploadError::Refused(message)
            }
            _ => UploadError::from_status("YouTube", status, &why),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::upload::fake::{context_with, fake, payload, Reply, Seen};

    /// A fake YouTube whose session answers `put` to the upload; the
    /// context pointing at it; a task with a token of its own.
    async fn youtube(put: (u16, &'static str)) -> (Context, Youtube, Arc<Mutex<Vec<Seen>>>) {
        let (addr, seen) = fake(move |method, _| match method {
            "POST" => Reply::new(200, "").header("location", "/session/1"),
            _ => put.into(),
        })
        .await;
        let cx = context_with(Some(addr), |c| {
            c.youtube_endpoint = format!("http://{addr}")
        });
        let d: Youtube = serde_json::from_value(json!({
            "title": "t", "description": "d", "category": "22", "oauth_access_token": "tok"
        }))
        .unwrap();
        (cx, d, seen)
    }

    #[tokio::test]
    async fn an_unreadable_answer_to_the_upload_is_not_tried_again() {
        let (cx, d, seen) = youtube((201, "<html>done?</html>")).await;
        let e = send(&d, &cx, &payload(10)).await.unwrap_err();
        assert!(
            matches!(&e, UploadError::Refused(m) if m.contains("not sent again")),
            "{e:?}"
        );
        let seen = seen.lock().unwrap();
        let calls: Vec<_> = seen.iter().map(|s| s.method.as_str()).collect();
        assert_eq!(calls, ["POST", "PUT"], "no resume, no status query");
    }

    #[tokio::test]
    async fn without_a_mimetype_the_video_goes_as_its_own_type() {
        let (cx, d, seen) = youtube((200, r#"{"id":"v1"}"#)).await;
        let webm = Payload {
            content_type: "video/webm",
            ..payload(10)
        };
        let sent = send(&d, &cx, &webm).await.unwrap();
        assert_eq!(sent["id"], "v1");
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].header("x-upload-content-type"), Some("video/webm"));
        assert_eq!(seen[1].header("content-type"), Some("video/webm"));
    }
}
