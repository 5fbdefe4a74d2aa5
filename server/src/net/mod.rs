//! Connections the server makes on a client's behalf.

pub mod guard;
