//! Uploads to Ftp destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::Ftp;
use super::UploadError;

pub async fn send(_d: &Ftp, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused("ftp uploads are not built yet".into()))
}
