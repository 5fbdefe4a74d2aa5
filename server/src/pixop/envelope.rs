//! The Pixop API's answers: every failure as `{"exception": "<name>",
//! "errorMessage": "..."}` (the seed's shape, with its JWT exception
//! names), dates as `YYYY-MM-DD hh:mm:ss` in UTC, and HAL paging.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Map, Value};

use clipstream_storage::Error as StoreError;

#[derive(Debug, thiserror::Error)]
#[error("{exception}: {message}")]
pub struct Exception {
    pub status: StatusCode,
    pub exception: &'static str,
    pub message: String,
    /// The request field at fault, for 400s.
    pub field: Option<String>,
}

impl Exception {
    pub fn new(status: StatusCode, exception: &'static str, message: impl Into<String>) -> Self {
        Exception {
            status,
            exception,
            message: message.into(),
            field: None,
        }
    }

    /// A JWT (or credential) failure: 401 with one of the seed's names.
    pub fn auth(exception: &'static str, message: impl Into<String>) -> Self {
        Exception::new(StatusCode::UNAUTHORIZED, exception, message)
    }

    /// A bad request field: 400 naming the field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        Exception {
            field: Some(field.to_owned()),
            ..Exception::new(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                format!("{field}: {}", message.into()),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Exception::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    /// No `what` with this id for the team asking: another team's ids are
    /// as unknown as ids never made.
    pub fn not_found(what: &str, id: &str) -> Self {
        Exception::new(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            format!("no {what} has the id {id:?}"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Exception::new(StatusCode::CONFLICT, "ConflictException", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Exception::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            format!("internal error: {message}"),
        )
    }
}

impl From<StoreError> for Exception {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ProjectNotFound(id) | StoreError::ProjectForbidden(id) => {
                Exception::not_found("project", &id)
            }
            StoreError::PixopVideoNotFound(id) => Exception::not_found("video", &id),
            StoreError::ProjectExists(name) => {
                Exception::conflict(format!("a project named {name:?} already exists"))
            }
            StoreError::StorageFull => Exception::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "StorageFullException",
                "the server's disk is full",
            ),
            StoreError::TooLarge { limit } => Exception::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                format!("the media file is larger than the limit of {limit} bytes"),
            ),
            StoreError::InvalidName(e) => Exception::bad_field("name", e.to_string()),
            other => Exception::internal(other),
        }
    }
}

impl ResponseError for Exception {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self.message, exception = self.exception, "pixop request failed");
        }
        // The seed's two fields, and CONTRACT section 11's stable `code`.
        let mut body = json!({
            "exception": self.exception,
            "errorMessage": self.message,
            "code": code_of(self.exception),
        });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response
            .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
            .json(body)
    }
}

/// An exception's name as a stable snake_case code:
/// `ExpiredJWTTokenException` → `expired_jwt_token`.
pub fn code_of(exception: &str) -> String {
    let name = exception.strip_suffix("Exception").unwrap_or(exception);
    let chars: Vec<char> = name.chars().collect();
    let mut code = String::with_capacity(name.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase()) {
                code.push('_');
            }
        }
        code.push(c.to_ascii_lowercase());
    }
    code
}

pub fn ok(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
        .json(body)
}

/// Unix milliseconds as the seed writes dates: `YYYY-MM-DD hh:mm:ss`, UTC.
pub fn date(unix_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_ms / 1000);
    // RFC 3339 in UTC (`2026-12-07T00:45:52Z`) is the same digits.
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_owned()
}

/// `page` and `page-size` of a list request: pages count from 0, as in
/// Spring's HAL paging the seed's answers come from.
pub struct Paging {
    pub page: usize,
    pub size: usize,
}

pub const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 20;

impl Paging {
    pub fn of(query: &[(String, String)]) -> Result<Paging, Exception> {
        let number = |name: &str, default: usize, min: usize, max: usize| match query
            .iter()
            .find(|(k, _)| k == name)
        {
            None => Ok(default),
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Exception::bad_field(
                        name,
                        format!("must be a whole number from {min} to {max}, not {v:?}"),
                    )
                }),
        };
        Ok(Paging {
            page: number("page", 0, 0, 1_000_000)?,
            size: number("page-size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?,
        })
    }

    /// The page of `items`, as `{"pageSize", "page", "totalElements",
    /// "totalPages", "_links", "_embedded": {key: [...]}}`; links keep the
    /// request's other query parameters.
    pub fn page(
        &self,
        req: &HttpRequest,
        base: &str,
        query: &[(String, String)],
        key: &str,
        items: Vec<Value>,
    ) -> Value {
        let total = items.len();
        let pages = total.div_ceil(self.size).max(1);
        let start = self.page.saturating_mul(self.size).min(total);
        let end = start.saturating_add(self.size).min(total);
        let shown: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
        let href = |page: usize| {
            let mut pairs: Vec<String> = query
                .iter()
                .filter(|(k, _)| k != "page" && k != "page-size")
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            pairs.push(format!("page={page}"));
            pairs.push(format!("page-size={}", self.size));
            json!({ "href": format!("{base}{}?{}", req.path(), pairs.join("&")) })
        };
        let mut links = Map::new();
        links.insert("self".into(), href(self.page));
        links.insert("first".into(), href(0));
        links.insert("last".into(), href(pages - 1));
        if self.page + 1 < pages {
            links.insert("next".into(), href(self.page + 1));
        }
        if self.page > 0 {
            links.insert("previous".into(), href((self.page - 1).min(pages - 1)));
        }
        json!({
            "pageSize": self.size,
            "page": self.page,
            "totalElements": total,
            "totalPages": pages,
            "_links": links,
            "_embedded": { key: shown },
        })
    }
}

/// Everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::code_of;

    #[test]
    fn dates_are_written_as_the_seed_writes_them() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00");
        assert_eq!(super::date(1_700_000_000_999), "2023-11-14 22:13:20");
    }

    #[test]
    fn exception_names_become_snake_case_codes() {
        assert_eq!(code_of("ExpiredJWTTokenException"), "expired_jwt_token");
        assert_eq!(code_of("NoJWTTokenFoundException"), "no_jwt_token_found");
        assert_eq!(code_of("BadRequestException"), "bad_request");
        assert_eq!(code_of("AuthException"), "auth");
    }
}
