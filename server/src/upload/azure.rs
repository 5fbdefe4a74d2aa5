//! Uploads to Azure Blob storage (and Azurite), with the `object_store`
//! crate over [`super::object_client`], as S3 uploads: one Put Blob for
//! files up to `upload.part_bytes`, a block blob of blocks of that size
//! above (Put Block, then Put Block List, which alone makes the blob
//! appear: a failed upload leaves no blob, and Azure drops uncommitted
//! blocks by itself).
//!
//! The account's endpoint is given as is (`with_endpoint`), Azurite's
//! path-style `http://127.0.0.1:10000/devstoreaccount1` included:
//! object_store then addresses `<endpoint>/<container>/<blob>` and signs
//! the resource `/<account>/<path>`, i.e.
//! `/devstoreaccount1/devstoreaccount1/<container>/<blob>`, which is what
//! the storage emulator expects of a path-style account. Its emulator
//! mode is not used: it would read `AZURITE_BLOB_STORAGE_URL` from the
//! environment instead of the request's endpoint.

use object_store::azure::MicrosoftAzureBuilder;
use object_store::{Attribute, Attributes};
use serde_json::Value;

use super::context::{Context, Payload, Sent};
use super::object_client::{attribute, no_retries, object_path, put, Transport};
use super::task::AzureBlob;
use super::UploadError;

/// A block blob has at most 50,000 blocks.
const MAX_BLOCKS: u64 = 50_000;

pub async fn send(d: &AzureBlob, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    let (container, blob) = d.container_and_blob();
    let endpoint = d.account_url();
    let transport = Transport::new(cx, "Azure Blob storage");
    let store = MicrosoftAzureBuilder::new()
        .with_account(&d.account)
        .with_access_key(&d.key)
        .with_container_name(container)
        .with_endpoint(endpoint.clone())
        .with_allow_http(endpoint.starts_with("http:"))
        .with_retry(no_retries())
        .with_http_connector(transport.clone())
        .build()
        .map_err(|e| UploadError::Refused(format!("Azure Blob destination: {e}")))?;

    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::ContentType,
        attribute("contenttype", &d.contenttype)?,
    );
    let path = object_path(&blob)?;
    let len = file.bytes.len() as u64;
    let part = cx.config.part_bytes.max(1).max(len.div_ceil(MAX_BLOCKS));
    put(&store, &path, &file.bytes, attributes, part, &transport).await?;

    let mut sent = Sent::new();
    sent.insert("url".into(), Value::String(d.blob_url()));
    Ok(sent)
}
