//! Packaging encoded media into the output container.

pub mod avc;
pub mod fmp4;
pub mod tree;

pub use fmp4::{Fmp4Writer, Sample, TrackConfig};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("cannot describe the stream: {0}")]
    Config(String),
    #[error("cannot write MP4: {0}")]
    Write(String),
}
