//! Composing output frames: RGBA pictures placed, scaled and blended on a
//! canvas as the plan says (CONTRACT section 6).

pub mod canvas;
pub mod layout;
pub mod text;

pub use canvas::{Canvas, Picture};
