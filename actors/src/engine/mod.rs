//! The media engine, from a movie's JSON to published bytes. Each stage
//! uses only the stages above it in this list:
//!
//! - [`edit`]: the composition language, a Shotstack Edit: parsed,
//!   validated against its limits, placeholders filled in;
//! - [`plan`]: a filled Edit reduced to what is drawn, mixed and encoded,
//!   every default applied (with what its `output` asks);
//! - [`compose`]: frames, pictures and text, and how layers are placed,
//!   moved, filtered and blended;
//! - [`media`]: sources read with FFmpeg into those frames and samples;
//! - [`timeline`]: a plan's frames drawn and its sounds mixed, frame by
//!   frame, from the fetched sources;
//! - [`mux`]: fragmented MP4 boxes;
//! - [`output`]: each format's encoder and packager.
//!
//! The actors above (`crate::supervisor` and its children) decide when
//! each stage runs and on which thread; nothing here knows about them.

pub mod compose;
pub mod edit;
pub mod media;
pub mod mux;
pub mod output;
pub mod plan;
pub mod timeline;
