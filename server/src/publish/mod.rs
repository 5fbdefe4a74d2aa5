//! `POST /v1/publish/{uid}/{cluster}` to a peer installation
//! (`[[cluster.peers]]`): the project's assets and dynamic movies are
//! copied there through the peer's own Project API, in the background.

mod client;
mod job;

pub use job::{peer, resume, start};
