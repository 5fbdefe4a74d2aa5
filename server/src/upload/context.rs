//! What every sender is given and answers: the file (the cached output,
//! mapped), a client whose connections pass the address guard, bounded
//! reads of what a destination answers, and the settings; the answer is
//! the result fields the seed names (`url`, `id`, `path`, `status`),
//! shown in the token's status.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::task::ServerCredentials;
use super::UploadError;
use crate::config::Upload as UploadConfig;
use crate::net::guard::Guard;

/// The file to send.
pub struct Payload {
    /// The whole output, mapped read-only from the cache.
    pub bytes: Bytes,
    /// The output's own MIME type (`video/mp4`, …).
    pub content_type: &'static str,
    /// The upload task's id: the same for every attempt of one upload,
    /// across restarts (a name for what an attempt leaves behind, so the
    /// next one can find it).
    pub id: String,
}

/// What senders share.
pub struct Context {
    /// Every connection passes the guard; no total timeout (a large file
    /// to a slow server takes what it takes), but a read timeout.
    pub http: reqwest::Client,
    /// The same, except that it follows no redirect: for HTTP
    /// destinations, whose requests carry the task's own headers (its
    /// credentials), which a redirect would take to another host.
    pub http_no_redirects: reqwest::Client,
    /// For protocols reqwest does not speak (FTP).
    pub guard: Guard,
    pub config: Arc<UploadConfig>,
}

impl Context {
    pub fn new(config: Arc<UploadConfig>) -> Result<Context, reqwest::Error> {
        Self::with_guard(
            config.clone(),
            Guard {
                allow_private: config.allow_private,
                exempt: Vec::new(),
            },
        )
    }

    pub fn with_guard(config: Arc<UploadConfig>, guard: Guard) -> Result<Context, reqwest::Error> {
        let builder = || {
            guard
                .client_builder(5)
                .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
                .read_timeout(Duration::from_secs(config.read_timeout_secs))
        };
        let http = builder().build()?;
        // After the guard's policy, which it replaces.
        let http_no_redirects = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Context {
            http,
            http_no_redirects,
            guard,
            config,
        })
    }
}

impl Context {
    /// What the server itself holds, for the tasks' checks.
    pub fn own(&self) -> ServerCredentials<'_> {
        let c = &self.config;
        ServerCredentials {
            aws: !c.aws_access_key_id.is_empty() && !c.aws_secret_access_key.is_empty(),
            aws_buckets: &c.aws_buckets,
            aws_s3host: &c.aws_s3host,
            dropbox_auth_secret: &c.dropbox_auth_secret,
            youtube_auth_secret: &c.youtube_auth_secret,
            // Without a token of its own, no secret stands for it.
            facebook_auth_secret: if c.facebook_access_token.is_empty() {
                ""
            } else {
                &c.facebook_auth_secret
            },
            facebook_endpoint: &c.facebook_endpoint,
            mux: !c.mux_token_id.is_empty() && !c.mux_token_secret.is_empty(),
        }
    }

    /// Sends a request built on one of the context's clients once the
    /// guard has checked its URL: the resolver, where the guard sits,
    /// never sees an address written in a URL (`http://169.254.169.254/`),
    /// and an API's URL may come from a task or from an answer (YouTube's
    /// session).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UploadError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| UploadError::from_reqwest(&e))?;
        self.guard
            .check_url(request.url())
            .map_err(UploadError::Refused)?;
        client
            .execute(request)
            .await
            .map_err(|e| UploadError::from_reqwest(&e))
    }

    /// Sends a request (as [`Context::send`]) and reads its answer.
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, UploadError> {
        Ok(Answer::read(self.send(request).await?).await)
    }
}

/// Most bytes of a destination's answer that are read: far more than any
/// JSON the APIs answer or an error needs to be told; a destination that
/// sends more is not read further (it could send without end).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Reads at most [`MAX_ANSWER_BYTES`] of a body: the bytes, and how the
/// body ended: `Ok(true)` whole, `Ok(false)` cut at the limit, or the
/// error that broke it off.
pub async fn read_at_most<E>(
    chunks: impl Stream<Item = Result<Bytes, E>>,
) -> (Vec<u8>, Result<bool, E>) {
    let mut chunks = std::pin::pin!(chunks);
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return (body, Err(e)),
        };
        let room = MAX_ANSWER_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return (body, Ok(false));
        }
        body.extend_from_slice(&chunk);
    }
    (body, Ok(true))
}

/// A destination's answer: its status and the start of its body.
pub struct Answer {
    pub status: StatusCode,
    body: Vec<u8>,
    /// Whether the body was read whole, or what broke it off.
    whole: Result<bool, UploadError>,
}

impl Answer {
    /// Reads `response`'s body, up to [`MAX_ANSWER_BYTES`].
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let (body, whole) = read_at_most(response.bytes_stream()).await;
        Answer {
            status,
            body,
            whole: whole.map_err(|e| UploadError::from_reqwest(&e)),
        }
    }

    /// What was read of the body, as text (for an error's message).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The whole body as JSON; `what` names the answer in errors
    /// ("Facebook's answer to the upload"). A body larger than
    /// [`MAX_ANSWER_BYTES`] is refused: no API answers that much.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, UploadError> {
        match &self.whole {
            Ok(true) => {}
            Ok(false) => {
                return Err(UploadError::Refused(format!(
                    "{what} is too large (over {} KiB)",
                    MAX_ANSWER_BYTES / 1024
                )))
            }
            Err(e) => return Err(e.clone().map_message(|m| format!("{what} broke off: {m}"))),
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| UploadError::Transient(format!("{what} could not be read: {e}")))
    }
}

/// Result fields of a finished upload.
pub type Sent = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn an_endless_answer_is_read_up_to_64_kib_and_no_further() {
        let pulled = AtomicUsize::new(0);
        let endless = futures_util::stream::repeat_with(|| {
            pulled.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1000]))
        });
        let (body, whole) = read_at_most(endless).await;
        assert_eq!(body.len(), MAX_ANSWER_BYTES);
        assert!(matches!(whole, Ok(false)));
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            MAX_ANSWER_BYTES.div_ceil(1000)
        );

        let short = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("{}"))]);
        let (body, whole) = read_at_most(short).await;
        assert_eq!((&body[..], whole.ok()), (&b"{}"[..], Some(true)));
    }

    #[tokio::test]
    async fn an_address_written_in_a_url_is_refused_before_any_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().take(5) {
                if s.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let config = crate::config::Config::load(&Default::default())
            .unwrap()
            .upload;
        assert!(!config.allow_private);
        let cx = Context::new(Arc::new(config)).unwrap();
        for url in [
            format!("http://127.0.0.1:{port}/videos"),
            format!("http://[::ffff:127.0.0.1]:{port}/videos"),
        ] {
            let err = cx.send(cx.http.post(&url).body("x")).await.unwrap_err();
            assert!(
                matches!(&err, UploadError::Refused(why) if why.contains("refused")),
                "{url}: {err:?}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}
