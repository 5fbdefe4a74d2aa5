//! Delivery of renders (CONTRACT sections 4 and 5): outputs keyed by
//! their content, render jobs in a bounded priority queue, one live render
//! per output however many watch, its bytes spooled to a file that every
//! viewer reads at its own pace, then committed to the cache.

pub mod content_key;
mod error;
pub mod fetch;
pub mod live;
pub mod proxy;
pub mod queue;
pub mod registry;
pub mod remote_runs;
mod resolver;

pub use error::{render_failure, render_failure_code, DeliveryError};
pub use live::LiveRender;
pub use registry::{Lookup, Renders};
