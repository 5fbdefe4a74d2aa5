//! One render as a supervised actor tree (CONTRACT section 1):
//!
//! ```text
//! supervisor ── fetcher     resolves and downloads every source once
//!            ├─ compositor  decodes, composes, mixes, encodes (a blocking thread)
//!            └─ muxer       packages the format (engine::output): fragmented MP4
//!                           (init segment, then ~1 s fragments), WebM, MP3,
//!                           GIF, or a still image
//! ```
//!
//! Bytes leave through a [`Publish`] the caller provides (the server's
//! live-render buffer, or a file for the CLI). [`start`] returns at once a
//! [`Render`], which can cancel it; the render ends in exactly one
//! `finish` or `fail`, whatever happens: a child's failure or panic
//! reaches the supervisor and fails the render, a panic anywhere in a
//! render fails only that render. The fetcher retries a source whose
//! failure is transient; nothing else retries. What a render is given and
//! what it tells its caller is in `render.rs`.
//!
//! Below the actors, the media [`engine`] does the work, one stage after
//! another, each using only those before it: the composition language
//! (`edit`), the render plan (`plan`), composing frames (`compose`),
//! reading sources (`media`), the timeline that draws and mixes a plan
//! (`timeline`), MP4 boxes (`mux`) and the output formats (`output`).

mod compositor;
mod faults;
mod fetcher;
mod muxer;
mod render;
pub mod segment_store;
pub mod segments;
pub mod sound_cache;
mod supervisor;

pub mod engine;

pub use compositor::{render_segments, segment_alone};
pub use fetcher::sources_of;
pub use render::{FetchError, Job, Publish, RenderError, Resolve, Resolved, Retry, State};
pub use supervisor::{start, Render};

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
