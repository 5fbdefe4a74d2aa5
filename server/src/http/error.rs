//! Every error the HTTP API can answer, and the one place where each is
//! given its status and JSON body (CONTRACT section 11):
//! `{"code": "...", "message": "...", "path"?: "...", "param"?: "..."}`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use clipstream_actors::engine::edit::{EditError, EditErrorKind, FillError};
use clipstream_actors::engine::plan::PlanError;
use clipstream_actors::RenderError;
use clipstream_storage::{Error as StoreError, UploadError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Edit(#[from] EditError),
    /// Render params that do not fit the movie's placeholders.
    #[error("{0}")]
    Fill(#[from] FillError),
    #[error("{message}")]
    Unauthorized { message: &'static str },
    /// A refused credential answered without `WWW-Authenticate`, for a
    /// client that asks itself (the studio): a browser shows its own
    /// password dialog on a Basic challenge, even to a script's request.
    #[error(transparent)]
    Unchallenged(Box<ApiError>),
    #[error("too many wrong keys or secrets from this address; try again in {retry_after_secs} s")]
    TooManyFailures { retry_after_secs: u64 },
    /// A query or path parameter that is missing or malformed.
    #[error("{message}")]
    BadParam { param: String, message: String },
    #[error("{message}")]
    BadBody { message: String },
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("cluster {cluster:?} is not known here; known clusters: {known}")]
    UnknownCluster { cluster: String, known: String },
    #[error("too many renders are waiting; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// Another node renders the output: the viewer's route forwards the
    /// request there; anything else that meets it asks to come back.
    #[error("node {node} of the cluster renders this output; try again shortly")]
    Elsewhere { node: String, url: String },
    #[error("the requested bytes were not rendered in time; try again")]
    RangeTimeout,
    #[error("the render request names no movie for .{0}")]
    NoMovieFor(String),
    #[error("{0}")]
    Plan(clipstream_actors::engine::plan::PlanError),
    #[error("{0}")]
    Render(clipstream_actors::RenderError),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl ApiError {
    pub fn bad_param(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param: param.into(),
            message: message.into(),
        }
    }

    /// The stable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unchallenged(inner) => inner.code(),
            ApiError::Store(e) => store_code(e),
            ApiError::Edit(e) => match e.kind {
                EditErrorKind::Syntax => "invalid_json",
                EditErrorKind::Invalid => "invalid_edit",
                EditErrorKind::Limit => "limit_exceeded",
            },
            ApiError::Fill(FillError::Template(_)) => "invalid_movie",
            ApiError::Fill(_) => "invalid_param",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::TooManyFailures { .. } => "too_many_failures",
            ApiError::BadParam { .. } => "invalid_parameter",
            ApiError::BadBody { .. } => "invalid_body",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnknownCluster { .. } => "cluster_not_found",
            ApiError::Busy { .. } | ApiError::Elsewhere { .. } => "busy",
            ApiError::RangeTimeout => "range_timeout",
            ApiError::NoMovieFor(_) => "movie_not_found",
            ApiError::Plan(PlanError::NoImage { .. }) => "not_found",
            ApiError::Plan(PlanError::OverLimit { .. }) => "limit_exceeded",
            ApiError::Plan(PlanError::BeyondTimeline { .. }) => "beyond_timeline",
            ApiError::Plan(_) => "unsupported",
            ApiError::Render(e) => crate::delivery::render_failure_code(e),
            ApiError::NoRoute(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }

    /// What the client is told. Internal failures are logged in full and
    /// answered without their details.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Unchallenged(inner) => inner.public_message(),
            ApiError::Store(
                StoreError::Io(_)
                | StoreError::Db(_)
                | StoreError::Corrupt(_)
                | StoreError::Locked(_),
            ) => "internal storage error; retry later".to_owned(),
            ApiError::Edit(e) => e.message.clone(),
            ApiError::Render(e) => crate::delivery::render_failure(e).message,
            other => other.to_string(),
        }
    }
}

fn fill_path(e: &FillError) -> Option<&str> {
    match e {
        FillError::Missing { path, .. }
        | FillError::NotText { path, .. }
        | FillError::BadValue { path, .. } => Some(path),
        FillError::Nested { .. } | FillError::Template(_) => None,
    }
}

