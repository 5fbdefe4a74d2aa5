//! What every destination type is given and answers: the file (the
//! cached output, mapped), a client whose connections pass the address
//! guard, and the settings; the answer is the result fields the seed
//! names (`url`, `id`, `path`, `status`), shown in the token's status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::task::{Destination, ServerCredentials};
use super::{azure, dropbox, facebook, ftp, http, s3, youtube, UploadError};
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
        let http = guard
            .client_builder(5)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.read_timeout_secs))
            .build()?;
        Ok(Context {
            http,
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
            dropbox_auth_secret: &c.dropbox_auth_secret,
            youtube_auth_secret: &c.youtube_auth_secret,
            facebook: !c.facebook_access_token.is_empty(),
        }
    }

    /// Sends a request built on [`Context::http`] once the guard has
    /// checked its URL: the resolver, where the guard sits, never sees an
    /// address written in a URL (`http://169.254.169.254/`), and an API's
    /// URL may come from a task or from an answer (YouTube's session).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UploadError> {
        let request = request.build().map_err(|e| UploadError::from_reqwest(&e))?;
        self.guard
            .check_url(request.url())
            .map_err(UploadError::Refused)?;
        self.http
            .execute(request)
            .await
            .map_err(|e| UploadError::from_reqwest(&e))
    }
}

/// Result fields of a finished upload.
pub type Sent = Map<String, Value>;

/// Sends `file` to `destination`, once; the caller retries.
pub async fn send(
    destination: &Destination,
    cx: &Context,
    file: &Payload,
) -> Result<Sent, UploadError> {
    match destination {
        Destination::S3(d) => s3::send(d, cx, file).await,
        Destination::Azureblob(d) => azure::send(d, cx, file).await,
        Destination::Http(d) => http::send(d, cx, file).await,
        Destination::Ftp(d) => ftp::send(d, cx, file).await,
        Destination::Dropbox(d) => dropbox::send(d, cx, file).await,
        Destination::Youtube(d) => youtube::send(d, cx, file).await,
        Destination::Facebook(d) => facebook::send(d, cx, file).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
