//! Uploads to Dropbox destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::Dropbox;
use super::UploadError;

pub async fn send(_d: &Dropbox, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused(
        "dropbox uploads are not built yet".into(),
    ))
}
