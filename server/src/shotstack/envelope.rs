//! Shotstack's response envelope, `{"success", "message", "response"}`,
//! and every error of the Shotstack API in it: the one place where each is
//! given its status and body.
//!
//! An error reads `{"success": false, "message": "<what is wrong>",
//! "response": {"error": {"code": "<stable code>", "message": "...",
//! "param"?: "..."}}}`: the SDKs raise their own exception by the status
//! alone, and a person reading the body finds the same `code` as the
//! ImpossibleFX API gives (CONTRACT section 11).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::http::error::ApiError;

/// A success: `response` as given, with `message` as the seed's examples
/// say for the endpoint (`OK`, `Created`).
pub fn ok(message: &'static str, response: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(Envelope {
            success: true,
            message,
            response,
        })
}

/// A 201 success, as the seed's queued render and created template are.
pub fn created(response: impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(Envelope {
            success: true,
            message: "Created",
            response,
        })
}

/// A date as Shotstack writes them: ISO 8601 in UTC with milliseconds,
/// `2021-06-30T09:42:29.446Z`.
pub fn iso_date(unix_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(at).to_string()
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    message: &'a str,
    response: T,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    // Left out when empty: the SDKs' models break on nulls.
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    param: Option<String>,
    retry_after_secs: Option<u64>,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            param: None,
            retry_after_secs: None,
        }
    }

    /// No `what` has this id for the account asking (another account's
    /// ids are as unknown as ids never made).
    pub fn not_found(what: &str, id: &str) -> Failure {
        Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} has the id {id:?}"),
        )
        .with_param("id")
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Failure {
        self.param = Some(param.into());
        self
    }
}

/// The ImpossibleFX API's errors keep their status and code; only their
/// wrapping changes. Credentials that are sent but wrong are a 403, as
/// Shotstack answers a key it does not know; missing ones stay a 401.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        use clipstream_storage::Error as StoreError;
        let status = match &e {
            ApiError::Store(StoreError::BadCredentials | StoreError::AccountNotFound(_)) => {
                StatusCode::FORBIDDEN
            }
            other => other.status_code(),
        };
        let retry_after_secs = match &e {
            ApiError::TooManyFailures { retry_after_secs }
            | ApiError::Busy { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let param = match &e {
            ApiError::BadParam { param, .. } => Some(param.clone()),
            _ => None,
        };
        Failure {
            status,
            code: e.code(),
            message: e.public_message(),
            param,
            retry_after_secs,
        }
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self.message, code = self.code, "shotstack request failed");
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]));
        response.json(Envelope {
            success: false,
            message: &self.message,
            response: ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: &self.message,
                    param: self.param.as_deref(),
                },
            },
        })
    }
}
