//! How an upload attempt fails: worth another try, or not.

use crate::net::guard::{error_chain, is_refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// A timeout, a reset connection, a 5xx, a 429: tried again, up to
    /// `upload.max_attempts`.
    #[error("{0}")]
    Transient(String),
    /// The destination refused (a wrong password, a missing bucket, a
    /// 4xx, a private address): trying again would not help.
    #[error("{0}")]
    Refused(String),
}

impl UploadError {
    /// A reqwest failure: refused by the address guard, or transient.
    /// Its URL is told without query or user info: a presigned URL's
    /// signature is a credential.
    pub fn from_reqwest(e: &reqwest::Error) -> UploadError {
        let mut why = error_chain(e);
        if let Some(url) = e.url() {
            let mut shown = url.clone();
            shown.set_query(None);
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            why = why.replace(url.as_str(), shown.as_str());
        }
        if is_refusal(e) || e.is_builder() {
            UploadError::Refused(why)
        } else {
            UploadError::Transient(why)
        }
    }

    /// The same failure, its message rewritten.
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> UploadError {
        match self {
            UploadError::Transient(m) => UploadError::Transient(f(&m)),
            UploadError::Refused(m) => UploadError::Refused(f(&m)),
        }
    }

    /// A problem found after the destination answered 2xx to the upload
    /// itself (an answer that cannot be read, a missing id): a refusal,
    /// since another try would upload the file a second time (a second
    /// video on YouTube or Facebook).
    pub fn after_upload(self, who: &str) -> UploadError {
        UploadError::Refused(format!(
            "{self} ({who} took the upload; it is not sent again, which would make a second copy)"
        ))
    }

    /// An HTTP status that is not a success: 5xx, 429 and 408 are worth
    /// another try, the rest are refusals. `what` says who answered.
    pub fn from_status(what: &str, status: reqwest::StatusCode, body: &str) -> UploadError {
        let body: String = body.chars().take(300).collect();
        let message = format!("{what} answered {status}: {}", body.trim());
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            UploadError::Transient(message)
        } else {
            UploadError::Refused(message)
        }
    }
}
