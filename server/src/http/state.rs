//! What every request handler shares.

use std::sync::Arc;

use clipstream_storage::Store;

use super::throttle::AuthThrottle;
use crate::config::Config;

pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth_throttle: AuthThrottle,
}
