//! What every destination type is given and answers: the file (the
//! cached output, mapped), a client whose connections pass the address
//! guard, and the settings; the answer is the result fields the seed
//! names (`url`, `id`, `path`, `status`), shown in the token's status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::task::Destination;
use super::{azure, dropbox, facebook, ftp, http, s3, youtube, UploadError};
use crate::config::Upload as UploadConfig;
use crate::net::guard::Guard;

/// The file to send.
pub struct Payload {
    /// The whole output, mapped read-only from the cache.
    pub bytes: Bytes,
    /// The output's own MIME type (`video/mp4`, …).
    pub content_type: &'static str,
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
