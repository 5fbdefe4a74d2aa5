//! Uploads to Mux Video through a direct upload
//! (<https://docs.mux.com/api-reference#video/tag/direct-uploads>):
//! `POST {endpoint}/video/v1/uploads` with the access token (HTTP Basic,
//! token id and secret) and the new asset's settings answers an upload
//! URL; a `PUT` of the file there; then `GET …/uploads/{id}` a few times
//! for the asset Mux made of it. The server's own token goes to
//! `upload.mux_endpoint` only, as every token here.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::context::{Context, Payload, Sent};
use super::task::Mux;
use super::UploadError;

/// Looks at the upload this many times, this far apart, for its asset:
/// Mux makes it a moment after the file arrives. Without one by then the
/// upload is still done; its id is the result.
const ASSET_LOOKS: u32 = 10;
const ASSET_LOOK_EVERY: Duration = Duration::from_millis(500);

pub async fn send(d: &Mux, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let base = cx.config.mux_endpoint.trim_end_matches('/');
    let (id, secret) = match (&d.token_id, &d.token_secret) {
        (Some(id), Some(secret)) => (id.as_str(), secret.as_str()),
        _ => (
            cx.config.mux_token_id.as_str(),
            cx.config.mux_token_secret.as_str(),
        ),
    };
    let mut settings = json!({ "playback_policy": d.playback_policy });
    if let Some(passthrough) = &d.passthrough {
        settings["passthrough"] = json!(passthrough);
    }
    let answer = cx
        .call(
            cx.http
                .post(format!("{base}/video/v1/uploads"))
                .basic_auth(id, Some(secret))
                .json(&json!({ "new_asset_settings": settings, "cors_origin": "*" })),
        )
        .await?;
    if !answer.status.is_success() {
        return Err(UploadError::from_status(
            "Mux (creating the upload)",
            answer.status,
            &answer.text(),
        ));
    }
    let created: Value = answer.json("Mux's new upload")?;
    let field = |v: &Value, name: &str| {
        v.pointer(&format!("/data/{name}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (Some(upload), Some(url)) = (field(&created, "id"), field(&created, "url")) else {
        return Err(UploadError::Transient(format!(
            "Mux answered a new upload without its id or URL: {created}"
        )));
    };
    // The URL is Mux's storage, signed: no credentials of ours go there.
    let put = cx
        .call(
            cx.http
                .put(&url)
                .header(reqwest::header::CONTENT_TYPE, file.content_type)
                .body(file.bytes.clone()),
        )
        .await?;
    if !put.status.is_success() {
        return Err(UploadError::from_status(
            "Mux's upload URL",
            put.status,
            &put.text(),
        ));
    }
    let mut sent = Sent::new();
    sent.insert("id".into(), Value::String(upload.clone()));
    for look in 0..ASSET_LOOKS {
        if look > 0 {
            tokio::time::sleep(ASSET_LOOK_EVERY).await;
        }
        let answer = cx
            .call(
                cx.http
                    .get(format!("{base}/video/v1/uploads/{upload}"))
                    .basic_auth(id, Some(secret)),
            )
            .await;
        // The file is there: a failed look does not undo that.
        let Ok(answer) = answer else { continue };
        if answer.status != StatusCode::OK {
            continue;
        }
        let Ok(state) = answer.json::<Value>("Mux's upload") else {
            continue;
        };
        if let Some(asset) = field(&state, "asset_id") {
            sent.insert("asset_id".into(), Value::String(asset));
            break;
        }
        if field(&state, "status").as_deref() == Some("errored") {
            let why = state
                .pointer("/data/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(UploadError::Refused(format!(
                "Mux could not make an asset of the upload: {why}"
            ))
            .after_upload("Mux"));
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use base64::Engine as _;

    use super::*;
    use crate::upload::fake::{context_with, fake, payload, Reply};

    fn context(addr: SocketAddr) -> Context {
        context_with(Some(addr), |c| {
            c.mux_endpoint = format!("http://{addr}");
            c.mux_token_id = "server-id".into();
            c.mux_token_secret = "server-secret".into();
        })
    }

    fn task(v: Value) -> Mux {
        serde_json::from_value(v).unwrap()
    }

    /// Mux as its API reference shows it, the upload URL on the fake too.
    async fn mux(
        asset_after_looks: usize,
    ) -> (
        SocketAddr,
        std::sync::Arc<std::sync::Mutex<Vec<crate::upload::fake::Seen>>>,
    ) {
        let looks = std::sync::atomic::AtomicUsize::new(0);
        let addr_cell = std::sync::Arc::new(std::sync::OnceLock::<SocketAddr>::new());
        let cell = addr_cell.clone();
        let (addr, seen) = fake(move |method, target| match (method, target) {
            ("POST", "/video/v1/uploads") => {
                let url = format!("http://{}/storage/u1?sig=s", cell.get().unwrap());
                Reply::new(
                    201,
                    json!({"data": {"id": "u1", "url": url, "status": "waiting"}}).to_string(),
                )
            }
            ("PUT", "/storage/u1?sig=s") => Reply::new(200, ""),
            ("GET", "/video/v1/uploads/u1") => {
                let n = looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let data = if n >= asset_after_looks {
                    json!({"id": "u1", "status": "asset_created", "asset_id": "a1"})
                } else {
                    json!({"id": "u1", "status": "waiting"})
                };
                Reply::new(200, json!({ "data": data }).to_string())
            }
            _ => Reply::new(404, "{}"),
        })
        .await;
        addr_cell.set(addr).unwrap();
        (addr, seen)
    }

    fn basic(id: &str, secret: &str) -> String {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        format!("Basic {pair}")
    }

    #[tokio::test]
    async fn a_file_becomes_a_mux_asset_through_a_direct_upload() {
        let (addr, seen) = mux(1).await;
        let sent = send(&task(json!({})), &context(addr), &payload(1000))
            .await
            .unwrap();
        assert_eq!(sent["id"], "u1");
        assert_eq!(sent["asset_id"], "a1");
        let seen = seen.lock().unwrap();
        let calls: Vec<String> = seen
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect();
        assert_eq!(
            calls,
            [
                "POST /video/v1/uploads",
                "PUT /storage/u1?sig=s",
                "GET /video/v1/uploads/u1",
                "GET /video/v1/uploads/u1"
            ]
        );
        let server = basic("server-id", "server-secret");
        assert_eq!(seen[0].header("authorization"), Some(server.as_str()));
        assert_eq!(
            seen[1].header("authorization"),
            None,
            "no token to the storage URL"
        );
        assert_eq!(seen[1].header("content-type"), Some("video/mp4"));
        assert_eq!(seen[1].header("content-length"), Some("1000"));
    }

    #[tokio::test]
    async fn a_tasks_own_token_is_used_and_a_refusal_is_not_retried() {
        let (addr, seen) = mux(0).await;
        let own =
            task(json!({"token_id": "mine", "token_secret": "s", "playback_policy": ["signed"]}));
        let sent = send(&own, &context(addr), &payload(10)).await.unwrap();
        assert_eq!(sent["asset_id"], "a1");
        let mine = basic("mine", "s");
        assert_eq!(
            seen.lock().unwrap()[0].header("authorization"),
            Some(mine.as_str())
        );

        let (addr, _) = fake(|_, _| (401, r#"{"error":{"messages":["Unauthorized"]}}"#)).await;
        let e = send(&own, &context(addr), &payload(10)).await.unwrap_err();
        assert!(
            matches!(&e, UploadError::Refused(m) if m.contains("401")),
            "{e:?}"
        );
        let (addr, _) = fake(|_, _| (503, "busy")).await;
        let e = send(&own, &context(addr), &payload(10)).await.unwrap_err();
        assert!(matches!(e, UploadError::Transient(_)), "{e:?}");
    }
}
