//! Uploads to Facebook destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::Facebook;
use super::UploadError;

pub async fn send(_d: &Facebook, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused(
        "facebook uploads are not built yet".into(),
    ))
}
