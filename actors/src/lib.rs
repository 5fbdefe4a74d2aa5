pub mod compose;
pub mod compositor;
pub mod edit;
pub mod media;
pub mod mux;
pub mod output;
pub mod pipeline;
pub mod plan;
