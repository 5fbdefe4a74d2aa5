//! Upload destinations (CONTRACT section 8): a render request's `upload`
//! sends the finished output to S3, Azure Blob, an HTTP server, an FTP
//! server, Dropbox, YouTube or Facebook, in the background, with bounded
//! retries, each outcome reported in the token's status.
//!
//! - [`task`]: the task definitions and their checks;
//! - [`service`]: the records, the queue of uploads, retries and resume;
//! - [`context`]: what every sender is given and answers;
//! - [`send`]: the one place that knows every type, over one module per
//!   type that speaks its protocol (`s3`, `azure` over `object_client`;
//!   `http`, `ftp`; `dropbox`, `youtube` with `oauth`; `facebook`).

mod azure;
pub mod context;
mod dropbox;
mod error;
mod facebook;
#[cfg(test)]
pub(crate) mod fake;
mod ftp;
mod http;
mod mux;
mod oauth;
mod object_client;
mod s3;
pub mod send;
pub mod service;
pub mod task;
mod youtube;

pub use error::UploadError;
pub use service::Uploads;
