//! Uploads to Youtube destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::Youtube;
use super::UploadError;

pub async fn send(_d: &Youtube, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused(
        "youtube uploads are not built yet".into(),
    ))
}
