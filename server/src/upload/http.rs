//! Uploads to Http destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::Http;
use super::UploadError;

pub async fn send(_d: &Http, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused(
        "http uploads are not built yet".into(),
    ))
}
