//! The `object_store` plumbing S3 and Azure Blob uploads share: a
//! transport that speaks through our guarded reqwest client (never
//! object_store's own) and notes the first failure, by which an upload is
//! judged transient or refused; no retries of object_store's own (the
//! upload service retries, within its bounds); and the put itself, one
//! request or a multipart upload aborted on failure.

use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
};
use object_store::path::Path;
use object_store::{
    AttributeValue, Attributes, ClientOptions, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, RetryConfig,
};
use reqwest::header::HeaderValue;

use super::context::{read_at_most, Context};
use super::UploadError;
use crate::net::guard::{error_chain, Guard};

/// Parts in flight at once: enough to fill a link, few enough that a
/// failure stops the upload soon.
const PARTS_IN_FLIGHT: usize = 4;

pub(super) fn header_value(field: &str, v: &str) -> Result<HeaderValue, UploadError> {
    HeaderValue::from_str(v)
        .map_err(|_| UploadError::Refused(format!("{field} {v:?} is not a header value")))
}

/// An attribute object_store sends as a header (it panics on a header
/// it cannot build, so the value is checked first).
pub(super) fn attribute(field: &str, v: &str) -> Result<AttributeValue, UploadError> {
    header_value(field, v)?;
    Ok(AttributeValue::from(v.to_owned()))
}

/// The object key as object_store takes it (checked at request time to
/// have no empty, `.` or `..` segment, which is all it refuses besides
/// control characters).
pub(super) fn object_path(key: &str) -> Result<Path, UploadError> {
    Path::parse(key).map_err(|e| UploadError::Refused(format!("the object name {key:?}: {e}")))
}

/// object_store's own retries, off: a request fails at its first error
/// and the upload service decides whether the whole upload is tried
/// again (a part retried inside would hide the failure from its bounds).
pub(super) fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    }
}

/// Sends `bytes` to `path`: one PUT up to `part_bytes`, parts of
/// `part_bytes` above. A multipart upload that fails is aborted, so the
/// destination keeps no parts of it.
pub(super) async fn put(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: &Bytes,
    attributes: Attributes,
    part_bytes: u64,
    transport: &Transport,
) -> Result<(), UploadError> {
    let len = bytes.len() as u64;
    if len <= part_bytes {
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        return store
            .put_opts(path, PutPayload::from_bytes(bytes.clone()), opts)
            .await
            .map(|_| ())
            .map_err(|e| transport.failure(&e));
    }

    let opts = PutMultipartOptions {
        attributes,
        ..PutMultipartOptions::default()
    };
    let mut upload = store
        .put_multipart_opts(path, opts)
        .await
        .map_err(|e| transport.failure(&e))?;
    // Parts are slices of the mapped file: nothing is copied.
    let step = usize::try_from(part_bytes).unwrap_or(usize::MAX);
    let parts: Vec<_> = (0..bytes.len())
        .step_by(step)
        .map(|start| {
            let end = bytes.len().min(start.saturating_add(step));
            upload.put_part(PutPayload::from_bytes(bytes.slice(start..end)))
        })
        .collect();
    let sent = stream::iter(parts)
        .buffer_unordered(PARTS_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await;
    let done = match sent {
        Ok(_) => upload.complete().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let Err(e) = done else {
        return Ok(());
    };
    // The failure is decided before the abort's own requests are seen.
    let failure = transport.failure(&e);
    match upload.abort().await {
        Ok(()) => Err(failure),
        Err(abort) => {
            tracing::warn!(
                "{}: the failed multipart upload of {path} could not be aborted: {abort}",
                transport.what
            );
            Err(failure.map_message(|m| {
                format!("{m}; the incomplete multipart upload could not be aborted: {abort}")
            }))
        }
    }
}

/// object_store's HTTP transport: our guarded client (private addresses
/// refused at connect time; here also IP literals, which skip DNS), and a
/// note of the first failure an upload meets, by which it is judged
/// transient or refused (object_store's own errors carry the status only
/// in their text).
#[derive(Debug, Clone)]
pub(super) struct Transport {
    client: reqwest::Client,
    guard: Guard,
    /// Who answers, in messages: `S3`, `Azure Blob storage`.
    what: &'static str,
    first_failure: Arc<Mutex<Option<UploadError>>>,
}

impl Transport {
    pub(super) fn new(cx: &Context, what: &'static str) -> Transport {
        Transport {
            client: cx.http.clone(),
            guard: cx.guard.clone(),
            what,
            first_failure: Arc::new(Mutex::new(None)),
        }
    }

    fn note(&self, failure: UploadError) {
        if let Ok(mut first) = self.first_failure.lock() {
            first.get_or_insert(failure);
        }
    }

    /// What an object_store error means for the upload: the first
    /// failure the transport saw (a status, a connection error, a
    /// refusal of the guard), or, when no request failed, what the error
    /// itself says.
    pub(super) fn failure(&self, e: &object_store::Error) -> UploadError {
        if let Some(seen) = self.first_failure.lock().ok().and_then(|f| f.clone()) {
            return seen;
        }
        let why = format!("{}: {}", self.what, error_chain(e));
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(h) = s.downcast_ref::<HttpError>() {
                return match h.kind() {
                    HttpErrorKind::Decode => UploadError::Refused(why),
                    _ => UploadError::Transient(why),
                };
            }
            source = s.source();
        }
        // S3 may answer 200 with an error in the body.
        if why.contains("InternalError") || why.contains("SlowDown") {
            UploadError::Transient(why)
        } else {
            UploadError::Refused(why)
        }
    }

    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = reqwest::Url::parse(&req.uri().to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        if let Err(why) = self.guard.check_url(&url) {
            self.note(UploadError::Refused(format!("{}: {why}", self.what)));
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                std::io::Error::other(why),
            ));
        }
        let response = match HttpService::call(&self.client, req).await {
            Ok(r) => r,
            Err(e) => {
                self.note(self.transport_failure(&e));
                return Err(e);
            }
        };
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        // An error answer is small: read its start to say what the server
        // said (never more: a server may send without end), and hand
        // object_store the same bytes.
        let (parts, body) = response.into_parts();
        let (body, whole) = read_at_most(body.bytes_stream()).await;
        if let Err(e) = whole {
            self.note(self.transport_failure(&e));
            return Err(e);
        }
        self.note(UploadError::from_status(
            self.what,
            status,
            &error_detail(&body),
        ));
        Ok(HttpResponse::from_parts(parts, Bytes::from(body).into()))
    }

    fn transport_failure(&self, e: &HttpError) -> UploadError {
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<reqwest::Error>() {
                return UploadError::from_reqwest(r).map_message(|m| format!("{}: {m}", self.what));
            }
            source = s.source();
        }
        UploadError::Transient(format!("{}: {}", self.what, error_chain(e)))
    }
}

/// `Code: Message` of an S3 or Azure XML error body; the body's start
/// when it is not one. Never the whole body: S3 echoes the string it
/// signed, which a log needs no copy of.
fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(
            text[start..end]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned(),
        )
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ if text.trim_start().starts_with('<') => String::new(),
        _ => text.chars().take(200).collect(),
    }
}

impl HttpService for Transport {
    // async_trait's shape, written out (the crate is not ours to depend on).
    fn call<'life0, 'async_trait>(
        &'life0 self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(Transport::call(self, req))
    }
}

impl HttpConnector for Transport {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.clone()))
    }
}
