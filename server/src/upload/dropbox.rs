//! Uploads to Dropbox, API v2 (content endpoints,
//! <https://www.dropbox.com/developers/documentation/http/documentation>).
//! A file of at most one part (`upload.part_bytes`, and never more than
//! the 150 MiB Dropbox takes in one call) goes in one `files/upload`; a
//! larger one in an upload session: `upload_session/start` with the first
//! part, `append_v2` with the next ones, `finish` with the last part and
//! the commit. Either way the file lands at the task's path, overwriting
//! what was there, so that a retried upload gives the same result.

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::context::{Context, Payload, Sent};
use super::oauth::{bearer, Bearer, Provider};
use super::task::Dropbox;
use super::UploadError;

/// Dropbox's largest body for `files/upload` and for each session call.
const MAX_CALL_BYTES: u64 = 150 * 1024 * 1024;

pub async fn send(d: &Dropbox, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let bearer = bearer(cx, Provider::Dropbox, d.oauth_token.as_deref()).await?;
    let api = Api {
        cx,
        base: cx.config.dropbox_endpoint.trim_end_matches('/'),
        bearer: &bearer,
    };
    let commit = json!({
        "path": d.path(),
        "mode": "overwrite",
        "autorename": false,
        "mute": false,
    });
    let part = cx.config.part_bytes.clamp(1, MAX_CALL_BYTES) as usize;
    let bytes = &file.bytes;
    let metadata = if bytes.len() <= part {
        api.call("files/upload", &commit, bytes.clone()).await?
    } else {
        // At least two parts: the first starts the session, the last
        // finishes it.
        let start = api
            .call(
                "files/upload_session/start",
                &json!({ "close": false }),
                bytes.slice(..part),
            )
            .await?;
        let session_id = start
            .get("session_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                UploadError::Transient(format!(
                    "Dropbox started an upload session without a session_id: {start}"
                ))
            })?
            .to_owned();
        let mut offset = part;
        while bytes.len() - offset > part {
            let arg = json!({
                "cursor": { "session_id": session_id, "offset": offset },
                "close": false,
            });
            api.call(
                "files/upload_session/append_v2",
                &arg,
                bytes.slice(offset..offset + part),
            )
            .await?;
            offset += part;
        }
        let arg = json!({
            "cursor": { "session_id": session_id, "offset": offset },
            "commit": commit,
        });
        api.call("files/upload_session/finish", &arg, bytes.slice(offset..))
            .await?
    };
    let field = |name: &str| metadata.get(name).and_then(Value::as_str);
    let Some(id) = field("id") else {
        return Err(UploadError::Refused(format!(
            "Dropbox stored the file but answered without its id: {metadata}"
        )));
    };
    let mut sent = Sent::new();
    sent.insert(
        "path".into(),
        Value::String(field("path_display").map_or_else(|| d.path(), str::to_owned)),
    );
    sent.insert("id".into(), Value::String(id.to_owned()));
    Ok(sent)
}

struct Api<'a> {
    cx: &'a Context,
    base: &'a str,
    bearer: &'a Bearer,
}

impl Api<'_> {
    /// One content-endpoint call: the arguments in `Dropbox-API-Arg`, the
    /// bytes as the body; answers the JSON result (`null` for append).
    async fn call(&self, route: &str, arg: &Value, body: Bytes) -> Result<Value, UploadError> {
        let answer = self
            .cx
            .call(
                self.cx
                    .http
                    .post(format!("{}/2/{route}", self.base))
                    .bearer_auth(&self.bearer.value)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header("Dropbox-API-Arg", header_json(arg))
                    .body(body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(self.failure(route, answer.status, &answer.text()).await);
        }
        let read = answer.json(&format!("Dropbox's answer to {route}"));
        if route == "files/upload" || route == "files/upload_session/finish" {
            // The file is stored from here on.
            return read.map_err(|e| e.after_upload("Dropbox"));
        }
        read
    }

    /// What an error answer means (Dropbox's "Errors" section: 400 a bad
    /// request in plain text, 401 a bad token, 409 an endpoint error with
    /// its `error_summary`, 429 too many requests, 5xx its own trouble).
    async fn failure(&self, route: &str, status: StatusCode, text: &str) -> UploadError {
        let summary = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("error_summary")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        let message = format!("Dropbox refused {route} ({status}): {summary}");
        match status.as_u16() {
            401 => self.bearer.refused(message).await,
            // Dropbox asks to retry these later.
            409 if summary.contains("too_many_write_operations") => UploadError::Transient(message),
            400 | 403 | 409 => UploadError::Refused(message),
            _ => UploadError::from_status("Dropbox", status, &summary),
        }
    }
}

/// `arg` as the JSON of an HTTP header: Dropbox asks that every character
/// past 0x7E be escaped as `\uXXXX` (UTF-16, so a pair of them beyond
/// the BMP), since header values are not UTF-8.
fn header_json(arg: &Value) -> String {
    let text = arg.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            // Outside strings JSON has only ASCII, so `c` is inside one,
            // where an escape means the same character.
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::fake::{context_with, fake, payload};

    fn task() -> Dropbox {
        serde_json::from_value(json!({ "filename": "a.mp4", "oauth_token": "tok" })).unwrap()
    }

    #[tokio::test]
    async fn an_unreadable_answer_once_the_file_is_stored_is_not_tried_again() {
        // One part: files/upload stores it.
        let (addr, seen) = fake(|_, _| (200, "<html>")).await;
        let cx = context_with(Some(addr), |c| {
            c.dropbox_endpoint = format!("http://{addr}")
        });
        let e = send(&task(), &cx, &payload(10)).await.unwrap_err();
        assert!(matches!(e, UploadError::Refused(_)), "{e:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Parts: the session's finish stores it; its start does not.
        let (addr, _) = fake(|_, target| match target {
            "/2/files/upload_session/start" => (200, r#"{"session_id":"s1"}"#),
            "/2/files/upload_session/finish" => (200, "<html>"),
            _ => (200, "null"),
        })
        .await;
        let cx = context_with(Some(addr), |c| {
            c.dropbox_endpoint = format!("http://{addr}");
            c.part_bytes = 4;
        });
        let e = send(&task(), &cx, &payload(10)).await.unwrap_err();
        assert!(matches!(e, UploadError::Refused(_)), "{e:?}");
        let (addr, _) = fake(|_, _| (200, "<html>")).await;
        let cx = context_with(Some(addr), |c| {
            c.dropbox_endpoint = format!("http://{addr}");
            c.part_bytes = 4;
        });
        let e = send(&task(), &cx, &payload(10)).await.unwrap_err();
        assert!(
            matches!(e, UploadError::Transient(_)),
            "a session not started: {e:?}"
        );
    }

    #[test]
    fn header_arguments_escape_everything_past_ascii() {
        let arg = json!({ "path": "/Vidéos/\u{7f}ü 😀.mp4" });
        let header = header_json(&arg);
        assert_eq!(
            header,
            r#"{"path":"/Vid\u00e9os/\u007f\u00fc \ud83d\ude00.mp4"}"#
        );
        assert!(reqwest::header::HeaderValue::from_str(&header).is_ok());
        let back: Value = serde_json::from_str(&header).unwrap();
        assert_eq!(back, arg);
    }
}
