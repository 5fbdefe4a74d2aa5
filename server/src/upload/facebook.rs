//! Uploads to Facebook, Graph API video upload
//! (<https://developers.facebook.com/docs/video-api/guides/publishing>):
//! one `POST {endpoint}/me/videos` as `multipart/form-data` with the
//! access token, the seed's text fields and the file in `source`. The
//! token travels in the form, never in the URL, so that no access log on
//! the way keeps it. The server's own token (an `auth_secret` task) goes
//! to `upload.facebook_endpoint` only: a task's `endpoint` is the
//! client's to choose, and would receive it.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use super::context::{Context, Payload, Sent};
use super::task::Facebook;
use super::UploadError;

pub async fn send(d: &Facebook, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let endpoint = d.endpoint(&cx.config.facebook_endpoint);
    // The task was checked, again before this attempt: without a token
    // of its own it has the server's auth_secret, and goes to the
    // server's endpoint.
    let token = d
        .oauth_access_token
        .as_deref()
        .unwrap_or(&cx.config.facebook_access_token);
    let mut form = Form::new()
        .text("access_token", token.to_owned())
        .text("title", d.title.clone())
        .text("description", d.description.clone());
    for (field, value) in [
        ("caption", &d.caption),
        ("name", &d.name),
        ("message", &d.message),
    ] {
        if let Some(value) = value {
            form = form.text(field, value.clone());
        }
    }
    let source = Part::stream_with_length(file.bytes.clone(), file.bytes.len() as u64)
        .file_name(format!("video.{}", extension(file.content_type)))
        .mime_str(file.content_type)
        .map_err(|e| UploadError::Refused(format!("{}: {e}", file.content_type)))?;
    form = form.part("source", source);
    let answer = cx
        .call(
            cx.http
                .post(format!("{endpoint}/me/videos"))
                .multipart(form),
        )
        .await?;
    if !answer.status.is_success() {
        return Err(failure(answer.status, &answer.text()));
    }
    let answer: Value = answer
        .json("Facebook's answer to the upload")
        .map_err(|e| e.after_upload("Facebook"))?;
    // Graph answers ids as strings; a number is taken as well.
    let id = match answer.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(UploadError::Refused(format!(
                "Facebook took the video but answered without its id: {answer}"
            )))
        }
    };
    let mut sent = Sent::new();
    sent.insert("id".into(), Value::String(id));
    Ok(sent)
}

/// The file name's extension Graph sees, which it reads the container
/// from (the task's check let videos alone through).
fn extension(content_type: &str) -> &'static str {
    match content_type {
        "video/webm" => "webm",
        _ => "mp4",
    }
}

/// Graph's errors are `{"error": {"message", "type", "code", …}}`. Codes
/// 1 and 2 (a temporary problem) and 4, 17, 32, 341, 613 (rate limits)
/// are worth another try whatever the status; other 4xx are refusals.
fn failure(status: StatusCode, text: &str) -> UploadError {
    let error = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let Some(error) = error else {
        return UploadError::from_status("Facebook", status, text);
    };
    let why = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
    let code = error.get("code").and_then(Value::as_i64);
    let message = match code {
        Some(code) => format!("Facebook refused the upload ({status}, {kind} {code}): {why}"),
        None => format!("Facebook refused the upload ({status}): {why}"),
    };
    let temporary = matches!(code, Some(1 | 2 | 4 | 17 | 32 | 341 | 613));
    if temporary || status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        UploadError::Transient(message)
    } else {
        UploadError::Refused(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::fake::{context, fake, payload, Reply};

    fn task(addr: std::net::SocketAddr) -> Facebook {
        serde_json::from_value(serde_json::json!({
            "title": "t", "description": "d", "oauth_access_token": "tok",
            "endpoint": format!("http://{addr}/graph")
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_success_answer_over_64_kib_is_refused_as_too_large() {
        let (addr, seen) = fake(|_, _| {
            let padding = "x".repeat(100 * 1024);
            Reply::new(200, format!(r#"{{"id":"1","padding":"{padding}"}}"#))
        })
        .await;
        let e = send(&task(addr), &context(Some(addr), 1024), &payload(10))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, UploadError::Refused(m) if m.contains("too large")),
            "{e:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    fn transient(e: &UploadError) -> bool {
        matches!(e, UploadError::Transient(_))
    }

    #[tokio::test]
    async fn an_unreadable_answer_to_a_successful_upload_is_not_tried_again() {
        for body in ["<html>busy</html>", "{}"] {
            let (addr, _) = fake(move |_, _| (200, body)).await;
            let e = send(&task(addr), &context(Some(addr), 1024), &payload(10))
                .await
                .unwrap_err();
            assert!(matches!(e, UploadError::Refused(_)), "{body}: {e:?}");
        }
    }

    #[test]
    fn graph_errors_are_refusals_unless_temporary() {
        let bad_token = r#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#;
        let e = failure(StatusCode::BAD_REQUEST, bad_token);
        assert!(!transient(&e));
        assert!(e.to_string().contains("Invalid OAuth access token."), "{e}");
        let limited = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4}}"#;
        assert!(transient(&failure(StatusCode::BAD_REQUEST, limited)));
        assert!(transient(&failure(StatusCode::BAD_GATEWAY, "<html>")));
        assert!(!transient(&failure(StatusCode::FORBIDDEN, "no")));
    }
}
