//! Uploads to S3 destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::S3;
use super::UploadError;

pub async fn send(_d: &S3, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused("s3 uploads are not built yet".into()))
}
