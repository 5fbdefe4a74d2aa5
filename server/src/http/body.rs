//! Request bodies: streamed to storage chunk by chunk, or read whole when
//! small (JSON), always within a limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use bytes::BytesMut;
use clipstream_storage::BlobWriter;
use futures_util::StreamExt;

use super::error::ApiError;

/// The declared Content-Length, refused at once when over `limit` so a
/// client does not send gigabytes only to be told no.
fn declared_len(req: &HttpRequest, limit: u64) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    let len: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_param("Content-Length", "Content-Length is not a number"))?;
    if len > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Some(len))
}

/// Streams the body into `writer`, whose own limit is enforced as bytes
/// arrive. A client that stops early leaves nothing behind: the writer
/// deletes its file when dropped.
pub async fn stream_to(
    req: &HttpRequest,
    mut payload: web::Payload,
    mut writer: BlobWriter,
    limit: u64,
) -> Result<BlobWriter, ApiError> {
    let declared = declared_len(req, limit)?;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadBody {
            message: format!("the request body could not be read: {e}"),
        })?;
        writer.write(&chunk).await?;
    }
    if let Some(declared) = declared {
        if declared != writer.size() {
            return Err(ApiError::BadBody {
                message: format!("the body ended after {} of {declared} bytes", writer.size()),
            });
        }
    }
    Ok(writer)
}

/// Reads a small body whole, refusing more than `limit` bytes.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let too_large = ApiError::BodyTooLarge {
        limit: limit as u64,
    };
    let declared = declared_len(req, limit as u64)?;
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadBody {
            message: format!("the request body could not be read: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
