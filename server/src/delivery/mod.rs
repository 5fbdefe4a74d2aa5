//! Delivery of renders (CONTRACT section 5): one live render per token and
//! extension however many watch, its bytes spooled to a file that every
//! viewer reads at its own pace, then moved into the cache.

pub mod fetch;
pub mod live;
pub mod registry;
mod resolver;

pub use live::LiveRender;
pub use registry::{Lookup, Renders};
