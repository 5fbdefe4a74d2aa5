//! Uploads to AzureBlob destinations: not built yet.

use super::send::{Context, Payload, Sent};
use super::task::AzureBlob;
use super::UploadError;

pub async fn send(_d: &AzureBlob, _cx: &Context, _file: &Payload) -> Result<Sent, UploadError> {
    Err(UploadError::Refused(
        "azure uploads are not built yet".into(),
    ))
}
