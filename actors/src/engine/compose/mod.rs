//! Composing output frames (CONTRACT section 6): layers placed, moved,
//! masked, filtered and blended onto a YUV canvas as the plan says.

pub mod canvas;
pub mod filter;
pub mod frame;
pub mod layout;
pub mod motion;
pub mod text;
pub mod warp;

pub use canvas::{Canvas, Coverage, Picture};
pub use frame::Frame;
