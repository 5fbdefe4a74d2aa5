//! The Ingest API's errors in the seed's IngestErrorResponse:
//! `{"errors": [{"status": "400", "title": "...", "detail": "...",
//! "code": "...", "source": {"pointer": "/outputs/renditions/0/fps"}}]}`
//! (JSON:API, as the Ingest API's answers are), with the same stable
//! `code`s as the rest of the server. Authentication failures come before
//! any Ingest handler runs and keep the Shotstack envelope of every API
//! (`envelope::Failure`); the SDKs tell errors apart by status alone.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::super::envelope::Failure;
use super::request::Invalid;
use crate::http::error::ApiError;

#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct IngestError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    /// The field's path, `outputs.renditions[0].fps`.
    path: Option<String>,
}

impl IngestError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> IngestError {
        IngestError {
            status,
            code,
            detail: detail.into(),
            path: None,
        }
    }

    pub fn at(mut self, path: impl Into<String>) -> IngestError {
        self.path = Some(path.into());
        self
    }

    pub fn not_found(what: &str, id: &str) -> IngestError {
        IngestError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} {id:?} in this account"),
        )
        .at("id")
    }
}

impl From<Invalid> for IngestError {
    fn from(e: Invalid) -> IngestError {
        let (status, code) = if e.not_built {
            (StatusCode::NOT_IMPLEMENTED, "not_implemented")
        } else {
            (StatusCode::BAD_REQUEST, "invalid_field")
        };
        let error = IngestError::new(status, code, e.message);
        if e.path.is_empty() {
            error
        } else {
            error.at(e.path)
        }
    }
}

impl From<ApiError> for IngestError {
    fn from(e: ApiError) -> IngestError {
        IngestError::new(e.status_code(), e.code(), e.public_message())
    }
}

impl From<clipstream_storage::Error> for IngestError {
    fn from(e: clipstream_storage::Error) -> IngestError {
        ApiError::from(e).into()
    }
}

/// The lead's helpers (hosting) answer in the Edit envelope's type; its
/// status and message carry over.
impl From<Failure> for IngestError {
    fn from(e: Failure) -> IngestError {
        let status = e.status_code();
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::INSUFFICIENT_STORAGE => "storage_full",
            s if s.is_client_error() => "bad_request",
            _ => "internal",
        };
        IngestError::new(status, code, e.to_string())
    }
}

/// `outputs.renditions[0].fps` as a JSON Pointer, `/outputs/renditions/0/fps`.
pub fn pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        out.push('/');
        out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        for index in rest.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                out.push('/');
                out.push_str(index);
            }
        }
    }
    out
}

impl ResponseError for IngestError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self.detail, code = self.code, "ingest request failed");
        }
        let title = match self.status {
            StatusCode::BAD_REQUEST => "Validation Error",
            s => s.canonical_reason().unwrap_or("Error"),
        };
        let mut error = json!({
            "status": self.status.as_u16().to_string(),
            "title": title,
            "detail": self.detail,
            "code": self.code,
        });
        if let Some(path) = &self.path {
            error["source"] = json!({ "pointer": pointer(path) });
        }
        HttpResponse::build(self.status)
            .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
            .json(json!({ "errors": [error] }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(pointer("url"), "/url");
        assert_eq!(
            pointer("outputs.renditions[0].fps"),
            "/outputs/renditions/0/fps"
        );
        assert_eq!(
            pointer("outputs.renditions[12].size.width"),
            "/outputs/renditions/12/size/width"
        );
        assert_eq!(
            pointer("destinations[1].provider"),
            "/destinations/1/provider"
        );
    }
}
