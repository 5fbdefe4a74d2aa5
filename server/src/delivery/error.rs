//! What can go wrong when an output is looked up, planned or queued. The
//! HTTP layer maps each case to a status and a code (`http::error`).

use clipstream_actors::engine::edit::FillError;
use clipstream_actors::engine::plan::PlanError;
use clipstream_storage::Error as StoreError;

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
}
