pub mod edit;
pub mod mux;
