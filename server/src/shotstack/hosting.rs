//! Hosting files for the Shotstack API: render outputs, ingested sources
//! and renditions become assets of the account's `shotstack` project with
//! a public id (`storage::hosted`), served at `/hosted/<id>/<filename>`
//! by `routes::hosted`.

use std::path::Path;

use clipstream_storage::{AccountId, HostedFile, Project};
use tokio::io::AsyncReadExt;

use super::envelope::Failure;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The project every Shotstack resource of an account lives in: an
/// ordinary project, so the ImpossibleFX API sees the same templates and
/// files.
pub const PROJECT: &str = "shotstack";

/// The account's `shotstack` project, made on first use.
pub async fn project(state: &AppState, account: &AccountId) -> Result<Project, Failure> {
    Ok(state
        .store
        .project_named(account, PROJECT)
        .await
        .map_err(ApiError::from)?)
}

/// What a hosted file is and where it came from.
pub struct Hosting<'a> {
    /// The project asset's name; unique by construction (the caller's
    /// UUIDs are in it), so hosting never replaces another file's bytes.
    pub asset: &'a str,
    /// The name in the file's URL.
    pub filename: &'a str,
    pub render: Option<&'a str>,
    pub source: Option<&'a str>,
}

/// The file already hosted as `what`: delivering a render or a source
/// again (after a restart, say) finds it rather than hosting a second
/// file over the same asset. One the owner deleted stays deleted.
fn already_hosted(state: &AppState, what: &Hosting<'_>) -> Result<Option<HostedFile>, Failure> {
    let Some(parent) = what.render.or(what.source) else {
        return Ok(None);
    };
    let files = state
        .store
        .hosted_files_of(parent)
        .map_err(ApiError::from)?;
    Ok(files.into_iter().find(|f| f.asset == what.asset))
}

/// Hosts `bytes`.
pub async fn host_bytes(
    state: &AppState,
    account: &AccountId,
    what: Hosting<'_>,
    bytes: &[u8],
) -> Result<HostedFile, Failure> {
    host_read(state, account, what, bytes).await
}

/// Hosts the file at `path`.
pub async fn host_path(
    state: &AppState,
    account: &AccountId,
    what: Hosting<'_>,
    path: &Path,
) -> Result<HostedFile, Failure> {
    let io = |e| ApiError::from(clipstream_storage::Error::from(e));
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    host_read(state, account, what, file).await
}

/// Hosts what `from` reads, in pieces, unless it is hosted already.
async fn host_read(
    state: &AppState,
    account: &AccountId,
    what: Hosting<'_>,
    mut from: impl tokio::io::AsyncRead + Unpin,
) -> Result<HostedFile, Failure> {
    if let Some(file) = already_hosted(state, &what)? {
        return Ok(file);
    }
    let io = |e| ApiError::from(clipstream_storage::Error::from(e));
    let mut body = state
        .store
        .new_body(state.config.limits.max_asset_bytes)
        .await
        .map_err(ApiError::from)?;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = from.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        body.write(&buf[..n]).await.map_err(ApiError::from)?;
    }
    commit(state, account, what, body).await
}

/// Hosts `what.asset`, already a project asset (a signed upload's body):
/// typed by `what.filename` as [`commit`] types, and recorded; or the file
/// already hosted as it, found (after a restart, say) rather than a
/// second one over the same asset.
pub async fn host_existing(
    state: &AppState,
    account: &AccountId,
    what: Hosting<'_>,
) -> Result<HostedFile, Failure> {
    if let Some(file) = already_hosted(state, &what)? {
        return Ok(file);
    }
    let project = project(state, account).await?;
    let content_type = content_type_of(what.filename);
    let store = &state.store;
    store
        .set_asset_content_type(&project.uid, what.asset, &content_type)
        .await
        .map_err(ApiError::from)?;
    Ok(store
        .host_asset(
            account,
            &project.uid,
            what.asset,
            what.filename,
            what.render,
            what.source,
        )
        .await
        .map_err(ApiError::from)?)
}

async fn commit(
    state: &AppState,
    account: &AccountId,
    what: Hosting<'_>,
    body: clipstream_storage::BlobWriter,
) -> Result<HostedFile, Failure> {
    let project = project(state, account).await?;
    let content_type = content_type_of(what.filename);
    let store = &state.store;
    store
        .put_asset(&project.uid, what.asset, &content_type, body)
        .await
        .map_err(ApiError::from)?;
    let hosted = store
        .host_asset(
            account,
            &project.uid,
            what.asset,
            what.filename,
            what.render,
            what.source,
        )
        .await;
    match hosted {
        Ok(file) => Ok(file),
        Err(e) => {
            // No asset without its record: nothing half-made survives.
            let _ = store.delete_asset(&project.uid, what.asset).await;
            Err(ApiError::from(e).into())
        }
    }
}

/// A hosted file's type, by its name's extension.
fn content_type_of(filename: &str) -> String {
    mime_guess::from_path(filename)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// The public URL of a hosted file.
pub fn url(base: &str, file: &HostedFile) -> String {
    let name = percent_encoding::utf8_percent_encode(&file.filename, SEGMENT);
    format!("{base}/hosted/{}/{name}", file.id)
}

/// What a file name keeps encoded in a URL path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
