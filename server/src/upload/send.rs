//! Sends a file to a destination of any type: the one place that knows
//! every sender.

use super::context::{Context, Payload, Sent};
use super::task::Destination;
use super::{azure, dropbox, facebook, ftp, http, mux, s3, youtube, UploadError};

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
        Destination::Mux(d) => mux::send(d, cx, file).await,
    }
}
