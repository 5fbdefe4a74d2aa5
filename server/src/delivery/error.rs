//! What can go wrong when an output is looked up, planned or queued. The
//! HTTP layer maps each case to a status and a code (`http::error`).
//!
//! A render's own failure is told twice, to its viewers and in its job's
//! record: [`render_failure`] is what both say.

use clipstream_actors::engine::edit::FillError;
use clipstream_actors::engine::plan::PlanError;
use clipstream_actors::RenderError;
use clipstream_storage::{Error as StoreError, JobError};

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The request's params do not fit the movie's placeholders (or the
    /// stored movie is no longer a valid Edit).
    #[error("{0}")]
    Fill(#[from] FillError),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("the render request names no movie for .{0}")]
    NoMovieFor(String),
    /// The queue is full.
    #[error("too many renders are waiting; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// Another node of the cluster renders it: its viewers are served
    /// from there (the route forwards the request to `url`).
    #[error("node {node} renders this output")]
    Elsewhere { node: String, url: String },
}

/// The stable code of a render's failure.
pub fn render_failure_code(error: &RenderError) -> &'static str {
    match error {
        RenderError::Fetch(_) => "source_unavailable",
        RenderError::Media(_) => "bad_source",
        RenderError::Internal(_) => "render_failed",
    }
}

/// The stable code and the public message of a render's failure. An
/// internal failure is logged in full and told without its details.
pub fn render_failure(error: &RenderError) -> JobError {
    let message = match error {
        RenderError::Internal(_) => {
            "the render failed inside the server; its log has the details".to_owned()
        }
        RenderError::Fetch(_) | RenderError::Media(_) => error.to_string(),
    };
    JobError {
        code: render_failure_code(error).to_owned(),
        message,
    }
}