fn store_code(e: &StoreError) -> &'static str {
    match e {
        StoreError::InvalidName(_) => "invalid_name",
        StoreError::BadCredentials | StoreError::AccountNotFound(_) => "unauthorized",
        StoreError::ProjectNotFound(_) => "project_not_found",
        StoreError::ProjectForbidden(_) => "forbidden",
        StoreError::ProjectExists(_) => "project_exists",
        StoreError::AssetNotFound(_) => "asset_not_found",
        StoreError::MovieNotFound(_) => "movie_not_found",
        StoreError::UploadNotFound(_) => "upload_not_found",
        StoreError::TokenNotFound => "token_not_found",
        StoreError::HostedNotFound(_) | StoreError::PixopVideoNotFound(_) => "not_found",
        StoreError::KeyNotFound(_) => "key_not_found",
        StoreError::Upload(UploadError::MissingChunks { .. }) => "upload_incomplete",
        StoreError::Upload(UploadError::AlreadyFinishing) => "upload_finishing",
        StoreError::Upload(_) => "invalid_chunk",
        StoreError::TooLarge { .. } => "body_too_large",
        StoreError::StorageFull => "insufficient_storage",
        StoreError::Locked(_)
        | StoreError::Corrupt(_)
        | StoreError::Io(_)
        | StoreError::Db(_)
        | StoreError::Config(_) => "internal",
    }
}

fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Upload(UploadError::AlreadyFinishing) => StatusCode::CONFLICT,
        StoreError::InvalidName(_) | StoreError::Upload(_) => StatusCode::BAD_REQUEST,
        StoreError::BadCredentials | StoreError::AccountNotFound(_) => StatusCode::UNAUTHORIZED,
        StoreError::ProjectForbidden(_) => StatusCode::FORBIDDEN,
        StoreError::ProjectNotFound(_)
        | StoreError::AssetNotFound(_)
        | StoreError::MovieNotFound(_)
        | StoreError::UploadNotFound(_)
        | StoreError::TokenNotFound
        | StoreError::HostedNotFound(_)
        | StoreError::PixopVideoNotFound(_)
        | StoreError::KeyNotFound(_) => StatusCode::NOT_FOUND,
        StoreError::ProjectExists(_) => StatusCode::CONFLICT,
        StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        StoreError::Locked(_)
        | StoreError::Corrupt(_)
        | StoreError::Io(_)
        | StoreError::Db(_)
        | StoreError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<crate::delivery::DeliveryError> for ApiError {
    fn from(e: crate::delivery::DeliveryError) -> ApiError {
        use crate::delivery::DeliveryError as D;
        match e {
            D::Store(e) => ApiError::Store(e),
            D::Fill(e) => ApiError::Fill(e),
            D::Plan(e) => ApiError::Plan(e),
            D::NoMovieFor(ext) => ApiError::NoMovieFor(ext),
            D::Busy { retry_after_secs } => ApiError::Busy { retry_after_secs },
            D::Elsewhere { node, url } => ApiError::Elsewhere { node, url },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unchallenged(inner) => inner.status_code(),
            ApiError::Store(e) => store_status(e),
            ApiError::Fill(FillError::Template(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Edit(_)
            | ApiError::Fill(_)
            | ApiError::BadParam { .. }
            | ApiError::BadBody { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnknownCluster { .. } | ApiError::NoRoute(_) | ApiError::NoMovieFor(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Busy { .. } | ApiError::Elsewhere { .. } | ApiError::RangeTimeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Plan(PlanError::NoImage { .. }) => StatusCode::NOT_FOUND,
            ApiError::Plan(PlanError::OverLimit { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Plan(_) | ApiError::Render(RenderError::Media(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Render(RenderError::Fetch(_)) => StatusCode::BAD_GATEWAY,
            ApiError::Render(RenderError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unchallenged(inner) = self {
            let mut response = inner.error_response();
            response.headers_mut().remove(header::WWW_AUTHENTICATE);
            return response;
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let (path, param) = match self {
            ApiError::Edit(e) | ApiError::Fill(FillError::Template(e)) => {
                (Some(e.path.as_str()), None)
            }
            ApiError::Fill(e) => (fill_path(e), e.placeholder()),
            ApiError::BadParam { param, .. } => (None, Some(param.as_str())),
            ApiError::Plan(e) => (e.path(), None),
            _ => (None, None),
        };
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::Unauthorized { .. }
            | ApiError::Store(StoreError::BadCredentials | StoreError::AccountNotFound(_)) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"clipstream\""),
                ));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            ApiError::Elsewhere { .. } => {
                response.insert_header((header::RETRY_AFTER, 1));
            }
            ApiError::TooManyFailures { retry_after_secs }
            | ApiError::Busy { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, *retry_after_secs));
            }
            _ => {}
        }
        response.insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]));
        response.json(Body {
            code: self.code(),
            message: self.public_message(),
            path,
            param,
        })
    }
}
