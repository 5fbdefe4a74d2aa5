pub mod compose;
pub mod compositor;
pub mod edit;
pub mod encode;
pub mod media;
pub mod mux;
pub mod pipeline;
pub mod plan;
